# Start, continue and dry-run a training run, in one process or several, with callbacks. train.py, the
# demo and other trainers call this; none of them re-does run directories or options files.
#
#     c = config.make_config(cfg='stylegan3-t', data='dr1.zip', gpus=1, batch=32, gamma=8)
#     run_dir = launch.launch_training(c, outdir='runs', progress_fn=print_progress, stop_fn=out_of_time)
#     c = launch.resume_run(run_dir, dict(total_kimg=5000))      # Continue that run exactly.
#     launch.launch_training(c)
#
# Callbacks (all optional) run in the training process; with several processes they run in every rank,
# so they must then be picklable (module-level functions or objects):
#     progress_fn(cur_nimg, total_nimg)  after every tick;
#     tick_fn(info)                      after every tick, info = EasyDict(cur_nimg, cur_tick, run_dir,
#                                        snapshot_pkl, losses, augment_p);
#     stop_fn() -> bool                  polled before every step; True (on any rank) writes a training
#                                        state and ends the run, as Ctrl-C does.

import copy
import json
import os
import re
import tempfile

import torch

import dnnlib
from torch_utils import cpu_memory, distributed
from torch_utils.device import DeviceError, resolve_device
from training import checkpoint
from training import config as config_lib
from training import training_loop as loop

#----------------------------------------------------------------------------

class LaunchError(ValueError):
    """A run that cannot be started or continued; the message names the option or file."""

#----------------------------------------------------------------------------
# Run directories and options files.

def next_run_dir(outdir, desc):
    """outdir/<next free five-digit number>-<desc>."""
    prev = [int(m.group(1)) for x in (os.listdir(outdir) if os.path.isdir(outdir) else [])
            for m in [re.match(r'^(\d+)', x)] if m is not None and os.path.isdir(os.path.join(outdir, x))]
    return os.path.join(outdir, f'{max(prev, default=-1) + 1:05d}-{desc}')

def options_of(c):
    """The JSON-serialisable options dict (what training_options.json and training states hold)."""
    return json.loads(json.dumps({k: v for k, v in c.items() if k != 'options'}))

def save_options(c):
    text = json.dumps(options_of(c), indent=2)
    dnnlib.atomic_write(os.path.join(c.run_dir, 'training_options.json'), lambda f: f.write(text), mode='w')

#----------------------------------------------------------------------------
# Objects: a dry run builds all of them on the CPU, so a config that cannot run fails at once.

def construct_objects(c, device='cpu'):
    """Build G, D, G_ema, the augment pipe, the loss and both optimisers from a config. Returns an EasyDict."""
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

def _dry_run(c, echo):
    objs = construct_objects(c, device='cpu')
    for name in ('G', 'D', 'augment_pipe'):
        n = 0 if objs[name] is None else sum(p.numel() for p in objs[name].parameters())
        echo(f'Constructed {name}: {type(objs[name]).__name__} ({n} parameters)')
    echo(f'Constructed loss: {type(objs.loss).__name__}; optimisers: {type(objs.G_opt).__name__}, {type(objs.D_opt).__name__}')
    echo('Dry run; exiting.')

def _print_summary(c, echo):
    echo('\nTraining options:')
    echo(json.dumps(options_of(c), indent=2))
    echo(f'\nOutput directory:    {c.run_dir}')
    echo(f'Number of processes: {c.num_gpus} ({c.device})')
    echo(f'Batch size:          {c.batch_size} images')
    echo(f'Training duration:   {c.total_kimg} kimg')
    echo(f'Resume:              {c.resume_state or c.resume_pkl or "no"}\n')

#----------------------------------------------------------------------------

def launch_training(c, outdir=None, desc=None, dry_run=False, progress_fn=None, tick_fn=None, stop_fn=None, echo=print):
    """Create the run directory (unless c.run_dir is set), save the options and train on c.num_gpus processes.

    Args:
        c:           config from config.make_config or resume_run (not modified).
        outdir:      parent directory of a new run directory.
        desc:        extra text for the run directory name.
        dry_run:     print the options, construct every object on the CPU and return None.
        progress_fn: progress_fn(cur_nimg, total_nimg) after every tick.
        tick_fn:     tick_fn(info) after every tick (see the top of this file).
        stop_fn:     stop_fn() -> bool, polled before every step; True ends the run after writing a state.
        echo:        where the summary lines go.
    Returns:
        The run directory (None for a dry run). Raises ConfigError / LaunchError naming the problem.
    """
    c = copy.deepcopy(c)
    config_lib.check_config(c)
    if c.get('run_dir') is None:
        if outdir is None:
            raise LaunchError('Missing option --outdir')
        c.run_dir = next_run_dir(outdir, c.desc + (f'-{desc}' if desc else ''))
    _print_summary(c, echo)
    if dry_run:
        _dry_run(c, echo)
        return None
    try:
        os.makedirs(c.run_dir, exist_ok=c.resume_state is not None)
        save_options(c)
    except OSError as e:
        raise LaunchError(f'--outdir: cannot create the run directory {c.run_dir!r}: {e}') from None
    c.options = options_of(c)
    callbacks = dict(progress_fn=progress_fn, tick_fn=tick_fn, stop_fn=stop_fn)
    if distributed.launched_by_torchrun():
        _subprocess_fn(int(os.environ['RANK']), c, None, callbacks)
    elif c.num_gpus == 1:
        _subprocess_fn(0, c, None, callbacks)
    else:
        # The spawned processes rendezvous through a file in a private scratch directory.
        with tempfile.TemporaryDirectory(prefix='train-rendezvous-') as scratch:
            torch.multiprocessing.spawn(fn=_subprocess_fn, args=(c, scratch, callbacks), nprocs=c.num_gpus)
    return c.run_dir

def _subprocess_fn(rank, c, temp_dir, callbacks):
    device = c.device
    if device == 'cuda':
        device = f'cuda:{distributed.get_local_rank() if distributed.launched_by_torchrun() else rank}'
    if temp_dir is not None: # A rank process spawned below, a fresh interpreter: tune its C heap as the command lines do.
        cpu_memory.keep_freed_memory()
    if c.num_gpus > 1 and device == 'cpu': # Share the cores instead of oversubscribing them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // c.num_gpus))
    if c.num_gpus > 1:
        init_method = None if distributed.launched_by_torchrun() else 'file://' + os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        if distributed.launched_by_torchrun() and int(os.environ['WORLD_SIZE']) != c.num_gpus:
            raise LaunchError(f'--gpus={c.num_gpus} does not match torchrun WORLD_SIZE={os.environ["WORLD_SIZE"]}')
        distributed.init(device=device, rank=rank, world_size=c.num_gpus, init_method=init_method)
    try:
        kwargs = {k: v for k, v in c.items() if k != 'desc'}
        kwargs.update(rank=rank, device=device, **{k: v for k, v in callbacks.items() if v is not None})
        loop.training_loop(**kwargs)
    finally:
        distributed.shutdown()

#----------------------------------------------------------------------------
# Continuing a run from a training state.

def resume_run(resume, overrides=None):
    """Config that continues the run owning `resume` (a run directory or training-state file).

    Args:
        resume:    run directory (its latest training state) or a training-state-*.pt.
        overrides: {config key: value} that may change (total_kimg, kimg_per_tick, metrics, num_gpus, ...).
    """
    path = resume
    if os.path.isdir(resume):
        path = checkpoint.find_latest_state(resume)
        if path is None:
            raise LaunchError(f'--resume={resume}: no training-state-*.pt in this directory; '
                              f'to start a new run from weights, pass a network-snapshot-*.pkl')
    try:
        state = checkpoint.load_training_state(path)
    except (OSError, ValueError) as e:
        raise LaunchError(f'--resume: {e}') from None
    c = checkpoint.state_options(state)
    c.pop('options', None)
    c.run_dir = os.path.dirname(os.path.abspath(path))
    c.resume_state = os.path.abspath(path)
    for key, value in (overrides or {}).items():
        c[key] = value
    if 'device' in (overrides or {}):
        try:
            c.device = resolve_device(overrides['device']).type
        except DeviceError as e:
            raise LaunchError(str(e)) from None
    return c

#----------------------------------------------------------------------------

# train.py options -> the config keys they set when continuing a run.
_RESUME_KEYS = dict(kimg=('total_kimg',), tick=('kimg_per_tick',), metrics=('metrics',), gpus=('num_gpus',),
                    batch_gpu=('batch_gpu',), device=('device',), snap=('image_snapshot_ticks', 'network_snapshot_ticks'))

def resume_with_options(resume, given):
    """resume_run for train.py options given on a command line ({option: value}, e.g. dict(kimg=5000)).

    The same command with --resume appended continues the run: options equal to the run's are accepted;
    run-length, logging and performance options override; any other that differs is a LaunchError naming
    each option with the run's value and the new one.
    """
    overrides = {key: given[o] for o, keys in _RESUME_KEYS.items() if o in given for key in keys}
    if 'nobench' in given:
        overrides['cudnn_benchmark'] = not given['nobench']
    c = resume_run(resume, overrides)
    changed = config_lib.changed_resume_options(c, given)
    if changed:
        raise LaunchError(config_lib.format_changed_options(changed, resume))
    if 'workers' in given: # Nested inside data_loader_kwargs, so not a plain override.
        c.data_loader_kwargs = dnnlib.EasyDict(c.data_loader_kwargs, num_workers=given['workers'])
    return c

#----------------------------------------------------------------------------
