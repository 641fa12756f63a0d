"""The embedded demo: phantom dataset -> StyleGAN3-T training -> images -> metrics -> HTML report.

    python -m fundus.demo --outdir=demo-out [--minutes=10] [--device=auto]

Everything runs offline. Training gets whatever time the other stages leave within --minutes; on a GPU
the same command uses a larger network, more images and bootstrap intervals. Each stage prints a line
when it starts and ends; a stage that fails says why, and later stages say what they miss.
"""

import contextlib
import dataclasses
import glob
import io
import json
import os
import time
import traceback

import click
import torch

import dnnlib
from fundus import grades
from fundus.report import run as run_report
from fundus.data import build as data_build
from fundus.grades import GRADES
from metrics import bootstrap, frechet_inception_distance, kernel_inception_distance, metric_main, metric_utils
from torch_utils.device import DeviceError, resolve_device
from training import config, generate, launch, run_dir

#----------------------------------------------------------------------------
# Sizes. The CPU preset is sized for a 2-core machine and ~10 minutes; the GPU preset for one GPU.

@dataclasses.dataclass
class DemoConfig:
    name:             str           # Preset name, shown in the output.
    resolution:       int           # Image size of the phantom dataset and the generator.
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
    eq_samples:       int           # Samples for EQ-T.
    spectrum_images:  int           # Real and generated images for the power spectra.
    bootstrap:        int           # Bootstrap replicates for FID / KID intervals (0 = none).
    eval_reserve_s:   float         # Seconds kept free for the stages after training.
    images_per_grade: int = 8       # Seeds rendered per grade by generate.
    grid_size:        tuple = None  # (columns, rows) of the training snapshot grids; None = the loop's default.
    image_ticks:      int = 1       # Write a fakes grid every this many ticks.
    workers:          int = 0       # DataLoader workers (0: load in the training process).
    detectors:        dict = None   # {name: detector}: injected detectors (tests); None = the real ones.

def cpu_config():
    return DemoConfig(name='cpu', resolution=64, num_images=200, cbase=2048, cmax=32, num_layers=6, margin_size=4,
                      z_dim=128, batch=8, gamma=0.25, tick_kimg=0.04, ada_kimg=4, metric_images=100, eq_samples=32,
                      spectrum_images=100, bootstrap=0, eval_reserve_s=200, grid_size=(8, 5), image_ticks=4)

def gpu_config():
    return DemoConfig(name='gpu', resolution=128, num_images=2000, cbase=16384, cmax=256, num_layers=14, margin_size=10,
                      z_dim=512, batch=32, gamma=0.5, tick_kimg=4, ada_kimg=100, metric_images=2000, eq_samples=1000,
                      spectrum_images=2000, bootstrap=50, eval_reserve_s=240, workers=3)

#----------------------------------------------------------------------------
# Stage bookkeeping.

class StageUnavailable(Exception):
    """A stage's code is not in this checkout (yet)."""

@dataclasses.dataclass
class StageResult:
    name:    str
    status:  str        # 'done', 'unavailable', 'skipped' or 'failed'.
    seconds: float
    note:    str = ''

class Demo:
    def __init__(self, outdir, config, device, deadline, echo=print):
        self.outdir = outdir
        self.config = config
        self.device = device
        self.deadline = deadline
        self.echo = echo
        self.results = []
        self.zip_path = None
        self.run_dir = None
        self.snapshot = None
        self.report = None

    def stage(self, index, total, name, fn, needs=()):
        """Run one stage, print its start and end, record the outcome. Returns True when it finished."""
        start = time.time()
        missing = [n for n in needs if getattr(self, n) is None]
        if missing:
            return self._record(StageResult(name, 'skipped', 0.0, f'needs the output of an earlier stage ({", ".join(missing)})'), index, total)
        self.echo(f'[{index}/{total}] {name} ...')
        try:
            note = fn() or ''
            result = StageResult(name, 'done', time.time() - start, note)
        except StageUnavailable as e:
            result = StageResult(name, 'unavailable', time.time() - start, str(e))
        except Exception as e: # Report and go on: later stages say what they miss.
            if os.environ.get('FUNDUS_DEBUG'):
                traceback.print_exc()
            result = StageResult(name, 'failed', time.time() - start, f'{type(e).__name__}: {_first_line(e)}')
        return self._record(result, index, total)

    def _record(self, result, index, total):
        self.results.append(result)
        words = {'done': 'done', 'unavailable': 'NOT AVAILABLE YET', 'skipped': 'skipped', 'failed': 'FAILED'}[result.status]
        note = f': {result.note}' if result.note else ''
        self.echo(f'[{index}/{total}] {result.name}: {words} in {dnnlib.format_time(result.seconds)}{note}')
        return result.status == 'done'

    def seconds_left(self):
        return self.deadline - time.time()

def _first_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else ''

#----------------------------------------------------------------------------
# Stage 1: the phantom dataset, built with fundus.data.build (reused when an identical one exists).

def build_dataset(demo):
    cfg = demo.config
    res = cfg.resolution
    zip_path = os.path.join(demo.outdir, f'phantoms-{cfg.num_images}-{res}x{res}.zip')
    if os.path.isfile(zip_path):
        demo.zip_path = zip_path
        return f'reusing {zip_path}'
    result = data_build.build_dataset(f'phantom:{cfg.num_images}', zip_path, resolution=(res, res), seed=0)
    demo.echo(result.summary(zip_path))
    demo.zip_path = zip_path
    return f'{cfg.num_images} labelled phantom photographs (grades DR0-DR4) in {zip_path}'

#----------------------------------------------------------------------------
# Stage 2: training, time-budgeted. Ticks are short; every tick writes a snapshot, and the run stops
# before the tick that would overrun the budget.

class TrainingBudget:
    """Progress callback of the training run; stop() says True once the next tick would overrun the deadline."""

    def __init__(self, deadline, echo):
        self.deadline = deadline
        self.echo = echo
        self.last = None
        self.longest_tick = 0.0
        self.reached = False

    def __call__(self, cur_nimg, total_nimg):
        now = time.time()
        if self.last is not None:
            self.longest_tick = max(self.longest_tick, now - self.last)
        self.last = now
        left = self.deadline - now
        self.echo(f'      training: {cur_nimg / 1000:.3f} kimg, {max(left, 0):.0f} s of training time left')
        self.reached = self.reached or now + self.longest_tick > self.deadline

    def stop(self):
        return self.reached

def make_training_config(demo, budget_kimg=100000):
    """train.py's resolved config for the demo's network (config.make_config + the demo's size overrides)."""
    cfg = demo.config
    c = config.make_config(cfg='stylegan3-t', data=demo.zip_path, gpus=1, batch=cfg.batch, gamma=cfg.gamma, cond=True,
                           aug='ada', augpipe='fundus', cbase=cfg.cbase, cmax=cfg.cmax, map_depth=2,
                           mbstd_group=min(4, cfg.batch), metrics='none', kimg=budget_kimg, tick=1, snap=1, seed=0,
                           fp32=(demo.device == 'cpu'), workers=cfg.workers, device=demo.device)
    c.G_kwargs.update(z_dim=cfg.z_dim, w_dim=cfg.z_dim, num_layers=cfg.num_layers, margin_size=cfg.margin_size)
    c.kimg_per_tick = cfg.tick_kimg
    c.image_snapshot_ticks = cfg.image_ticks
    c.network_snapshot_ticks = 1
    c.grid_size = cfg.grid_size
    c.ada_kimg = cfg.ada_kimg
    c.tensorboard = False
    return c

def train_network(demo):
    c = make_training_config(demo)
    # Leave time for evaluation and the report; train at least one step (the first tick is one step long).
    budget = TrainingBudget(demo.deadline - demo.config.eval_reserve_s, demo.echo)
    start = time.time()
    demo.run_dir = launch.launch_training(c, outdir=os.path.join(demo.outdir, 'runs'), desc='demo', progress_fn=budget,
                                          stop_fn=budget.stop, echo=lambda *_: None)
    snapshots = sorted(glob.glob(os.path.join(demo.run_dir, 'network-snapshot-*.pkl')))
    if not snapshots:
        raise RuntimeError(f'training wrote no network snapshot in {demo.run_dir}')
    demo.snapshot = snapshots[-1]
    prune_run_dir(demo.run_dir)
    kimg = run_dir.last_kimg(run_dir.read_stats(demo.run_dir))
    kimg_text = 'unknown' if kimg is None else f'{kimg:.3f}'
    return (f'{kimg_text} kimg in {dnnlib.format_time(time.time() - start)} (stylegan3-t, {demo.config.resolution}x'
            f'{demo.config.resolution}, conditional on grade); run directory {demo.run_dir}')

def prune_run_dir(path):
    """Delete all but the latest training state (a demo run is not resumed); snapshots stay."""
    states = sorted(glob.glob(os.path.join(path, 'training-state-*.pt')))
    for path in states[:-1]:
        os.remove(path)

#----------------------------------------------------------------------------
# Stage 3: images per grade, rendered as gen_images.py renders them.

def generate_images(demo):
    cfg = demo.config
    folder = os.path.join(demo.outdir, 'images')
    seeds = list(range(cfg.images_per_grade))
    G = generate.load_generator(demo.snapshot, torch.device(demo.device))
    classes = list(GRADES) if G.c_dim > 0 else [None]
    for idx in classes:
        subdir = os.path.join(folder, grades.grade_name(idx) if idx is not None else 'all')
        for seed, img in generate.generate_images(G, seeds, class_idx=idx, batch_size=len(seeds), device=torch.device(demo.device)):
            generate.save_png(os.path.join(subdir, generate.seed_filename(seed)), img)
        generate.write_grid(subdir, seeds)
    name = os.path.basename(demo.snapshot)
    return (f'{len(classes) * len(seeds)} images in {folder}/DR*/ (same as: python gen_images.py --network=.../{name} '
            f'--seeds=0-{len(seeds) - 1} --class=DR<g> --grid)')

#----------------------------------------------------------------------------
# Stage 4: metrics through the registry (metrics.metric_main.calc_metric / report_metric), except FID and
# KID, which share one feature extraction and use the symmetric eigen-route (see _fid_kid). Names carry
# the image counts (fid200_full = FID of 200 generated images against the full dataset; fid2k_full as
# upstream when the count is a multiple of 1000). Lines go to <run>/metric-<name>.jsonl in NVIDIA's format.

def metric_kwargs(demo, G=None, gen_folder=None):
    """MetricOptions arguments against the full training set; generated images from G or a folder of PNGs."""
    with open(os.path.join(demo.run_dir, 'training_options.json')) as f:
        dataset_kwargs = json.load(f)['training_set_kwargs']
    dataset_kwargs.update(max_size=None, xflip=False, use_labels=True)
    gen_kwargs = None if gen_folder is None else dict(class_name='metrics.image_folder.ImageFolder', path=gen_folder)
    return dict(G=G, dataset_kwargs=dataset_kwargs, gen_dataset_kwargs=gen_kwargs, device=demo.device, progress=False,
                cache=True, seed=0, detectors=demo.config.detectors, out_dir=demo.run_dir, bootstrap=demo.config.bootstrap)

def _report(demo, result):
    # The registry's line writer; its stdout copy of the line is not part of the demo's progress output.
    with contextlib.redirect_stdout(io.StringIO()):
        metric_main.report_metric(result, run_dir=demo.run_dir, snapshot_pkl=demo.snapshot)
    return result.results

def generate_metric_images(demo, G, count):
    """Render `count` images once (seed i, grade i mod 5) for every image-based metric. Returns the folder."""
    folder = os.path.join(demo.outdir, 'metric-images')
    device = torch.device(demo.device)
    classes = list(GRADES) if G.c_dim > 0 else [None]
    for k, idx in enumerate(classes):
        seeds = list(range(k, count, len(classes)))
        for seed, img in generate.generate_images(G, seeds, class_idx=idx, batch_size=8, device=device):
            generate.save_png(os.path.join(folder, generate.seed_filename(seed)), img)
    return folder

def compute_metrics(demo):
    G = generate.load_generator(demo.snapshot, torch.device(demo.device))
    cfg = demo.config
    start = time.time()
    folder = generate_metric_images(demo, G, max(cfg.metric_images, cfg.spectrum_images))
    demo.echo(f'      {max(cfg.metric_images, cfg.spectrum_images)} images for the metrics in {folder} '
              f'({dnnlib.format_time(time.time() - start)})')
    done = []
    for label, fn in [('FID/KID', _fid_kid), ('EQ-T', _eqt), ('spectrum', _spectrum), ('memorisation', _memorization)]:
        start = time.time()
        names = fn(demo, G, folder, cfg)
        done.extend(names)
        demo.echo(f'      {label}: {", ".join(names)} in {dnnlib.format_time(time.time() - start)}')
    return f'{", ".join(done)} written to {demo.run_dir}/metric-*.jsonl'

def _fid_kid(demo, G, folder, cfg):
    # Not through calc_metric: FID and KID share one feature extraction here, and FID takes the symmetric
    # eigen-route of the metrics module (equal to NVIDIA's sqrtm route to ~1e-7, 8x faster on CPU).
    start = time.time()
    opts = metric_utils.MetricOptions(**metric_kwargs(demo, gen_folder=folder))
    detector = opts.get_detector('inception')
    kwargs = dict(return_features=True)
    # All features, no moments: the same cache entry the memorisation audit reads, so reals are extracted once.
    feat_real = metric_utils.compute_feature_stats_for_dataset(opts, detector, kwargs, capture_all=True).get_all()
    feat_gen = metric_utils.compute_feature_stats_for_generator(opts, detector, kwargs, num_gen=cfg.metric_images,
                                                                capture_all=True).get_all()
    fid_name, kid_name = metric_main.sized_name('fid', cfg.metric_images, '_full'), metric_main.sized_name('kid', cfg.metric_images, '_full')
    fid = {fid_name: frechet_inception_distance.fid_from_features(feat_gen, feat_real, method='eigh')}
    kid = {kid_name: kernel_inception_distance.kid_from_features(feat_gen, feat_real, num_subsets=100, max_subset_size=1000, rng=0)}
    if cfg.bootstrap > 0:
        fid.update(bootstrap.summarize(bootstrap.bootstrap_fid(feat_gen, feat_real, cfg.bootstrap, seed=0), fid_name))
        kid.update(bootstrap.summarize(bootstrap.bootstrap_kid(feat_gen, feat_real, cfg.bootstrap, seed=0), kid_name))
    seconds = time.time() - start
    for name, results in ((fid_name, fid), (kid_name, kid)):
        _report(demo, dnnlib.EasyDict(results=results, metric=name, total_time=seconds,
                                      total_time_str=dnnlib.format_time(seconds), num_gpus=1))
    return [f'{fid_name} = {fid[fid_name]:.2f}', f'{kid_name} = {kid[kid_name]:.4f}']

def _eqt(demo, G, folder, cfg):
    name = metric_main.sized_name('eqt', cfg.eq_samples, '_int')
    results = _report(demo, metric_main.calc_metric(name, **metric_kwargs(demo, G=G)))
    return [f'{name} = {results[name]:.2f} dB']

def _spectrum(demo, G, folder, cfg):
    name = metric_main.sized_name('spectrum', cfg.spectrum_images)
    results = _report(demo, metric_main.calc_metric(name, **metric_kwargs(demo, gen_folder=folder)))
    return [f'{name} = {results[name]:.3f}']

def _memorization(demo, G, folder, cfg):
    name = metric_main.sized_name('memorization', cfg.metric_images)
    results = _report(demo, metric_main.calc_metric(name, **metric_kwargs(demo, gen_folder=folder)))
    return [f'{name}: {results.get(f"{name}_near_copies", "?")} near-copies']

#----------------------------------------------------------------------------
# Stage 5: the report.

def write_report(demo):
    demo.report = run_report.write_report(demo.run_dir, out=os.path.join(demo.outdir, 'report.html'), generate=True,
                                      device=demo.device)
    return demo.report

#----------------------------------------------------------------------------

def run_demo(outdir='demo-out', minutes=10.0, device='auto', config=None, echo=print):
    """Run every stage within `minutes` (wall clock, from the call).

    Args:
        outdir:  Folder for the dataset, the run directory, images and report.html.
        minutes: Time budget; training gets what the other stages leave.
        device:  'auto', 'cpu' or 'cuda'.
        config:  DemoConfig; None = the preset for the device (cpu_config() / gpu_config()).
        echo:    Where progress lines go.

    Returns:
        (list of StageResult, path of report.html or None).
    """
    start = time.time()
    device = resolve_device(device).type # 'cpu' or 'cuda' (this process's GPU).
    config = config or (gpu_config() if device == 'cuda' else cpu_config())
    os.makedirs(outdir, exist_ok=True)
    demo = Demo(outdir, config, device, deadline=start + minutes * 60, echo=echo)
    echo(f'fundus-stylegan3 demo: {config.name} preset on {device}, {minutes:g} minutes, output in {os.path.abspath(outdir)}')
    stages = [
        ('Phantom dataset',         build_dataset,   ()),
        ('Training (stylegan3-t)',  train_network,   ('zip_path',)),
        ('Generating images',       generate_images, ('snapshot',)),
        ('Metrics',                 compute_metrics, ('snapshot',)),
        ('Report',                  write_report,    ('run_dir',)),
    ]
    for i, (name, fn, needs) in enumerate(stages):
        demo.stage(i + 1, len(stages), name, lambda fn=fn: fn(demo), needs=needs)
    echo(f'Finished in {dnnlib.format_time(time.time() - start)}.')
    if demo.report:
        echo(f'Report: {os.path.abspath(demo.report)}')
    return demo.results, demo.report

#----------------------------------------------------------------------------

@click.command()
@click.option('--outdir',  help='Output folder', metavar='DIR', default='demo-out', show_default=True)
@click.option('--minutes', help='Wall-clock budget; training gets what the other stages leave', type=click.FloatRange(min=0), default=10, show_default=True)
@click.option('--device',  help='Where to run', type=click.Choice(['auto', 'cpu', 'cuda']), default='auto', show_default=True)
def main(outdir, minutes, device):
    """Build phantom fundus data, train a small StyleGAN3-T, generate, score and write an HTML report."""
    try:
        results, _report = run_demo(outdir=outdir, minutes=minutes, device=device)
    except DeviceError as e:
        raise click.ClickException(str(e)) from None
    bad = [r for r in results if r.status == 'failed']
    if bad:
        raise click.ClickException(f'{len(bad)} stage(s) failed: {", ".join(r.name for r in bad)}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
