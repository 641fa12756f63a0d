"""filtered_lrelu on the CPU, call by call: the compiled CPU plugin against the blocked PyTorch passes, at
the calls a generator makes (forward with sign writing, and the backward's read-mode call). Results go
to docs/benchmarks.md ("The CPU plugin").

    python bench/cpu_plugin.py                       # the demo's generator (make demo, stage 2), batch 8

The calls are captured from one forward pass of the generator; each is then timed alone (median of
--reps after one warm-up), both kernels back to back in each repeat so that they see the same machine.
"""

import os
import sys
import tempfile

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib # pylint: disable=wrong-import-position
from bench import train as bench_train # pylint: disable=wrong-import-position
from bench.networks import time_call # pylint: disable=wrong-import-position
from fundus.data import build # pylint: disable=wrong-import-position
from torch_utils.ops import cpu_kernels, filtered_lrelu # pylint: disable=wrong-import-position
from training import training_loop # pylint: disable=wrong-import-position

DEMO = bench_train.DEMO

#----------------------------------------------------------------------------

def captured_calls(G, batch, c_dim):
    # Kernel arguments (write mode) of every separable filtered_lrelu call of one G forward.
    calls, real = [], filtered_lrelu.filtered_lrelu
    def spy(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=np.sqrt(2), slope=0.2, clamp=None, flip_filter=False, impl='cuda'):
        if fu is not None and fd is not None and fu.ndim == 1 and fd.ndim == 1:
            px0, px1, py0, py1, g, s, cl = filtered_lrelu._check_args(x, fu, fd, b, up, down, padding, gain, slope, clamp, impl)
            bb = torch.empty([0]) if b is None else b.detach()
            calls.append((x.detach().clone(), fu, fd, bb, torch.empty([0], dtype=torch.uint8), up, down, px0, px1, py0, py1, 0, 0,
                          g, s, cl, bool(flip_filter), True))
        return real(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl)
    filtered_lrelu.filtered_lrelu = spy
    try:
        with torch.no_grad():
            z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(0))
            c = torch.eye(c_dim)[torch.arange(batch) % c_dim]
            G(z, c)
    finally:
        filtered_lrelu.filtered_lrelu = real
    return calls

def backward_args(args, y, so):
    # The read-mode call that the sign-tensor Function's backward makes for this forward call.
    x, fu, fd, _, _, up, down, px0, _, py0, _, sx, sy, gain, slope, _, flip, _ = args
    padding, sxb, syb = filtered_lrelu.backward_geometry(x.shape[2:], y.shape[2:], fu, fd, up, down, px0, py0, sx, sy)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    return (dy, fd, fu, torch.empty([0], dtype=y.dtype), so, down, up, *padding, sxb, syb, gain * up * up / (down * down),
            slope, -1.0, not flip, False)

def demo_generator():
    # The generator the demo trains (bench/train.py --demo's config: train.py's resolved options with the
    # demo's sizes), sized by a small phantom dataset.
    with tempfile.TemporaryDirectory() as tmp:
        data = build.build_dataset('phantom:8', os.path.join(tmp, 'data.zip'), resolution=(DEMO.resolution,) * 2, progress=False).dest
        c = bench_train._config('stylegan3-t', data, DEMO.resolution, DEMO.batch, DEMO.cbase, DEMO.cmax, demo=True)
        training_set = dnnlib.construct_class_by_name(**c.training_set_kwargs)
        G, _, _ = training_loop.build_networks(training_set, c.G_kwargs, c.D_kwargs, torch.device('cpu'))
    return G

@click.command()
@click.option('--batch', type=click.IntRange(min=1), help='Batch size  [default: the demo\'s, 8]')
@click.option('--reps', type=click.IntRange(min=1), default=5, show_default=True, help='Timed repeats per call and kernel')
@click.option('--threads', type=click.IntRange(min=1), default=2, show_default=True, help='torch threads')
def main(batch, reps, threads):
    """Time every separable filtered_lrelu call of the demo's generator, forward and backward, with the CPU
    plugin and with the blocked passes."""
    torch.set_num_threads(threads)
    plugin = cpu_kernels.load_cpu_plugin()
    if plugin is None:
        raise click.ClickException('the CPU plugin did not build on this machine (FUNDUS_CUDA_VERBOSE=1 shows the compiler output)')
    batch = batch or DEMO.batch
    G = demo_generator()
    calls = captured_calls(G, batch, G.c_dim)
    print(f'# the demo\'s stylegan3-t ({DEMO.resolution} px, cbase {DEMO.cbase}, cmax {DEMO.cmax}), batch {batch}, '
          f'threads {threads}, median ms of {reps}')
    print('| input | up/down | forward blocked | forward plugin | backward blocked | backward plugin |')
    print('|---|---|---:|---:|---:|---:|')
    total = np.zeros(4)
    for args in calls:
        y, so, _ = filtered_lrelu._filtered_lrelu_blocked_kernel(*args)
        back = backward_args(args, y, so)
        row = [time_call(lambda a=a, k=k: k(*a), torch.device('cpu'), reps)[0] * 1e3
               for a in (args, back) for k in (filtered_lrelu._filtered_lrelu_blocked_kernel, plugin.filtered_lrelu)]
        total += row
        print(f'| {list(args[0].shape)} | {args[5]}/{args[6]} | ' + ' | '.join(f'{t:.1f}' for t in row) + ' |')
    print(f'| all {len(calls)} calls | | ' + ' | '.join(f'**{t:.1f}**' for t in total) + ' |')
    print(f'forward+backward: blocked {total[0] + total[2]:.1f} ms, plugin {total[1] + total[3]:.1f} ms, '
          f'{(total[0] + total[2]) / (total[1] + total[3]):.2f}x')

if __name__ == '__main__':
    main()
