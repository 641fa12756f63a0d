"""CPU training speed (s/kimg) of a small configuration; results go to docs/benchmarks.md ("Training").

    python bench/train.py --cfg=stylegan2 --res=32 --batch=8 --steps=6
    python bench/train.py --demo --steps=32           # the demo's network (make demo, stage 2)
    python bench/train.py --demo --steps=32 --free-nonlinearity   # its bound: filtered_lrelu costing nothing
    python bench/train.py --demo --steps=32 --no-cpu-plugin       # without the compiled CPU kernel

The mean over the timed steps includes the lazy R1 steps (every 16th D step); the median leaves them out.
"""

import contextlib
import os
import sys
import tempfile
import time

import click
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fundus.data import build # pylint: disable=wrong-import-position
from fundus.demo.config import cpu_config # pylint: disable=wrong-import-position
from torch_utils.ops import cpu_kernels, filtered_lrelu # pylint: disable=wrong-import-position
from training import config, training_loop # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# The demo's CPU network: fundus/demo/config.py, cpu_config(), as fundus/demo/gan.py trains it. Its sizes
# go in through G_kwargs, so the script also runs against commits from before train.py had
# --zdim/--layers/--margin (docs/benchmarks.md compares with one).

DEMO = cpu_config()

def _config(cfg, data, res, batch, cbase, cmax, demo):
    if demo:
        c = config.make_config(cfg='stylegan3-t', data=data, gpus=1, batch=batch, gamma=DEMO.gamma, cond=True, aug='ada',
                               augpipe='fundus', cbase=cbase, cmax=cmax, map_depth=2, metrics='none', workers=0, device='cpu',
                               fp32=True, mbstd_group=min(4, batch))
        c.G_kwargs.update(num_layers=DEMO.num_layers, margin_size=DEMO.margin_size, z_dim=DEMO.z_dim, w_dim=DEMO.z_dim)
        c.ada_kimg = DEMO.ada_kimg
        return c
    c = config.make_config(cfg=cfg, data=data, gpus=1, batch=batch, gamma=1, cbase=cbase, cmax=cmax, map_depth=2,
                           metrics='none', workers=0, device='cpu', fp32=True, mbstd_group=min(4, batch))
    if cfg != 'stylegan2':
        c.G_kwargs.update(num_layers=4, margin_size=2)
    return c

#----------------------------------------------------------------------------
# --free-nonlinearity: a bound, not a network anyone trains. Every filtered_lrelu becomes x + b cropped or
# zero-padded to the output size the real op would give (no filtering, no activation), so the step keeps
# its shapes and everything else (convolutions, D, ADA, optimiser) while the nonlinearity costs ~nothing.

def _free_filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=np.sqrt(2), slope=0.2, clamp=None,
                         flip_filter=False, impl='cuda'):
    px0, px1, py0, py1, *_ = filtered_lrelu._check_args(x, fu, fd, b, up, down, padding, gain, slope, clamp, impl)
    (kuw, kuh), (kdw, kdh) = [(1, 1) if f is None else filtered_lrelu._filter_size(f) for f in (fu, fd)]
    h, w = x.shape[2:]
    out_h = filtered_lrelu._out_len(h, up, down, py0, py1, kuh, kdh)
    out_w = filtered_lrelu._out_len(w, up, down, px0, px1, kuw, kdw)
    y = x if b is None else x + b.reshape(1, -1, 1, 1)
    return F.pad(y, [0, out_w - w, 0, out_h - h])

@contextlib.contextmanager
def _free_nonlinearity():
    # Swaps the stand-in in for the duration; yields the list of calls it served (a network that never
    # reaches filtered_lrelu, e.g. stylegan2, would otherwise time nothing but the real step).
    real, calls = filtered_lrelu.filtered_lrelu, []
    def stand_in(*args, **kwargs):
        calls.append(None)
        return _free_filtered_lrelu(*args, **kwargs)
    filtered_lrelu.filtered_lrelu = stand_in
    try:
        yield calls
    finally:
        filtered_lrelu.filtered_lrelu = real

#----------------------------------------------------------------------------

def bench(cfg, res, batch, steps, cbase, cmax, threads, demo=False, free=False, plugin=True):
    """(median, mean) seconds per kimg over `steps` timed training steps after one warm-up step."""
    torch.set_num_threads(threads)
    if plugin:
        cpu_kernels.load_cpu_plugin() # Built (once per machine) before anything is timed.
    with tempfile.TemporaryDirectory() as tmp:
        data = build.build_dataset('phantom:32', os.path.join(tmp, 'data.zip'), resolution=(res, res), progress=False).dest
        c = _config(cfg, data, res, batch, cbase, cmax, demo)
        kwargs = {k: v for k, v in c.items() if k != 'desc'}
        kwargs.update(run_dir=os.path.join(tmp, 'run'), total_kimg=batch * (steps + 1) / 1000, kimg_per_tick=batch / 1000,
                      image_snapshot_ticks=None, network_snapshot_ticks=None, grid_size=(2, 2), tensorboard=False)
        os.makedirs(kwargs['run_dir'])
        times = []
        kwargs['progress_fn'] = lambda cur, total: times.append(time.perf_counter())
        with _free_nonlinearity() if free else contextlib.nullcontext() as calls, \
             contextlib.nullcontext() if plugin else cpu_kernels.plugin_loader(lambda: None):
            training_loop.training_loop(**kwargs)
    if free and not calls:
        raise click.UsageError(f'--free-nonlinearity: the {cfg} network never calls filtered_lrelu, so there is no '
                               'bound to time (use --cfg=stylegan3-t, stylegan3-r or --demo)')
    step_times = np.diff(times) # Tick 0 (warm-up step) excluded.
    return float(np.median(step_times)) / batch * 1000, float(np.mean(step_times)) / batch * 1000

@click.command()
@click.option('--cfg', type=click.Choice(['stylegan2', 'stylegan3-t', 'stylegan3-r']), default='stylegan2', show_default=True,
              help='Network configuration, as train.py --cfg')
@click.option('--res', type=click.IntRange(min=16), default=32, show_default=True, help='Image resolution')
@click.option('--batch', type=click.IntRange(min=1), default=8, show_default=True, help='Batch size')
@click.option('--steps', type=click.IntRange(min=1), default=6, show_default=True, help='Timed steps (a multiple of 16 includes R1 in proportion)')
@click.option('--cbase', type=int, default=1024, show_default=True, help='channel_base of G and D')
@click.option('--cmax', type=int, default=64, show_default=True, help='channel_max of G and D')
@click.option('--threads', type=click.IntRange(min=1), default=2, show_default=True, help='torch threads')
@click.option('--demo', is_flag=True, help='The demo\'s network instead (conditional stylegan3-t 64 px, ADA fundus; '
              'overrides --cfg/--res/--batch/--cbase/--cmax)')
@click.option('--free-nonlinearity', 'free', is_flag=True, help='A bound, not a real network: every filtered_lrelu '
              '(stylegan3-*) becomes a crop/pad of x + b to its output size, so the step time is what it would be '
              'if the filtered nonlinearity cost nothing')
@click.option('--no-cpu-plugin', 'no_plugin', is_flag=True, help='Run filtered_lrelu on its PyTorch CPU path (blocked '
              'passes) instead of the compiled CPU plugin, for comparison')
def main(cfg, res, batch, steps, cbase, cmax, threads, demo, free, no_plugin):
    """Seconds per kimg of complete training steps (all phases, EMA, ADA) on the CPU: median and mean."""
    if demo:
        cfg, res, batch, cbase, cmax = 'stylegan3-t (demo)', DEMO.resolution, DEMO.batch, DEMO.cbase, DEMO.cmax
    median, mean = bench(cfg, res, batch, steps, cbase, cmax, threads, demo, free, plugin=not no_plugin)
    bound = ', filtered_lrelu free (a bound)' if free else (', no CPU plugin' if no_plugin else '')
    print(f'{cfg} res={res} batch={batch} cbase={cbase} cmax={cmax} threads={threads}{bound}: '
          f'{median:.1f} s/kimg median, {mean:.1f} s/kimg mean of {steps} steps')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
