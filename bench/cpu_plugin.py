"""The CPU plugin, call by call, against the PyTorch CPU paths it replaces, at the calls the demo's networks
make. Results go to docs/benchmarks.md ("The CPU plugin").

    python bench/cpu_plugin.py                       # filtered_lrelu in the demo's generator, batch 8
    python bench/cpu_plugin.py --op=upfirdn2d        # upfirdn2d in the demo's discriminator, batch 8

filtered_lrelu: the calls of one generator forward (sign writing) and the read-mode call each one's
backward makes, plugin against the blocked passes. upfirdn2d: every kernel call of one discriminator
forward+backward (training: the forward and the adjoint calls), plugin against the reference kernel
with outer-product filters split (what cpu_kernel runs without the plugin). Each call is timed alone
(median of --reps after one warm-up), both kernels one after the other so that they see the same machine.
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
from torch_utils.ops import cpu_kernels, filtered_lrelu, upfirdn2d # pylint: disable=wrong-import-position
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

def captured_upfirdn2d_calls(plugin, D, batch, c_dim):
    # Arguments of every call to the plugin's upfirdn2d during one D forward+backward with a gradient for
    # the images (the training path: forward calls, then the backward's adjoint calls).
    calls = []
    def upfirdn2d_spy(*args):
        calls.append(tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args))
        return plugin.upfirdn2d(*args)
    spy = type('Spy', (), dict(filtered_lrelu=staticmethod(plugin.filtered_lrelu), upfirdn2d=staticmethod(upfirdn2d_spy),
                               bias_act=staticmethod(plugin.bias_act)))
    gen = torch.Generator().manual_seed(0)
    img = torch.randn([batch, D.img_channels, D.img_resolution, D.img_resolution], generator=gen).requires_grad_(True)
    c = torch.eye(c_dim)[torch.arange(batch) % c_dim]
    with cpu_kernels.plugin_loader(lambda: spy):
        D(img, c).sum().backward()
    return calls

def _upfirdn2d_without_plugin(*args):
    # cpu_kernel's upfirdn2d with no plugin: the reference kernel, outer-product filters split.
    with cpu_kernels.plugin_loader(lambda: None):
        return upfirdn2d.cpu_kernel.upfirdn2d(*args)

def demo_networks():
    # The G and D the demo trains (bench/train.py --demo's config: train.py's resolved options with the
    # demo's sizes), sized by a small phantom dataset.
    with tempfile.TemporaryDirectory() as tmp:
        data = build.build_dataset('phantom:8', os.path.join(tmp, 'data.zip'), resolution=(DEMO.resolution,) * 2, progress=False).dest
        c = bench_train._config('stylegan3-t', data, DEMO.resolution, DEMO.batch, DEMO.cbase, DEMO.cmax, demo=True)
        training_set = dnnlib.construct_class_by_name(**c.training_set_kwargs)
        G, D, _ = training_loop.build_networks(training_set, c.G_kwargs, c.D_kwargs, torch.device('cpu'))
    return G, D

def filtered_lrelu_table(plugin, G, batch, reps):
    print('| input | up/down | forward blocked | forward plugin | backward blocked | backward plugin |')
    print('|---|---|---:|---:|---:|---:|')
    total = np.zeros(4)
    calls = captured_calls(G, batch, G.c_dim)
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

def upfirdn2d_table(plugin, D, batch, reps):
    # One row per distinct call (shape, filter size, factors, padding), with how often D's step makes it.
    print('| input | filter | up/down | calls | without plugin | plugin |')
    print('|---|---|---|---:|---:|---:|')
    rows = {}
    for args in captured_upfirdn2d_calls(plugin, D, batch, D.c_dim):
        key = (tuple(args[0].shape), tuple(args[1].shape), args[2:12])
        rows.setdefault(key, [args, 0])[1] += 1
    total = np.zeros(2)
    for (shape, fshape, geometry), (args, count) in rows.items():
        row = [time_call(lambda k=k: k(*args), torch.device('cpu'), reps)[0] * 1e3
               for k in (_upfirdn2d_without_plugin, lambda *a: plugin.upfirdn2d(*a)[0])]
        total += np.array(row) * count
        upx, upy, downx, downy = geometry[:4]
        print(f'| {list(shape)} | {list(fshape)} | {upx}x{upy}/{downx}x{downy} | {count} | ' + ' | '.join(f'{t:.2f}' for t in row) + ' |')
    print(f'| all {sum(count for _, count in rows.values())} calls | | | | **{total[0]:.1f}** | **{total[1]:.1f}** |')
    print(f'D forward+backward upfirdn2d: without plugin {total[0]:.1f} ms, plugin {total[1]:.1f} ms, {total[0] / total[1]:.2f}x')

@click.command()
@click.option('--op', type=click.Choice(['filtered_lrelu', 'upfirdn2d']), default='filtered_lrelu', show_default=True,
              help='filtered_lrelu: the generator\'s calls; upfirdn2d: the discriminator\'s')
@click.option('--batch', type=click.IntRange(min=1), help='Batch size  [default: the demo\'s, 8]')
@click.option('--reps', type=click.IntRange(min=1), default=5, show_default=True, help='Timed repeats per call and kernel')
@click.option('--threads', type=click.IntRange(min=1), default=2, show_default=True, help='torch threads')
def main(op, batch, reps, threads):
    """Time every call the demo's networks make to one op of the CPU plugin (filtered_lrelu in the
    generator, or upfirdn2d in the discriminator), with the plugin and with the PyTorch CPU path."""
    torch.set_num_threads(threads)
    plugin = cpu_kernels.load_cpu_plugin()
    if plugin is None:
        raise click.ClickException('the CPU plugin did not build on this machine (FUNDUS_CUDA_VERBOSE=1 shows the compiler output)')
    batch = batch or DEMO.batch
    G, D = demo_networks()
    net = 'generator' if op == 'filtered_lrelu' else 'discriminator'
    print(f'# {op} in the demo\'s stylegan3-t {net} ({DEMO.resolution} px, cbase {DEMO.cbase}, cmax {DEMO.cmax}), '
          f'batch {batch}, threads {threads}, median ms of {reps}')
    if op == 'filtered_lrelu':
        filtered_lrelu_table(plugin, G, batch, reps)
    else:
        upfirdn2d_table(plugin, D, batch, reps)

if __name__ == '__main__':
    main()
