"""CPU training speed (s/kimg) of a small configuration; results go to docs/benchmarks.md ("Training").

    python bench/train.py --cfg=stylegan2 --res=32 --batch=8 --steps=6
"""

import os
import sys
import tempfile
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fundus.data import build # pylint: disable=wrong-import-position
from training import config, training_loop # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def bench(cfg, res, batch, steps, cbase, cmax, threads):
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = build.build_dataset('phantom:32', os.path.join(tmp, 'data.zip'), resolution=(res, res), progress=False).dest
        c = config.make_config(cfg=cfg, data=data, gpus=1, batch=batch, gamma=1, cbase=cbase, cmax=cmax, map_depth=2,
                              metrics='none', workers=0, device='cpu', fp32=True, mbstd_group=min(4, batch))
        if cfg != 'stylegan2':
            c.G_kwargs.update(num_layers=4, margin_size=2)
        kwargs = {k: v for k, v in c.items() if k != 'desc'}
        kwargs.update(run_dir=os.path.join(tmp, 'run'), total_kimg=batch * (steps + 1) / 1000, kimg_per_tick=batch / 1000,
                      image_snapshot_ticks=None, network_snapshot_ticks=None, grid_size=(2, 2), tensorboard=False)
        os.makedirs(kwargs['run_dir'])
        times = []
        kwargs['progress_fn'] = lambda cur, total: times.append(time.perf_counter())
        training_loop.training_loop(**kwargs)
    step_times = [b - a for a, b in zip(times[:-1], times[1:])] # Tick 0 (warm-up step) excluded.
    return sorted(step_times)[len(step_times) // 2] / batch * 1000

@click.command()
@click.option('--cfg', type=click.Choice(['stylegan2', 'stylegan3-t', 'stylegan3-r']), default='stylegan2', show_default=True)
@click.option('--res', type=int, default=32, show_default=True, help='Image resolution')
@click.option('--batch', type=int, default=8, show_default=True, help='Batch size')
@click.option('--steps', type=int, default=6, show_default=True, help='Timed steps (median reported)')
@click.option('--cbase', type=int, default=1024, show_default=True, help='channel_base of G and D')
@click.option('--cmax', type=int, default=64, show_default=True, help='channel_max of G and D')
@click.option('--threads', type=int, default=2, show_default=True, help='torch threads')
def main(cfg, res, batch, steps, cbase, cmax, threads):
    """Median seconds per kimg of complete training steps (all phases, EMA, ADA) on the CPU."""
    s_per_kimg = bench(cfg, res, batch, steps, cbase, cmax, threads)
    print(f'{cfg} res={res} batch={batch} cbase={cbase} cmax={cmax} threads={threads}: {s_per_kimg:.1f} s/kimg (median of {steps} steps)')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
