# Stages 1-3: the phantom dataset (fundus.data.build), training from scratch (training.launch, time-budgeted),
# the model evaluated from here on (shipped or stage 2's), images per grade (training.generate), metrics
# through the registry (metrics.metric_main) plus the eigen-route FID/KID with bootstrap intervals, and the
# training run's report (fundus.report.run).

import contextlib
import glob
import io
import os
import time

import torch

import dnnlib
from fundus import grades
from fundus.data import build as data_build
from fundus.demo import shipped
from fundus.demo.stages import DeadlineBudget, StageOutput
from fundus.grades import GRADES
from fundus.report import run as run_report
from metrics import bootstrap, frechet_inception_distance, kernel_inception_distance, metric_main, metric_utils
from torch_utils.ops import cpu_kernels
from training import config, generate, launch, run_dir

#----------------------------------------------------------------------------
# Stage 1: the phantom dataset (reused when an identical one exists).

def phantom_zip(demo, count, resolution, seed=0, name='phantoms'):
    """Path of a phantom zip of `count` images at `resolution` (built once per outdir)."""
    path = os.path.join(demo.outdir, f'{name}-{count}-{resolution}x{resolution}.zip')
    if not os.path.isfile(path):
        data_build.build_dataset(f'phantom:{count}', path, resolution=(resolution, resolution), seed=seed, progress=False)
    return path

def build_dataset(demo):
    cfg = demo.config
    existed = os.path.isfile(os.path.join(demo.outdir, f'phantoms-{cfg.num_images}-{cfg.resolution}x{cfg.resolution}.zip'))
    demo.zip_path = phantom_zip(demo, cfg.num_images, cfg.resolution)
    what = 'reusing' if existed else f'{cfg.num_images} labelled phantom photographs (grades DR0-DR4) in'
    return StageOutput(f'{what} {demo.zip_path}', [('phantom dataset (zip)', demo.zip_path)])

#----------------------------------------------------------------------------
# Stage 2: training until the stage's deadline. Ticks are short and the run stops before the tick that would
# overrun (at least one tick, one step long, always runs); the stop writes the final grid, snapshot and state
# (the loop's stop rule), so grids and snapshots in between can be rare.

def make_training_config(demo, budget_kimg=100000):
    """train.py's resolved config for the demo's network (config.make_config + the demo's size overrides)."""
    cfg = demo.config
    c = config.make_config(cfg='stylegan3-t', data=demo.zip_path, gpus=1, batch=cfg.batch, gamma=cfg.gamma, cond=True,
                           aug='ada', augpipe='fundus', cbase=cfg.cbase, cmax=cfg.cmax, map_depth=2,
                           zdim=cfg.z_dim, layers=cfg.num_layers, margin=cfg.margin_size, mbstd_group=min(4, cfg.batch), metrics='none', kimg=budget_kimg, tick=1, snap=1, seed=0,
                           fp32=(demo.device == 'cpu'), workers=cfg.workers, device=demo.device)
    c.kimg_per_tick = cfg.tick_kimg
    c.image_snapshot_ticks = cfg.image_ticks
    c.network_snapshot_ticks = cfg.snapshot_ticks
    c.grid_size = cfg.grid_size
    c.ada_kimg = cfg.ada_kimg
    c.tensorboard = False
    return c

def cpu_kernel_note(demo):
    # On the CPU: the compiled CPU plugin, built (once per machine, 40-53 s on 2 cores) before the
    # first timed tick rather than inside it.
    if demo.device != 'cpu':
        return ''
    demo.echo('      the CPU plugin (filtered_lrelu, upfirdn2d): loading (the first run on a machine compiles it)...')
    return '; CPU plugin' if cpu_kernels.load_cpu_plugin() is not None else '; no CPU plugin (PyTorch CPU path)'

def train_network(demo):
    c = make_training_config(demo)
    plugin = cpu_kernel_note(demo)
    budget = DeadlineBudget(demo.stage_deadline, demo.echo)
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
    res = demo.config.resolution
    note = (f'{kimg_text} kimg in {dnnlib.format_time(time.time() - start)} (stylegan3-t, {res}x{res}, conditional on '
            f'grade{plugin}); run directory {demo.run_dir}')
    return StageOutput(note, [('run directory', demo.run_dir), ('last snapshot', demo.snapshot)])

def prune_run_dir(path):
    """Delete all but the latest training state (a demo run is not resumed); snapshots stay."""
    states = sorted(glob.glob(os.path.join(path, 'training-state-*.pt')))
    for path in states[:-1]:
        os.remove(path)

#----------------------------------------------------------------------------
# Stage 3: the model evaluated from here on. A shipped model is checked against its manifest (a mismatch
# fails this stage and everything that needs the model); without one, stage 2's snapshot.

def choose_model(demo):
    path = shipped.generator_path(demo.model_dir or shipped.MODEL_DIR)
    if path is None:
        if demo.snapshot is None:
            raise RuntimeError('no shipped model and no snapshot from stage 2')
        demo.model, demo.metrics_dir = demo.snapshot, demo.run_dir
        demo.eval_zip = demo.zip_path
        return StageOutput(shipped.NO_MODEL, [('model', demo.model)])
    demo.model = path
    demo.shipped_encoder = shipped.encoder_path(demo.model_dir or shipped.MODEL_DIR)
    G = generate.load_generator(path)
    demo.eval_zip = phantom_zip(demo, demo.config.num_images, int(G.img_resolution))
    demo.metrics_dir = os.path.join(demo.outdir, 'shipped-model')
    os.makedirs(demo.metrics_dir, exist_ok=True)
    links = [('model', path)] + ([('shipped encoder', demo.shipped_encoder)] if demo.shipped_encoder else [])
    what = 'shipped model' + (' and encoder' if demo.shipped_encoder else '')
    return StageOutput(f'{what} {path} (SHA-256 checked)', links)

def generate_images(demo):
    cfg = demo.config
    folder = os.path.join(demo.outdir, 'images')
    seeds = list(range(cfg.images_per_grade))
    device = torch.device(demo.device)
    G = generate.load_generator(demo.model, device)
    classes = list(GRADES) if G.c_dim > 0 else [None]
    links = []
    for idx in classes:
        subdir = os.path.join(folder, grades.grade_name(idx) if idx is not None else 'all')
        for seed, img in generate.generate_images(G, seeds, class_idx=idx, batch_size=len(seeds), device=device):
            generate.save_png(os.path.join(subdir, generate.seed_filename(seed)), img)
        generate.write_grid(subdir, seeds)
        links.append((f'grid {os.path.basename(subdir)}', os.path.join(subdir, 'grid.png')))
    name = os.path.basename(demo.model)
    note = (f'{len(classes) * len(seeds)} images in {folder}/DR*/ (same as: python gen_images.py --network=.../{name} '
            f'--seeds=0-{len(seeds) - 1} --class=DR<g> --grid)')
    return StageOutput(note, links)

#----------------------------------------------------------------------------
# Stage 3: metrics. Names carry the image counts (fid100_full = FID of 100 generated images against the full
# dataset). Lines go to <metrics_dir>/metric-<name>.jsonl in NVIDIA's format.

def dataset_kwargs(zip_path):
    return dict(class_name='training.dataset.ImageFolderDataset', path=zip_path, use_labels=True, max_size=None, xflip=False)

def metric_kwargs(demo, G=None, gen_folder=None):
    """MetricOptions arguments against the full evaluation dataset; generated images from G or a folder."""
    gen_kwargs = None if gen_folder is None else dict(class_name='metrics.image_folder.ImageFolder', path=gen_folder)
    return dict(G=G, dataset_kwargs=dataset_kwargs(demo.eval_zip), gen_dataset_kwargs=gen_kwargs, device=demo.device,
                progress=False, cache=True, seed=0, detectors=demo.config.detectors, out_dir=demo.metrics_dir,
                bootstrap=demo.config.bootstrap)

def _report(demo, result):
    # The registry's line writer; its stdout copy of the line is not part of the demo's progress output.
    with contextlib.redirect_stdout(io.StringIO()):
        metric_main.report_metric(result, run_dir=demo.metrics_dir, snapshot_pkl=demo.model)
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
    G = generate.load_generator(demo.model, torch.device(demo.device))
    cfg = demo.config
    start = time.time()
    count = max(cfg.metric_images, cfg.spectrum_images)
    folder = generate_metric_images(demo, G, count)
    demo.echo(f'      {count} images for the metrics in {folder} ({dnnlib.format_time(time.time() - start)})')
    done = []
    steps = [('FID/KID', _fid_kid), ('EQ-T', _eqt), ('EQ-R', _eqr), ('spectrum', _spectrum), ('memorisation', _memorization)]
    for label, fn in steps:
        start = time.time()
        names = fn(demo, G, folder, cfg)
        done.extend(names)
        demo.echo(f'      {label}: {", ".join(names)} in {dnnlib.format_time(time.time() - start)}')
    links = sorted(glob.glob(os.path.join(demo.metrics_dir, 'metric-*.jsonl')))
    return StageOutput(f'{", ".join(done)}; written to {demo.metrics_dir}/metric-*.jsonl', [(os.path.basename(p), p) for p in links])

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
    demo.metrics.update({fid_name: fid[fid_name], kid_name: kid[kid_name]})
    return [f'{fid_name} = {fid[fid_name]:.2f}{_ci(fid, fid_name, 2)}', f'{kid_name} = {kid[kid_name]:.4f}{_ci(kid, kid_name, 4)}']

def _ci(results, name, digits):
    lo, hi = results.get(f'{name}_boot_p2.5'), results.get(f'{name}_boot_p97.5')
    return '' if lo is None else f' (95% CI {lo:.{digits}f}-{hi:.{digits}f})'

def _registry_metric(demo, name, **kwargs):
    results = _report(demo, metric_main.calc_metric(name, **metric_kwargs(demo, **kwargs)))
    demo.metrics.update({k: v for k, v in results.items() if k in (name, f'{name}_near_copies')})
    return results

def _eqt(demo, G, folder, cfg):
    name = metric_main.sized_name('eqt', cfg.eq_samples, '_int')
    return [f'{name} = {_registry_metric(demo, name, G=G)[name]:.2f} dB']

def _eqr(demo, G, folder, cfg):
    name = metric_main.sized_name('eqr', cfg.eq_samples)
    return [f'{name} = {_registry_metric(demo, name, G=G)[name]:.2f} dB']

def _spectrum(demo, G, folder, cfg):
    name = metric_main.sized_name('spectrum', cfg.spectrum_images)
    return [f'{name} = {_registry_metric(demo, name, gen_folder=folder)[name]:.3f}']

def _memorization(demo, G, folder, cfg):
    name = metric_main.sized_name('memorization', cfg.metric_images)
    results = _registry_metric(demo, name, gen_folder=folder)
    return [f'{name}: {results.get(f"{name}_near_copies", "?")} near-copies']

#----------------------------------------------------------------------------
# Stage 3: the report of the training run (stage 2's), with the metrics when they belong to it.

def write_report(demo):
    path = run_report.write_report(demo.run_dir, out=os.path.join(demo.outdir, 'report.html'), generate=True,
                                   device=demo.device)
    demo.report = path
    demo.pages.append(('Training run report (stage 2, metrics of stage 3)', path))
    return StageOutput(path, [('report', path)])

#----------------------------------------------------------------------------
