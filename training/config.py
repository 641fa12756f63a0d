# The resolved training configuration: NVIDIA-style options (train.py's) -> one JSON-serialisable
# EasyDict that training.training_loop.training_loop(**config) accepts, with every key checked.
#
#     c = config.make_config(cfg='stylegan3-t', data='dr1.zip', gpus=1, batch=32, gamma=8)
#     c.kimg_per_tick = 1           # Callers may edit the tree; launch checks the keys again.
#
# Every problem is a ConfigError whose message names the option (e.g. '--batch=6: ...'); an unknown
# option or config key is an error, not silently dropped.

import inspect
import os
import re
import sys

import dnnlib
from metrics import metric_main
from torch_utils.device import DeviceError, resolve_device
from training import training_loop as loop
from training.augment import augpipe_specs
from training.dataset import DatasetError, check_labels

#----------------------------------------------------------------------------

class ConfigError(ValueError):
    """An option that cannot be used; the message names the option (e.g. '--batch=6') and the problem."""


def parse_comma_list(s):
    """'a,b' -> ['a', 'b']; None, '' and 'none' (any case) -> []; a list passes through."""
    if isinstance(s, list):
        return s
    text = (s or '').strip()
    return [] if text.lower() in ('', 'none') else text.split(',')

def is_state_resume(resume):
    """True when --resume names a run directory or a training state (continue that run)."""
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
    kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=bool(cond),
                             max_size=None, xflip=False)
    try:
        ds = dnnlib.construct_class_by_name(**kwargs)
    except (OSError, ValueError) as e:
        raise ConfigError(f'--data: {e}') from None
    try:
        note = check_labels(ds, cond=cond, warn=False)
        if note:
            print(f'Note: {note}', file=sys.stderr)
        kwargs.update(resolution=ds.resolution, use_labels=bool(cond) and ds.has_labels, max_size=len(ds))
        name = ds.name
    except (OSError, ValueError, DatasetError) as e:
        raise ConfigError(f'--data: {e}') from None
    finally:
        ds.close()
    kwargs.update(xflip=bool(mirror), random_seed=seed)
    return kwargs, name

def _adam(lr):
    # Tuples, not lists: torch.optim.Adam rejects betas=[0, 0.99].
    return dnnlib.EasyDict(class_name='torch.optim.Adam', lr=lr, betas=(0, 0.99), eps=1e-8)

def _network_kwargs(preset, batch, cbase, cmax, map_depth, zdim, freezed, mbstd_group, fp32):
    """(G_kwargs, D_kwargs) for one preset."""
    fp16_res, clamp = PRECISION[bool(fp32)]
    scale = preset.G_capacity_scale
    G = dnnlib.EasyDict(class_name=preset.generator, z_dim=zdim, w_dim=zdim,
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

# The StyleGAN3 synthesis sizes a run gets without --layers / --margin (networks_stylegan3.Generator's defaults).
SG3_SYNTHESIS_DEFAULTS = dict(num_layers=14, margin_size=10)

def _synthesis_size(cfg, layers, margin):
    """G_kwargs for --layers and --margin (stylegan3-* only; unset = the generator's defaults, not written)."""
    size = {}
    if cfg == 'stylegan2' and (layers is not None or margin is not None):
        raise ConfigError('--layers and --margin: only stylegan3-t and stylegan3-r have them (stylegan2 has one block per resolution)')
    if layers is not None:
        size['num_layers'] = layers
    if margin is not None:
        size['margin_size'] = margin
    return size

def _loss_kwargs(preset, gamma, batch, fine_tune):
    loss = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=gamma, **preset.loss_extra)
    if preset.blur_sigma is not None:
        loss.update(blur_init_sigma=preset.blur_sigma, blur_fade_kimg=batch * 25 / 4)
    if fine_tune:
        loss.blur_init_sigma = 0 # Pretrained weights need no blur warm-up.
    return loss

def _augment_settings(aug, augpipe, p, target):
    """(augment_kwargs, augment_p, ada_target) for --aug."""
    if aug == 'noaug':
        return None, 0, None
    kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **augpipe_specs[augpipe])
    return kwargs, (p if aug == 'fixed' else 0), (target if aug == 'ada' else None)

def _check_required(cfg, data, gpus, batch, gamma, aug, augpipe):
    given = {'--cfg': cfg, '--data': data, '--gpus': gpus, '--batch': batch, '--gamma': gamma}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ConfigError(f'Missing option {missing[0]} (required unless --resume names a run directory or training state)')
    if cfg not in CFG_PRESETS:
        raise ConfigError(f'--cfg={cfg}: expected one of {", ".join(CFGS)}')
    if aug not in ('noaug', 'ada', 'fixed'):
        raise ConfigError(f'--aug={aug}: expected one of noaug, ada, fixed')
    if augpipe not in augpipe_specs:
        raise ConfigError(f'--augpipe={augpipe}: expected one of {", ".join(augpipe_specs)}')

def _check_batch_and_metrics(batch, gpus, per_process, mbstd_group, metric_list):
    if batch % gpus:
        raise ConfigError(f'--batch={batch} must be a multiple of --gpus={gpus}')
    if batch % (gpus * per_process):
        raise ConfigError(f'--batch={batch} must be a multiple of --gpus times --batch-gpu ({gpus} x {per_process})')
    if per_process < mbstd_group:
        raise ConfigError(f'--batch-gpu={per_process} cannot be smaller than --mbstd-group={mbstd_group}')
    if not all(re.fullmatch(r'\w+', m, flags=re.ASCII) for m in metric_list):
        raise ConfigError(f'--metrics: malformed metric list {",".join(metric_list)}')
    if not metric_list:
        return
    unknown = [m for m in metric_list if not metric_main.is_valid_metric(m)]
    if unknown:
        raise ConfigError(f'--metrics: unknown metric(s) {", ".join(unknown)}; choose from {", ".join(metric_main.list_valid_metrics())} or none')

def _device_type(device):
    try:
        return resolve_device(device).type # 'cuda' is made per-rank ('cuda:<rank>') at launch.
    except DeviceError as e:
        raise ConfigError(str(e)) from None

#----------------------------------------------------------------------------

def make_config(cfg=None, data=None, gpus=None, batch=None, gamma=None, cond=False, mirror=False, aug='ada',
                augpipe='bgc', resume=None, freezed=0, p=0.2, target=0.6, batch_gpu=None, cbase=32768, cmax=512,
                glr=None, dlr=0.002, map_depth=None, zdim=512, layers=None, margin=None, mbstd_group=4,
                metrics='fid50k_full', kimg=25000, tick=4, snap=50, seed=0, fp32=False, nobench=False, workers=3,
                device='auto', deterministic=False, **unknown):
    """The resolved training configuration for train.py's options (see docs/training.md).

    Raises ConfigError naming the offending option (an unknown option too). Returns an EasyDict that
    training.training_loop.training_loop(**config) accepts (plus desc; run_dir is set by launch).
    """
    if unknown:
        raise ConfigError(f'{", ".join(sorted(unknown))}: unknown training option(s); known: {", ".join(OPTION_NAMES)}')
    _check_required(cfg, data, gpus, batch, gamma, aug, augpipe)
    if resume is not None and is_state_resume(resume):
        raise ConfigError('--resume: a run directory or training state continues that run; use training.launch.resume_run')
    preset = CFG_PRESETS[cfg]
    fine_tune = resume is not None
    metric_list = parse_comma_list(metrics)
    per_process = batch_gpu or batch // gpus
    _check_batch_and_metrics(batch, gpus, per_process, mbstd_group, metric_list)

    # Data first: the run name needs the dataset name.
    training_set_kwargs, dataset_name = init_dataset_kwargs(data, cond, mirror, seed)
    G_kwargs, D_kwargs = _network_kwargs(preset, batch, cbase, cmax, map_depth, zdim, freezed, mbstd_group, fp32)
    G_kwargs.update(_synthesis_size(cfg, layers, margin))
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
        device              = _device_type(device),
        deterministic       = bool(deterministic),
        cudnn_benchmark     = not nobench,
        resume_pkl          = resume,                       # A network pickle: new run from its weights.
        resume_state        = None,                         # Set only when continuing a run (resume_run).
    )
    c.desc = f'{cfg}-{dataset_name}-gpus{gpus:d}-batch{batch:d}-gamma{gamma:g}'
    return c

# The options make_config takes (train.py's, without --outdir, --desc and --dry-run).
OPTION_NAMES = tuple(inspect.signature(make_config).parameters)[:-1]

# Keys a resolved config may hold: training_loop's parameters, plus desc (the run name).
CONFIG_KEYS = tuple(inspect.signature(loop.training_loop).parameters) + ('desc',)

def check_config(c):
    """Raise ConfigError when a resolved config holds a key that training_loop does not take."""
    unknown = sorted(k for k in c if k not in CONFIG_KEYS)
    if unknown:
        raise ConfigError(f'{", ".join(unknown)}: unknown training config key(s); training_loop takes {", ".join(CONFIG_KEYS)}')

#----------------------------------------------------------------------------
# Continuing a run: which options may differ from the run's, and what the run used for the others.

# Options that may differ when continuing a run from a training state (they do not change the maths).
RESUME_OVERRIDABLE = ('kimg', 'tick', 'snap', 'metrics', 'workers', 'nobench', 'device', 'gpus', 'batch_gpu', 'dry_run', 'resume', 'outdir')

def _cfg_of(c):
    if c.G_kwargs.get('class_name', '').endswith('stylegan2.Generator'):
        return 'stylegan2'
    return 'stylegan3-r' if c.G_kwargs.get('use_radial_filters') else 'stylegan3-t'

def _aug_of(c):
    if c.get('augment_kwargs') is None:
        return 'noaug'
    return 'fixed' if c.get('ada_target') is None else 'ada'

def _augpipe_of(c):
    kwargs = {k: v for k, v in (c.get('augment_kwargs') or {}).items() if k != 'class_name'}
    return next((name for name, spec in augpipe_specs.items() if spec == kwargs), None)

def _synthesis_value(c, key):
    # A stylegan3 run that did not set it used the generator's default; stylegan2 has no such size.
    return None if _cfg_of(c) == 'stylegan2' else c.G_kwargs.get(key, SG3_SYNTHESIS_DEFAULTS[key])

def _desc_of(c):
    # The run directory is '<number>-<c.desc>[-<--desc>]' (launch.next_run_dir).
    base = re.sub(r'^\d+-', '', os.path.basename(os.path.normpath(c.get('run_dir') or '')))
    prefix = c.get('desc') or ''
    return base[len(prefix) + 1:] if base.startswith(prefix) else None

# Option -> its value in a resolved config. None: not recoverable, or without effect on this run
# (--p unless --aug=fixed, --target unless --aug=ada); such options are accepted whatever they say.
_RUN_VALUES = dict(
    cfg           = _cfg_of,
    data          = lambda c: c.training_set_kwargs.get('path'),
    batch         = lambda c: c.batch_size,
    gamma         = lambda c: c.loss_kwargs.get('r1_gamma'),
    cond          = lambda c: bool(c.training_set_kwargs.get('use_labels')),
    mirror        = lambda c: bool(c.training_set_kwargs.get('xflip')),
    aug           = _aug_of,
    augpipe       = _augpipe_of,
    freezed       = lambda c: c.D_kwargs.get('block_kwargs', {}).get('freeze_layers'),
    p             = lambda c: c.get('augment_p') if _aug_of(c) == 'fixed' else None,
    target        = lambda c: c.get('ada_target') if _aug_of(c) == 'ada' else None,
    cbase         = lambda c: c.D_kwargs.get('channel_base'),
    cmax          = lambda c: c.D_kwargs.get('channel_max'),
    glr           = lambda c: c.G_opt_kwargs.get('lr'),
    dlr           = lambda c: c.D_opt_kwargs.get('lr'),
    map_depth     = lambda c: c.G_kwargs.get('mapping_kwargs', {}).get('num_layers'),
    zdim          = lambda c: c.G_kwargs.get('z_dim'),
    layers        = lambda c: _synthesis_value(c, 'num_layers'),
    margin        = lambda c: _synthesis_value(c, 'margin_size'),
    mbstd_group   = lambda c: c.D_kwargs.get('epilogue_kwargs', {}).get('mbstd_group_size'),
    seed          = lambda c: c.get('random_seed'),
    fp32          = lambda c: c.G_kwargs.get('num_fp16_res') == 0,
    deterministic = lambda c: bool(c.get('deterministic')),
    desc          = _desc_of,
)

def _same(option, given, recorded):
    if option == 'data' and isinstance(given, str) and isinstance(recorded, str):
        return given == recorded or os.path.realpath(os.path.expanduser(given)) == os.path.realpath(os.path.expanduser(recorded))
    if isinstance(recorded, bool) or isinstance(given, bool):
        return bool(given) == bool(recorded)
    return given == recorded

def changed_resume_options(c, given):
    """The options in `given` ({option: value}) whose value differs from the run's: [(option, old, new)].

    Options listed in RESUME_OVERRIDABLE are never reported; options the run does not record are accepted.
    """
    changed = []
    for option, value in given.items():
        if option in RESUME_OVERRIDABLE:
            continue
        read = _RUN_VALUES.get(option)
        try:
            recorded = None if read is None else read(c)
        except (AttributeError, KeyError, TypeError):
            recorded = None
        if recorded is not None and not _same(option, value, recorded):
            changed.append((option, recorded, value))
    return changed

def format_changed_options(changed, resume):
    """One line: '--gamma: the run used 8, the command says 3; ...: cannot be changed when continuing ...'."""
    parts = '; '.join(f'--{o.replace("_", "-")}: the run used {old}, the command says {new}' for o, old, new in changed)
    return (f'{parts}: cannot be changed when continuing a run with --resume={resume}; pass a network pickle '
            f'to start a new run from its weights instead')

#----------------------------------------------------------------------------
