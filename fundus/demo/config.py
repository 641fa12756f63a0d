# Sizes of the demo and the split of its time budget. The CPU preset is sized for a 2-core machine and the
# default --minutes; the GPU preset for one GPU. Tests inject a tiny DemoConfig.

import dataclasses

#----------------------------------------------------------------------------
# Share of the total budget each stage may use (cumulative: stage k ends at t0 + T * sum(shares[:k+1]), so time
# an early stage does not use goes to the next ones). Only training and the encoder loop adapt their length to
# the deadline; the other stages have a fixed size per preset and their share is what they need on 2 cores.

SHARES = dict(
    dataset     = 0.01,     # 1 phantom dataset (about 1 s).
    training    = 0.46,     # 2 training from scratch: stops before the tick that would overrun.
    model       = 0.00,     # 3 choose the model (shipped or stage 2's).
    images      = 0.01,     # 3 images per grade.
    metrics     = 0.15,     # 3 FID/KID, EQ-T, EQ-R, spectra, memorisation (fixed size; 136 s under load).
    report      = 0.01,     # 3 the training run's report.
    encoder     = 0.21,     # 4 encoder training (stops at its deadline) + reconstruction metrics + mix.
    downstream  = 0.12,     # 5 classifier study (fixed size; 45 s under load).
    reader      = 0.02,     # 6 reader study.
    index       = 0.01,     # 7 the index page.
)

#----------------------------------------------------------------------------

@dataclasses.dataclass
class DemoConfig:
    name:             str           # Preset name, shown in the output.
    resolution:       int           # Image size of the phantom dataset and the generator (encoder: a multiple of 32).
    num_images:       int           # Phantom photographs in the dataset (grades drawn uniformly).
    cbase:            int           # channel_base of G and D.
    cmax:             int           # channel_max of G and D.
    num_layers:       int           # SG3 synthesis layers (NVIDIA: 14).
    margin_size:      int           # SG3 margin around the image in pixels (NVIDIA: 10).
    z_dim:            int           # Latent size (NVIDIA: 512).
    batch:            int           # Total batch.
    gamma:            float         # R1 weight.
    tick_kimg:        float         # Training progress between snapshots, in thousands of images.
    ada_kimg:         float         # ADA speed (NVIDIA: 500; small here so p visibly adapts in a short run).
    metric_images:    int           # Generated images for FID / KID / memorisation (reals: the whole dataset).
    eq_samples:       int           # Samples for EQ-T and EQ-R.
    spectrum_images:  int           # Real and generated images for the power spectra.
    bootstrap:        int           # Bootstrap replicates for FID / KID / *_recon intervals (0 = none).
    images_per_grade: int = 8       # Seeds rendered per grade by generate.
    grid_size:        tuple = None  # (columns, rows) of the training snapshot grids; None = the loop's default.
    image_ticks:      int = 1       # Write a fakes grid every this many ticks (and when training stops).
    snapshot_ticks:   int = 1       # Write a network snapshot + training state every this many ticks (and when training stops).
    workers:          int = 0       # DataLoader workers (0: load in the training process).
    detectors:        dict = None   # {name: detector}: injected detectors (tests); None = the real ones.
    # Stage 4: the encoder.
    heldout_images:   int = 40      # Held-out phantoms (another seed) for reconstructions and *_recon metrics.
    enc_width:        int = 16      # ResNet-18 base width of the encoder.
    enc_fpn:          int = 32      # FPN channels.
    enc_batch:        int = 4       # Encoder batch.
    enc_lr:           float = 1e-3  # Encoder learning rate (higher than pSp's 1e-4: minutes, not days).
    enc_max_steps:    int = 100000  # Upper bound on encoder steps (the deadline normally stops it first).
    # Stage 5: the classifier study (fundus.classify).
    cls_resolution:   int = 32      # Classifier input size.
    cls_patients:     tuple = (3, 4, 8) # Two-eyed patients per grade in train / val / test.
    cls_synthetic:    int = 12      # Synthetic images per grade added in real+synthetic.
    cls_seeds:        int = 3       # Seeds per condition.
    cls_steps:        int = 60      # Optimiser steps per cell.
    cls_bootstrap:    int = 200     # Patient-bootstrap resamples.
    # Stage 6: the reader study (fundus.turing).
    study_count:      int = 20      # Test images (half real, half synthetic).
    study_practice:   int = 4       # Practice images.

def cpu_config():
    return DemoConfig(name='cpu', resolution=64, num_images=200, cbase=2048, cmax=32, num_layers=6, margin_size=4,
                      z_dim=128, batch=8, gamma=0.25, tick_kimg=0.04, ada_kimg=4, metric_images=100, eq_samples=32,
                      spectrum_images=100, bootstrap=20, grid_size=(8, 5), image_ticks=25, snapshot_ticks=25)

def gpu_config():
    return DemoConfig(name='gpu', resolution=128, num_images=2000, cbase=16384, cmax=256, num_layers=14, margin_size=10,
                      z_dim=512, batch=32, gamma=0.5, tick_kimg=4, ada_kimg=100, metric_images=2000, eq_samples=1000,
                      spectrum_images=2000, bootstrap=200, workers=3, heldout_images=200, enc_width=32, enc_fpn=64,
                      enc_batch=8, cls_resolution=64, cls_patients=(10, 6, 12), cls_synthetic=40, cls_seeds=5,
                      cls_steps=400, cls_bootstrap=1000, study_count=60, study_practice=6)

#----------------------------------------------------------------------------
