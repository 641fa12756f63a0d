# The resolved training configuration: NVIDIA-style options (train.py's) -> one JSON-serialisable
# EasyDict that training.training_loop.training_loop(**config) accepts, with every key checked.

import os
import re

from training.augment import augpipe_specs

#----------------------------------------------------------------------------

class ConfigError(ValueError):
    """An option that cannot be used; the message names the option (e.g. '--batch=6') and the problem."""

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
