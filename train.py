"""Train a GAN (StyleGAN3-T, StyleGAN3-R or StyleGAN2) with ADA, NVIDIA's command line, exact resume."""

# Thin CLI: click options -> one resolved, JSON-serialisable config (make_config) -> run directory with
# training_options.json -> one process per device -> training.training_loop.training_loop(**config).

import copy
import json
import os
import re
import tempfile

import click
import torch

import dnnlib
from torch_utils import distributed
from training import config

#----------------------------------------------------------------------------

def parse_comma_list(s):
    """'a,b' -> ['a', 'b']; None, '' and 'none' (any case) -> []; a list passes through."""
    if isinstance(s, list):
        return s
    text = (s or '').strip()
    return [] if text.lower() in ('', 'none') else text.split(',')

def resolve_device(device):
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException('--device=cuda: no CUDA device is available; use --device=cpu')
    return device

def is_state_resume(resume):
    return resume is not None and (os.path.isdir(resume) or resume.endswith('.pt'))

#----------------------------------------------------------------------------
# Per-architecture presets: the published StyleGAN3 / StyleGAN2 recipes. None means "not set by this
# preset". --map-depth and --glr override map_depth and glr when given.

CFG_PRESETS = {
    'stylegan3-t': dnnlib.EasyDict(
        generator        = 'training.networks_stylegan3.Generator',
        map_depth        = 2,       # Mapping layers.
        glr              = 0.0025,  # G learning rate.
        G_capacity_scale = 1,       # Multiplier on --cbase and --cmax for G only.
        G_extra          = {},      # Extra Generator kwargs.
        G_reg_interval   = None,    # No path-length regularisation.
        loss_extra       = {},      # Extra StyleGAN2Loss kwargs.
        blur_sigma       = None,    # D-input blur at the start (pixels).
    ),
    'stylegan3-r': dnnlib.EasyDict(
        generator        = 'training.networks_stylegan3.Generator',
        map_depth        = 2,
        glr              = 0.0025,
        G_capacity_scale = 2,       # Rotation equivariance needs twice the feature maps.
        G_extra          = dict(conv_kernel=1, use_radial_filters=True),
        G_reg_interval   = None,
        loss_extra       = {},
        blur_sigma       = 10,      # Fades out over 200 kimg at batch 32 (scaled with the batch).
    ),
    'stylegan2': dnnlib.EasyDict(
        generator        = 'training.networks_stylegan2.Generator',
        map_depth        = 8,
        glr              = 0.002,
        G_capacity_scale = 1,
        G_extra          = dict(fused_modconv_default='inference_only'),
        G_reg_interval   = 4,       # Lazy path-length regularisation every 4 G steps.
        loss_extra       = dict(style_mixing_prob=0.9, pl_weight=2, pl_no_weight_grad=True),
        blur_sigma       = None,
    ),
}
CFGS = tuple(CFG_PRESETS)

# Mixed precision: (fp16 resolutions, conv clamp) for the default run and for --fp32.
PRECISION = {False: (4, 256), True: (0, None)}

#----------------------------------------------------------------------------

def init_dataset_kwargs(data, cond, mirror, seed):
    """Open the dataset once to read its resolution, size and labels; returns (kwargs, dataset name)."""
    from training.dataset import check_labels
    kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=bool(cond),
                             max_size=None, xflip=False)
    try:
        ds = dnnlib.construct_class_by_name(**kwargs)
    except (OSError, ValueError) as e:
        raise click.ClickException(f'--data: {e}')
    try:
        note = check_labels(ds, cond=cond, warn=False)
        if note:
            click.echo(f'Note: {note}', err=True)
        kwargs.update(resolution=ds.resolution, use_labels=bool(cond) and ds.has_labels, max_size=len(ds))
        name = ds.name
    except (OSError, ValueError) as e:
        raise click.ClickException(f'--data: {e}')
    finally:
        ds.close()
    kwargs.update(xflip=bool(mirror), random_seed=seed)
    return kwargs, name

def _adam(lr):
    # Tuples, not lists: torch.optim.Adam rejects betas=[0, 0.99].
    return dnnlib.EasyDict(class_name='torch.optim.Adam', lr=lr, betas=(0, 0.99), eps=1e-8)

def _network_kwargs(preset, batch, cbase, cmax, map_depth, freezed, mbstd_group, fp32):
    """(G_kwargs, D_kwargs) for one preset."""
    fp16_res, clamp = PRECISION[bool(fp32)]
    scale = preset.G_capacity_scale
    G = dnnlib.EasyDict(class_name=preset.generator, z_dim=512, w_dim=512,
                        channel_base=cbase * scale, channel_max=cmax * scale,
                        num_fp16_res=fp16_res, conv_clamp=clamp,
                        mapping_kwargs=dnnlib.EasyDict(num_layers=preset.map_depth if map_depth is None else map_depth))
    G.update(preset.G_extra)
    if preset.generator.endswith('stylegan3.Generator'):
        # Half-life of the magnitude EMA: 20k images, whatever the batch size.
        G.magnitude_ema_beta = 0.5 ** (batch / 20000)
    D = dnnlib.EasyDict(class_name='training.networks_stylegan2.Discriminator',
                        channel_base=cbase, channel_max=cmax, num_fp16_res=fp16_res, conv_clamp=clamp,
                        block_kwargs=dnnlib.EasyDict(freeze_layers=freezed), mapping_kwargs=dnnlib.EasyDict(),
                        epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=mbstd_group))
    return G, D

def _loss_kwargs(preset, gamma, batch, fine_tune):
    loss = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=gamma, **preset.loss_extra)
    if preset.blur_sigma is not None:
        loss.update(blur_init_sigma=preset.blur_sigma, blur_fade_kimg=batch * 25 / 4)
    if fine_tune:
        loss.blur_init_sigma = 0 # Pretrained weights need no blur warm-up.
    return loss

def _augment_settings(aug, augpipe, p, target):
    """(augment_kwargs, augment_p, ada_target) for --aug."""
    from training.augment import augpipe_specs
    if aug == 'noaug':
        return None, 0, None
    kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augpipe_specs[augpipe])
    return kwargs, (p if aug == 'fixed' else 0), (target if aug == 'ada' else None)

def _check_required(cfg, data, gpus, batch, gamma, augpipe):
    from training.augment import augpipe_specs
    given = {'--cfg': cfg, '--data': data, '--gpus': gpus, '--batch': batch, '--gamma': gamma}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise click.ClickException(f'Missing option {missing[0]} (required unless --resume names a run directory or training state)')
    if cfg not in CFG_PRESETS:
        raise click.ClickException(f'--cfg={cfg}: expected one of {", ".join(CFGS)}')
    if augpipe not in augpipe_specs:
        raise click.ClickException(f'--augpipe={augpipe}: expected one of {", ".join(augpipe_specs)}')

def make_config(cfg, data, gpus, batch, gamma, cond=False, mirror=False, aug='ada', augpipe='bgc', resume=None,
                freezed=0, p=0.2, target=0.6, batch_gpu=None, cbase=32768, cmax=512, glr=None, dlr=0.002,
                map_depth=None, mbstd_group=4, metrics='fid50k_full', kimg=25000, tick=4, snap=50, seed=0,
                fp32=False, nobench=False, workers=3, device='auto', deterministic=False, **_ignored):
    """The resolved training configuration for NVIDIA-style options (see docs/training.md).

    Raises click.ClickException naming the offending option. Returns an EasyDict that
    training.training_loop.training_loop(**config) accepts (plus run_dir, set by launch_training).
    """
    _check_required(cfg, data, gpus, batch, gamma, augpipe)
    if resume is not None and is_state_resume(resume):
        raise click.ClickException('--resume: a run directory or training state continues that run; it is handled by launch')
    preset = CFG_PRESETS[cfg]
    fine_tune = resume is not None
    metric_list = parse_comma_list(metrics)
    per_process = batch_gpu or batch // gpus
    _check_batch_and_metrics(batch, gpus, per_process, mbstd_group, metric_list)

    # Data first: the run name needs the dataset name.
    training_set_kwargs, dataset_name = init_dataset_kwargs(data, cond, mirror, seed)
    G_kwargs, D_kwargs = _network_kwargs(preset, batch, cbase, cmax, map_depth, freezed, mbstd_group, fp32)
    augment_kwargs, augment_p, ada_target = _augment_settings(aug, augpipe, p, target)
    c = dnnlib.EasyDict(
        G_kwargs            = G_kwargs,
        D_kwargs            = D_kwargs,
        G_opt_kwargs        = _adam(glr if glr is not None else preset.glr),
        D_opt_kwargs        = _adam(dlr),
        loss_kwargs         = _loss_kwargs(preset, gamma, batch, fine_tune),
        augment_kwargs      = augment_kwargs,
        augment_p           = augment_p,                    # Fixed probability (--aug=fixed), else ADA's start.
        ada_target          = ada_target,                   # None unless --aug=ada.
        ada_kimg            = 100 if fine_tune else 500,    # ADA adapts faster when fine-tuning.
        data_loader_kwargs  = dnnlib.EasyDict(pin_memory=True, prefetch_factor=2, num_workers=workers),
        training_set_kwargs = training_set_kwargs,
        num_gpus            = gpus,
        batch_size          = batch,
        batch_gpu           = per_process,
        metrics             = metric_list,
        total_kimg          = kimg,
        kimg_per_tick       = tick,
        image_snapshot_ticks   = snap,
        network_snapshot_ticks = snap,
        random_seed         = seed,
        ema_kimg            = batch * 5 / 16,               # 10 kimg at batch 32.
        ema_rampup          = None if fine_tune else 0.05,  # Pretrained G_ema needs no ramp-up.
        G_reg_interval      = preset.G_reg_interval,
        D_reg_interval      = 16,
        device              = resolve_device(device),
        deterministic       = bool(deterministic),
        cudnn_benchmark     = not nobench,
        resume_pkl          = resume,                       # A network pickle: new run from its weights.
        resume_state        = None,                         # Set only when continuing a run (resume_run).
    )
    c.desc = f'{cfg}-{dataset_name}-gpus{gpus:d}-batch{batch:d}-gamma{gamma:g}'
    return c

def _check_batch_and_metrics(batch, gpus, per_process, mbstd_group, metric_list):
    if batch % gpus:
        raise click.ClickException(f'--batch={batch} must be a multiple of --gpus={gpus}')
    if batch % (gpus * per_process):
        raise click.ClickException(f'--batch={batch} must be a multiple of --gpus times --batch-gpu ({gpus} x {per_process})')
    if per_process < mbstd_group:
        raise click.ClickException(f'--batch-gpu={per_process} cannot be smaller than --mbstd-group={mbstd_group}')
    if not all(re.fullmatch(r'\w+', m, flags=re.ASCII) for m in metric_list):
        raise click.ClickException(f'--metrics: malformed metric list {",".join(metric_list)}')
    if not metric_list:
        return
    try:
        import metrics.metric_main as registry
    except ImportError as e:
        raise click.ClickException(f'--metrics={",".join(metric_list)}: the metrics package is not available ({e}); use --metrics=none')
    unknown = [m for m in metric_list if not registry.is_valid_metric(m)]
    if unknown:
        raise click.ClickException(f'--metrics: unknown metric(s) {", ".join(unknown)}; choose from {", ".join(registry.list_valid_metrics())} or none')

#----------------------------------------------------------------------------
# Objects: --dry-run builds all of them on the CPU, so a config that cannot run fails at once.

def construct_objects(c, device='cpu'):
    """Build G, D, G_ema, the augment pipe, the loss and both optimisers from a config. Returns an EasyDict."""
    import training.training_loop as loop
    torch.manual_seed(c.random_seed)
    dataset = dnnlib.construct_class_by_name(**dnnlib.EasyDict(c.training_set_kwargs))
    try:
        G, D, G_ema = loop.build_networks(dataset, c.G_kwargs, c.D_kwargs, device)
    finally:
        dataset.close()
    augment_pipe = loop.build_augment_pipe(c.augment_kwargs, c.augment_p, device)
    loss = dnnlib.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, **c.loss_kwargs)
    phases = loop.build_phases(G, D, c.G_opt_kwargs, c.D_opt_kwargs, c.G_reg_interval, c.D_reg_interval)
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, loss=loss, phases=phases,
                           G_opt=phases[0].opt, D_opt=phases[-1].opt)

#----------------------------------------------------------------------------
# Run directories and launching.

def next_run_dir(outdir, desc):
    prev = [int(m.group(1)) for x in (os.listdir(outdir) if os.path.isdir(outdir) else [])
            for m in [re.match(r'^(\d+)', x)] if m is not None and os.path.isdir(os.path.join(outdir, x))]
    return os.path.join(outdir, f'{max(prev, default=-1) + 1:05d}-{desc}')

def save_options(c):
    text = json.dumps(options_of(c), indent=2)
    dnnlib.atomic_write(os.path.join(c.run_dir, 'training_options.json'), lambda f: f.write(text), mode='w')

def options_of(c):
    """The JSON-serialisable options dict (what training_options.json and training states hold)."""
    return json.loads(json.dumps({k: v for k, v in c.items() if k != 'options'}))

def launch_training(c, outdir=None, desc=None, dry_run=False):
    """Create the run directory (unless c.run_dir is set), save the options and train on c.num_gpus processes.

    Args:
        c:       config from make_config (or loaded from a training state).
        outdir:  parent directory of a new run directory.
        desc:    extra text for the run directory name.
        dry_run: print the options, construct every object on the CPU and return None.
    Returns:
        The run directory (None for a dry run).
    """
    c = copy.deepcopy(c)
    if c.get('run_dir') is None:
        c.run_dir = next_run_dir(outdir, c.desc + (f'-{desc}' if desc else ''))
    click.echo('\nTraining options:')
    click.echo(json.dumps(options_of(c), indent=2))
    click.echo(f'\nOutput directory:    {c.run_dir}')
    click.echo(f'Number of processes: {c.num_gpus} ({c.device})')
    click.echo(f'Batch size:          {c.batch_size} images')
    click.echo(f'Training duration:   {c.total_kimg} kimg')
    click.echo(f'Resume:              {c.resume_state or c.resume_pkl or "no"}\n')
    if dry_run:
        objs = construct_objects(c, device='cpu')
        for name in ('G', 'D', 'augment_pipe'):
            n = 0 if objs[name] is None else sum(p.numel() for p in objs[name].parameters())
            click.echo(f'Constructed {name}: {type(objs[name]).__name__} ({n} parameters)')
        click.echo(f'Constructed loss: {type(objs.loss).__name__}; optimisers: {type(objs.G_opt).__name__}, {type(objs.D_opt).__name__}')
        click.echo('Dry run; exiting.')
        return None

    try:
        os.makedirs(c.run_dir, exist_ok=c.resume_state is not None)
        save_options(c)
    except OSError as e:
        raise click.ClickException(f'--outdir: cannot create the run directory {c.run_dir!r}: {e}')
    c.options = options_of(c)
    if distributed.launched_by_torchrun():
        _subprocess_fn(int(os.environ['RANK']), c, None)
    elif c.num_gpus == 1:
        _subprocess_fn(0, c, None)
    else:
        # The spawned processes rendezvous through a file in a private scratch directory.
        with tempfile.TemporaryDirectory(prefix='train-rendezvous-') as scratch:
            torch.multiprocessing.spawn(fn=_subprocess_fn, args=(c, scratch), nprocs=c.num_gpus)
    return c.run_dir

def _subprocess_fn(rank, c, temp_dir):
    from training.training_loop import training_loop
    device = c.device
    if device == 'cuda':
        device = f'cuda:{distributed.get_local_rank() if distributed.launched_by_torchrun() else rank}'
    if c.num_gpus > 1 and device == 'cpu': # Share the cores instead of oversubscribing them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // c.num_gpus))
    if c.num_gpus > 1:
        init_method = None if distributed.launched_by_torchrun() else 'file://' + os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        if distributed.launched_by_torchrun() and int(os.environ['WORLD_SIZE']) != c.num_gpus:
            raise click.ClickException(f'--gpus={c.num_gpus} does not match torchrun WORLD_SIZE={os.environ["WORLD_SIZE"]}')
        distributed.init(device=device, rank=rank, world_size=c.num_gpus, init_method=init_method)
    try:
        kwargs = {k: v for k, v in c.items() if k != 'desc'}
        kwargs.update(rank=rank, device=device)
        training_loop(**kwargs)
    finally:
        distributed.shutdown()

#----------------------------------------------------------------------------
# Continuing a run from a training state.

def resume_run(resume, overrides):
    """Config that continues the run owning `resume` (a run directory or training-state file)."""
    from training import checkpoint
    path = resume
    if os.path.isdir(resume):
        path = checkpoint.find_latest_state(resume)
        if path is None:
            raise click.ClickException(f'--resume={resume}: no training-state-*.pt in this directory; '
                                       f'to start a new run from weights, pass a network-snapshot-*.pkl')
    try:
        state = checkpoint.load_training_state(path)
    except (OSError, ValueError) as e:
        raise click.ClickException(f'--resume: {e}')
    c = checkpoint.state_options(state)
    c.pop('options', None)
    c.run_dir = os.path.dirname(os.path.abspath(path))
    c.resume_state = os.path.abspath(path)
    for key, value in overrides.items():
        c[key] = value
    if 'device' in overrides:
        c.device = resolve_device(overrides['device'])
    return c

#----------------------------------------------------------------------------

@click.command()
@click.pass_context

# Required for a new run. Continuing a run (--resume=<run dir or training-state-*.pt>) reads them from the state.
@click.option('--outdir',       metavar='DIR',
              help='Parent directory for runs; each run gets a new numbered subdirectory (00000-<cfg>-<data>-...)')
@click.option('--cfg',          type=click.Choice(list(CFGS)),
              help='Architecture preset: stylegan3-t (translation equivariant, the usual choice for fundus), '
                   'stylegan3-r (also rotation equivariant, ~2x slower), stylegan2 (fastest, a good baseline)')
@click.option('--data',         metavar='[ZIP|DIR]',
              help='Training images: a zip or folder made by dataset_tool.py (square, power-of-two resolution)')
@click.option('--gpus',         metavar='INT', type=click.IntRange(min=1),
              help='Processes to train with: one per GPU, or CPU workers with --device=cpu')
@click.option('--batch',        metavar='INT', type=click.IntRange(min=1),
              help='Images per optimiser step, summed over all processes; 32 suits most fundus sets')
@click.option('--gamma',        metavar='FLOAT', type=click.FloatRange(min=0),
              help='Strength of the R1 gradient penalty on D; try 2 at 256 px, 8 at 512 px, 16+ at 1024 px, '
                   'and raise it if training collapses')

# What to train.
@click.option('--cond',         metavar='BOOL', type=bool, default=False, show_default=True,
              help='Condition G and D on the labels in dataset.json (e.g. retinopathy grade)')
@click.option('--mirror',       metavar='BOOL', type=bool, default=False, show_default=True,
              help='Add left-right mirrored copies of the images; mirroring swaps left and right eyes, '
                   'so leave it off when laterality matters')
@click.option('--aug',          type=click.Choice(['noaug', 'ada', 'fixed']), default='ada', show_default=True,
              help='Augmentation of images seen by D: ada adapts the strength to D overfitting, fixed uses --p, '
                   'noaug turns it off (only for very large sets)')
@click.option('--augpipe',      type=click.Choice(['bgc', 'bg', 'bgcf', 'bgcfn', 'bgcfnc', 'fundus', 'fundus-xflip']), default='bgc', show_default=True,
              help='Which augmentations to use; fundus keeps the anatomy plausible (no hue change, luma flip, '
                   '90-degree rotation or x-flip; milder colour), fundus-xflip adds x-flips')
@click.option('--resume',       metavar='[PATH|URL]', type=str,
              help='A network-snapshot-*.pkl starts a new run from its weights; a run directory or '
                   'training-state-*.pt continues that run exactly')
@click.option('--freezed',      metavar='INT', type=click.IntRange(min=0), default=0, show_default=True,
              help='Keep this many of D\'s highest-resolution layers fixed (useful when fine-tuning on a small set)')

# Hyperparameters.
@click.option('--p',            metavar='FLOAT', type=click.FloatRange(min=0, max=1), default=0.2, show_default=True,
              help='Augmentation probability used with --aug=fixed')
@click.option('--target',       metavar='FLOAT', type=click.FloatRange(min=0, max=1), default=0.6, show_default=True,
              help='With --aug=ada: the D overfitting level (mean sign of D on reals) that ADA steers towards')
@click.option('--batch-gpu',    metavar='INT', type=click.IntRange(min=1),
              help='Images per process per forward pass; lower it to save memory, the batch is then '
                   'accumulated  [default: batch/gpus]')
@click.option('--cbase',        metavar='INT', type=click.IntRange(min=1), default=32768, show_default=True,
              help='Network width: feature maps at a layer are about cbase / resolution; halve it for a quicker, smaller model')
@click.option('--cmax',         metavar='INT', type=click.IntRange(min=1), default=512, show_default=True,
              help='Upper bound on the feature maps of any layer')
@click.option('--glr',          metavar='FLOAT', type=click.FloatRange(min=0),
              help='Adam learning rate of G  [default: 0.0025 for stylegan3-*, 0.002 for stylegan2]')
@click.option('--dlr',          metavar='FLOAT', type=click.FloatRange(min=0), default=0.002, show_default=True,
              help='Adam learning rate of D')
@click.option('--map-depth',    metavar='INT', type=click.IntRange(min=1),
              help='Layers in the z -> w mapping network  [default: 2 for stylegan3-*, 8 for stylegan2]')
@click.option('--mbstd-group',  metavar='INT', type=click.IntRange(min=1), default=4, show_default=True,
              help='Images per group for D\'s minibatch-standard-deviation layer; must not exceed --batch-gpu')

# Run length, logging and performance.
@click.option('--desc',         metavar='STR', type=str,
              help='Extra text appended to the run directory name')
@click.option('--metrics',      metavar='[NAME|A,B,C|none]', type=parse_comma_list, default='fid50k_full', show_default=True,
              help='Metrics computed at every network snapshot (see calc_metrics.py); none saves time on small runs')
@click.option('--kimg',         metavar='KIMG', type=click.IntRange(min=1), default=25000, show_default=True,
              help='Stop after D has seen this many thousand real images')
@click.option('--tick',         metavar='KIMG', type=click.IntRange(min=1), default=4, show_default=True,
              help='Thousands of images between progress lines in log.txt and stats.jsonl')
@click.option('--snap',         metavar='TICKS', type=click.IntRange(min=1), default=50, show_default=True,
              help='Ticks between snapshots (image grid, network pickle, training state, metrics)')
@click.option('--seed',         metavar='INT', type=click.IntRange(min=0), default=0, show_default=True,
              help='Seed for weights, latents, augmentation and data order')
@click.option('--fp32',         metavar='BOOL', type=bool, default=False, show_default=True,
              help='Keep every layer in float32 (no fp16 in the highest-resolution blocks); slower on GPU')
@click.option('--nobench',      metavar='BOOL', type=bool, default=False, show_default=True,
              help='Skip cuDNN autotuning of convolution algorithms (GPU only)')
@click.option('--workers',      metavar='INT', type=click.IntRange(min=0), default=3, show_default=True,
              help='Background processes that load and decode images; 0 loads in the training process')
@click.option('--device',       type=click.Choice(['auto', 'cuda', 'cpu']), default='auto', show_default=True,
              help='Where to train; auto uses CUDA when a GPU is present, otherwise the CPU')
@click.option('--deterministic', metavar='BOOL', type=bool, default=False, show_default=True,
              help='Use deterministic algorithms only (slower; on CPU a resumed run then matches an uninterrupted one bit for bit)')
@click.option('-n', '--dry-run', is_flag=True,
              help='Print the resolved options, build G, D, the loss and optimisers on the CPU, then exit without training')

def main(ctx, **kwargs):
    """Train StyleGAN3 / StyleGAN2 ("Alias-Free Generative Adversarial Networks", Karras et al. 2021) with ADA.

    \b
    # Train StyleGAN3-T for the DR1 fundus set using 1 GPU.
    python train.py --outdir=~/training-runs --cfg=stylegan3-t --data=~/datasets/dr1-512x512.zip \\
        --gpus=1 --batch=32 --gamma=8 --batch-gpu=8 --snap=10 --augpipe=fundus

    \b
    # Continue that run exactly where it stopped (kimg, augment p, optimiser state and RNGs carry on).
    python train.py --resume=~/training-runs/00000-stylegan3-t-dr1-512x512-gpus1-batch32-gamma8

    \b
    # Fine-tune from a network pickle (a new run; first 10 D layers frozen).
    python train.py --outdir=~/training-runs --cfg=stylegan3-r --data=~/datasets/dr1.zip --gpus=8 \\
        --batch=32 --gamma=8 --resume=network-snapshot-005000.pkl --freezed=10

    \b
    # Tiny CPU run (see docs/training.md).
    python train.py --outdir=runs --cfg=stylegan2 --data=phantom.zip --gpus=1 --batch=4 --gamma=1 \\
        --cbase=1024 --cmax=32 --map-depth=2 --kimg=1 --tick=1 --snap=1 --metrics=none --device=cpu
    """
    opts = dnnlib.EasyDict(kwargs)
    try:
        if is_state_resume(opts.resume):
            c = _resume_from_cli(ctx, opts)
            desc = None
        else:
            if opts.outdir is None:
                raise click.ClickException('Missing option --outdir')
            c = make_config(**opts)
            desc = opts.desc
        launch_training(c, outdir=opts.outdir, desc=desc, dry_run=opts.dry_run)
    except click.ClickException:
        raise
    except Exception as e:
        from training.training_loop import TrainingDivergedError
        if isinstance(e, (TrainingDivergedError, OSError, ValueError)):
            raise click.ClickException(str(e)) from None
        raise

def _resume_from_cli(ctx, opts):
    given = [name for name in opts if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    mapping = dict(kimg='total_kimg', tick='kimg_per_tick', metrics='metrics', gpus='num_gpus', batch_gpu='batch_gpu', device='device')
    overrides = {mapping[n]: opts[n] for n in given if n in mapping}
    if 'snap' in given:
        overrides['image_snapshot_ticks'] = overrides['network_snapshot_ticks'] = opts.snap
    if 'nobench' in given:
        overrides['cudnn_benchmark'] = not opts.nobench
    c = resume_run(opts.resume, overrides)
    # The same command with --resume appended is fine: only options whose value differs are refused.
    changed = config.changed_resume_options(c, {n: opts[n] for n in given})
    if changed:
        raise click.ClickException(config.format_changed_options(changed, opts.resume))
    if 'workers' in given: # Nested inside data_loader_kwargs, so not a plain override.
        c.data_loader_kwargs = dnnlib.EasyDict(c.data_loader_kwargs, num_workers=opts.workers)
    return c

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
