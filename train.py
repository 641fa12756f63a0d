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

#----------------------------------------------------------------------------

CFGS = ('stylegan3-t', 'stylegan3-r', 'stylegan2')

# Options that may differ when continuing a run from a training state (they do not change the maths).
RESUME_OVERRIDABLE = ('kimg', 'tick', 'snap', 'metrics', 'workers', 'nobench', 'device', 'gpus', 'batch_gpu', 'dry_run', 'resume', 'outdir')

#----------------------------------------------------------------------------

def parse_comma_list(s):
    if isinstance(s, list):
        return s
    if s is None or s.lower() == 'none' or s == '':
        return []
    return s.split(',')

def resolve_device(device):
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException('--device=cuda: no CUDA device is available; use --device=cpu')
    return device

def is_state_resume(resume):
    return resume is not None and (os.path.isdir(resume) or resume.endswith('.pt'))

#----------------------------------------------------------------------------

def init_dataset_kwargs(data, cond, mirror, seed):
    """Open the dataset once to read its resolution, size and labels; returns (kwargs, dataset name)."""
    from training import dataset
    kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=bool(cond),
                             max_size=None, xflip=False)
    try:
        ds = dnnlib.construct_class_by_name(**kwargs)
        message = dataset.check_labels(ds, cond=cond, warn=False)
        if message:
            click.echo(f'Note: {message}', err=True)
        kwargs.resolution = ds.resolution
        kwargs.use_labels = ds.has_labels and bool(cond)
        kwargs.max_size = len(ds)
        name = ds.name
        ds.close()
    except (OSError, ValueError) as e:
        raise click.ClickException(f'--data: {e}')
    kwargs.xflip = bool(mirror)
    kwargs.random_seed = seed
    return kwargs, name

def make_config(cfg, data, gpus, batch, gamma, cond=False, mirror=False, aug='ada', augpipe='bgc', resume=None,
                freezed=0, p=0.2, target=0.6, batch_gpu=None, cbase=32768, cmax=512, glr=None, dlr=0.002,
                map_depth=None, mbstd_group=4, metrics='fid50k_full', kimg=25000, tick=4, snap=50, seed=0,
                fp32=False, nobench=False, workers=3, device='auto', deterministic=False, **_ignored):
    """The resolved training configuration for NVIDIA-style options (see docs/training.md).

    Raises click.ClickException naming the offending option. Returns an EasyDict that
    training.training_loop.training_loop(**config) accepts (plus run_dir, set by launch_training).
    """
    from training.augment import augpipe_specs
    for name, value in (('--cfg', cfg), ('--data', data), ('--gpus', gpus), ('--batch', batch), ('--gamma', gamma)):
        if value is None:
            raise click.ClickException(f'Missing option {name} (required unless --resume names a run directory or training state)')
    if cfg not in CFGS:
        raise click.ClickException(f'--cfg={cfg}: expected one of {", ".join(CFGS)}')
    if augpipe not in augpipe_specs:
        raise click.ClickException(f'--augpipe={augpipe}: expected one of {", ".join(augpipe_specs)}')
    c = dnnlib.EasyDict()
    c.G_kwargs = dnnlib.EasyDict(class_name=None, z_dim=512, w_dim=512, mapping_kwargs=dnnlib.EasyDict())
    c.D_kwargs = dnnlib.EasyDict(class_name='training.networks_stylegan2.Discriminator', block_kwargs=dnnlib.EasyDict(),
                                 mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict())
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', betas=(0, 0.99), eps=1e-8)
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', betas=(0, 0.99), eps=1e-8)
    c.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss')
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, prefetch_factor=2, num_workers=workers)
    c.training_set_kwargs, dataset_name = init_dataset_kwargs(data, cond, mirror, seed)

    # Hyperparameters and settings.
    c.num_gpus = gpus
    c.batch_size = batch
    c.batch_gpu = batch_gpu or batch // gpus
    c.G_kwargs.channel_base = c.D_kwargs.channel_base = cbase
    c.G_kwargs.channel_max = c.D_kwargs.channel_max = cmax
    c.G_kwargs.mapping_kwargs.num_layers = (8 if cfg == 'stylegan2' else 2) if map_depth is None else map_depth
    c.D_kwargs.block_kwargs.freeze_layers = freezed
    c.D_kwargs.epilogue_kwargs.mbstd_group_size = mbstd_group
    c.loss_kwargs.r1_gamma = gamma
    c.G_opt_kwargs.lr = (0.002 if cfg == 'stylegan2' else 0.0025) if glr is None else glr
    c.D_opt_kwargs.lr = dlr
    c.metrics = parse_comma_list(metrics)
    c.total_kimg = kimg
    c.kimg_per_tick = tick
    c.image_snapshot_ticks = c.network_snapshot_ticks = snap
    c.random_seed = seed
    c.data_loader_kwargs.num_workers = workers
    c.ema_kimg = c.batch_size * 10 / 32
    c.G_reg_interval = None
    c.D_reg_interval = 16
    c.ema_rampup = 0.05
    c.ada_kimg = 500
    c.device = resolve_device(device)
    c.deterministic = bool(deterministic)
    c.cudnn_benchmark = not nobench
    _sanity_checks(c, mbstd_group)

    # Base configuration.
    if cfg == 'stylegan2':
        c.G_kwargs.class_name = 'training.networks_stylegan2.Generator'
        c.loss_kwargs.style_mixing_prob = 0.9
        c.loss_kwargs.pl_weight = 2
        c.loss_kwargs.pl_no_weight_grad = True
        c.G_reg_interval = 4
        c.G_kwargs.fused_modconv_default = 'inference_only'
    else:
        c.G_kwargs.class_name = 'training.networks_stylegan3.Generator'
        c.G_kwargs.magnitude_ema_beta = 0.5 ** (c.batch_size / (20 * 1e3))
        if cfg == 'stylegan3-r':
            c.G_kwargs.conv_kernel = 1
            c.G_kwargs.channel_base *= 2
            c.G_kwargs.channel_max *= 2
            c.G_kwargs.use_radial_filters = True
            c.loss_kwargs.blur_init_sigma = 10
            c.loss_kwargs.blur_fade_kimg = c.batch_size * 200 / 32

    # Augmentation.
    c.augment_kwargs = None
    c.augment_p = 0
    c.ada_target = None
    if aug != 'noaug':
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augpipe_specs[augpipe])
        if aug == 'ada':
            c.ada_target = target
        if aug == 'fixed':
            c.augment_p = p

    # Resume from a network pickle: a new run initialised from those weights.
    c.resume_pkl = None
    c.resume_state = None
    if resume is not None:
        if is_state_resume(resume):
            raise click.ClickException('--resume: a run directory or training state continues that run; it is handled by launch')
        c.resume_pkl = resume
        c.ada_kimg = 100 # Make ADA react faster at the beginning.
        c.ema_rampup = None # Disable EMA ramp-up.
        c.loss_kwargs.blur_init_sigma = 0 # Disable blur ramp-up.

    # Performance options.
    if fp32:
        c.G_kwargs.num_fp16_res = c.D_kwargs.num_fp16_res = 0
        c.G_kwargs.conv_clamp = c.D_kwargs.conv_clamp = None
    else:
        c.G_kwargs.num_fp16_res = c.D_kwargs.num_fp16_res = 4
        c.G_kwargs.conv_clamp = c.D_kwargs.conv_clamp = 256
    c.desc = f'{cfg:s}-{dataset_name:s}-gpus{c.num_gpus:d}-batch{c.batch_size:d}-gamma{c.loss_kwargs.r1_gamma:g}'
    return c

def _sanity_checks(c, mbstd_group):
    if c.batch_size % c.num_gpus != 0:
        raise click.ClickException(f'--batch={c.batch_size} must be a multiple of --gpus={c.num_gpus}')
    if c.batch_size % (c.num_gpus * c.batch_gpu) != 0:
        raise click.ClickException(f'--batch={c.batch_size} must be a multiple of --gpus times --batch-gpu ({c.num_gpus} x {c.batch_gpu})')
    if c.batch_gpu < mbstd_group:
        raise click.ClickException(f'--batch-gpu={c.batch_gpu} cannot be smaller than --mbstd-group={mbstd_group}')
    if any(not re.fullmatch(r'[A-Za-z0-9_]+', m) for m in c.metrics):
        raise click.ClickException(f'--metrics: malformed metric list {",".join(c.metrics)}')
    if c.metrics:
        try:
            from metrics import metric_main
        except ImportError as e:
            raise click.ClickException(f'--metrics={",".join(c.metrics)}: the metrics package is not available ({e}); use --metrics=none')
        bad = [m for m in c.metrics if not metric_main.is_valid_metric(m)]
        if bad:
            raise click.ClickException(f'--metrics: unknown metric(s) {", ".join(bad)}; choose from {", ".join(metric_main.list_valid_metrics())} or none')

#----------------------------------------------------------------------------
# Objects: --dry-run builds all of them on the CPU, so a config that cannot run fails at once.

def construct_objects(c, device='cpu'):
    """Build G, D, G_ema, the augment pipe, the loss and both optimisers from a config. Returns an EasyDict."""
    from training import training_loop
    torch.manual_seed(c.random_seed)
    ds_kwargs = dnnlib.EasyDict(c.training_set_kwargs)
    training_set = dnnlib.construct_class_by_name(**ds_kwargs)
    G, D, G_ema = training_loop.build_networks(training_set, c.G_kwargs, c.D_kwargs, device)
    augment_pipe = training_loop.build_augment_pipe(c.augment_kwargs, c.augment_p, device)
    loss = dnnlib.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, **c.loss_kwargs)
    phases = training_loop.build_phases(G, D, c.G_opt_kwargs, c.D_opt_kwargs, c.G_reg_interval, c.D_reg_interval)
    training_set.close()
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
        with tempfile.TemporaryDirectory() as temp_dir:
            torch.multiprocessing.spawn(fn=_subprocess_fn, args=(c, temp_dir), nprocs=c.num_gpus)
    return c.run_dir

def _subprocess_fn(rank, c, temp_dir):
    from training import training_loop
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
        training_loop.training_loop(**kwargs)
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

# Required (unless --resume names a run directory or training state).
@click.option('--outdir',       help='Where to save the results', metavar='DIR')
@click.option('--cfg',          help='Base configuration', type=click.Choice(list(CFGS)))
@click.option('--data',         help='Training data (zip or folder)', metavar='[ZIP|DIR]')
@click.option('--gpus',         help='Number of processes (GPUs, or CPU workers with --device=cpu)', metavar='INT', type=click.IntRange(min=1))
@click.option('--batch',        help='Total batch size', metavar='INT', type=click.IntRange(min=1))
@click.option('--gamma',        help='R1 regularization weight', metavar='FLOAT', type=click.FloatRange(min=0))

# Optional features.
@click.option('--cond',         help='Train conditional model (needs labels in dataset.json)', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--mirror',       help='Enable dataset x-flips', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--aug',          help='Augmentation mode', type=click.Choice(['noaug', 'ada', 'fixed']), default='ada', show_default=True)
@click.option('--augpipe',      help='Augmentation pipeline (fundus: no hue/luma flip/rotate90/xflip, milder colour)', type=click.Choice(['bgc', 'bg', 'bgcf', 'bgcfn', 'bgcfnc', 'fundus', 'fundus-xflip']), default='bgc', show_default=True)
@click.option('--resume',       help='Network pickle (new run from its weights), or run directory / training-state file (continue that run)', metavar='[PATH|URL]', type=str)
@click.option('--freezed',      help='Freeze first layers of D', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True)

# Misc hyperparameters.
@click.option('--p',            help='Probability for --aug=fixed', metavar='FLOAT', type=click.FloatRange(min=0, max=1), default=0.2, show_default=True)
@click.option('--target',       help='Target value for --aug=ada', metavar='FLOAT', type=click.FloatRange(min=0, max=1), default=0.6, show_default=True)
@click.option('--batch-gpu',    help='Limit batch size per process  [default: batch/gpus]', metavar='INT', type=click.IntRange(min=1))
@click.option('--cbase',        help='Capacity multiplier', metavar='INT', type=click.IntRange(min=1), default=32768, show_default=True)
@click.option('--cmax',         help='Max. feature maps', metavar='INT', type=click.IntRange(min=1), default=512, show_default=True)
@click.option('--glr',          help='G learning rate  [default: varies]', metavar='FLOAT', type=click.FloatRange(min=0))
@click.option('--dlr',          help='D learning rate', metavar='FLOAT', type=click.FloatRange(min=0), default=0.002, show_default=True)
@click.option('--map-depth',    help='Mapping network depth  [default: varies]', metavar='INT', type=click.IntRange(min=1))
@click.option('--mbstd-group',  help='Minibatch std group size', metavar='INT', type=click.IntRange(min=1), default=4, show_default=True)

# Misc settings.
@click.option('--desc',         help='String to include in result dir name', metavar='STR', type=str)
@click.option('--metrics',      help='Quality metrics', metavar='[NAME|A,B,C|none]', type=parse_comma_list, default='fid50k_full', show_default=True)
@click.option('--kimg',         help='Total training duration', metavar='KIMG', type=click.IntRange(min=1), default=25000, show_default=True)
@click.option('--tick',         help='How often to print progress', metavar='KIMG', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--snap',         help='How often to save snapshots', metavar='TICKS', type=click.IntRange(min=1), default=50, show_default=True)
@click.option('--seed',         help='Random seed', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--fp32',         help='Disable mixed-precision', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--nobench',      help='Disable cuDNN benchmarking', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--workers',      help='DataLoader worker processes', metavar='INT', type=click.IntRange(min=0), default=3, show_default=True)
@click.option('--device',       help='Device: auto picks cuda when available', type=click.Choice(['auto', 'cuda', 'cpu']), default='auto', show_default=True)
@click.option('--deterministic', help='Deterministic algorithms (bit-exact resume on CPU)', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('-n', '--dry-run', help='Print training options, construct every object and exit', is_flag=True)

def main(ctx, **kwargs):
    """Train a GAN using the techniques described in the paper "Alias-Free Generative Adversarial Networks".

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
    fixed = [name for name in given if name not in RESUME_OVERRIDABLE]
    if fixed:
        names = ', '.join('--' + n.replace('_', '-') for n in fixed)
        raise click.ClickException(f'{names}: cannot be changed when continuing a run with --resume={opts.resume}; '
                                   f'pass a network pickle to start a new run from its weights instead')
    mapping = dict(kimg='total_kimg', tick='kimg_per_tick', metrics='metrics', gpus='num_gpus', batch_gpu='batch_gpu', device='device')
    overrides = {mapping[n]: opts[n] for n in given if n in mapping}
    if 'snap' in given:
        overrides['image_snapshot_ticks'] = overrides['network_snapshot_ticks'] = opts.snap
    if 'nobench' in given:
        overrides['cudnn_benchmark'] = not opts.nobench
    c = resume_run(opts.resume, overrides)
    if 'workers' in given:
        c.data_loader_kwargs.num_workers = opts.workers
    return c

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
