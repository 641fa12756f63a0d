# Network speed: generator forward, generator forward+backward and discriminator forward+backward at full
# size (train.py defaults), in images/s and peak resident memory, plus the modulated convolutions of the
# StyleGAN3 generators alone, forward and forward+backward (the floors that filtering cannot beat).
# Results go to docs/benchmarks.md ("Networks").
#
#     .venv/bin/python bench/networks.py --quick                  # stylegan3-t 256, G forward + floor
#     .venv/bin/python bench/networks.py --quick --res=512        # the same at 512
#     .venv/bin/python bench/networks.py --cfg=stylegan3-t --res=256,512 --reps=3
#     .venv/bin/python bench/networks.py --train --res=128        # G forward+backward, its floor, D and its floor
#     .venv/bin/python bench/networks.py --quick --nvidia=~/src/stylegan3  # and NVIDIA's G, same machine
#     .venv/bin/python bench/networks.py --train --res=64 --batch=1 --nvidia=~/src/stylegan3  # and NVIDIA's G fwd+bwd
#
# Peak RSS is the process's high-water mark (VmHWM) over one measurement, reset before it through
# /proc/self/clear_refs (Linux); it includes the networks' own weights. Elsewhere it is the process's
# peak so far (getrusage), so later rows can only grow.

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import nvidia_reference # pylint: disable=wrong-import-position
from training import networks_stylegan2 # pylint: disable=wrong-import-position
from training import networks_stylegan3 # pylint: disable=wrong-import-position
from torch_utils import persistence # pylint: disable=wrong-import-position
from torch_utils.ops import cpu_kernels, filtered_lrelu # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def generator_kwargs(cfg, res):
    # (module name under training/, Generator kwargs) as train.py builds them; NVIDIA's names.
    common = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, num_fp16_res=4, conv_clamp=256)
    if cfg == 'stylegan2':
        return 'networks_stylegan2', dict(common, mapping_kwargs=dict(num_layers=8), fused_modconv_default='inference_only')
    extra = dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True) if cfg == 'stylegan3-r' else dict()
    return 'networks_stylegan3', dict(common, mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.5 ** (32 / 20000), **extra)

def build_networks(cfg, res, device):
    module, kwargs = generator_kwargs(cfg, res)
    G = {'networks_stylegan2': networks_stylegan2, 'networks_stylegan3': networks_stylegan3}[module].Generator(**kwargs)
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=res, img_channels=3, num_fp16_res=4, conv_clamp=256,
                                         epilogue_kwargs=dict(mbstd_group_size=4))
    return G.to(device), D.to(device)

def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)

def reset_peak_rss():
    # Linux: writing 5 to clear_refs resets the high-water mark of the resident set (VmHWM).
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass

def peak_rss_gb():
    """Peak resident memory of this process in GB (VmHWM, else getrusage)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 2**20 # kB -> GB.
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def time_call(fn, device, reps, warmup=1):
    """Median and min wall time of fn() over reps runs after warmup runs, the peak RSS in GB, and the
    smallest CPU time of this process per run (all threads; on a shared machine the least disturbed
    figure for one thread)."""
    reset_peak_rss()
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(reps):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(times)), float(np.min(times)), peak_rss_gb(), float(np.min(cpu))

def modconv_floor(G, batch, device, reps, warmup, backward=False):
    # Time only the modulated convolutions of every synthesis layer, with inputs of the real shapes;
    # with backward, also their gradients with respect to inputs, weights and styles.
    g = torch.Generator(device=device).manual_seed(0)
    cases = []
    for name in G.synthesis.layer_names:
        L = getattr(G.synthesis, name)
        x = torch.randn([batch, L.in_channels, int(L.in_size[1]), int(L.in_size[0])], device=device, generator=g)
        s = torch.randn([batch, L.in_channels], device=device, generator=g)
        cases.append((L, x.requires_grad_(backward), s.requires_grad_(backward)))
    def run():
        with torch.set_grad_enabled(backward):
            for L, x, s in cases:
                y = networks_stylegan3.modulated_conv2d(x, L.weight, s, demodulate=not L.is_torgb, padding=L.conv_kernel - 1,
                                                        input_gain=L.magnitude_ema.rsqrt())
                if backward:
                    y.backward(torch.ones_like(y))
    return time_call(run, device, reps, warmup)

def discriminator_conv_floor(D, img, device, reps, warmup):
    # Time only D's convolutions, forward+backward (input and weight gradients), each as one plain conv2d
    # at its layer's input shape and stride (down = 2 is a stride-2 convolution; no FIR, bias or activation).
    shapes = []
    hooks = [m.register_forward_pre_hook(lambda m, args: shapes.append((m, args[0].shape)))
             for m in D.modules() if isinstance(m, networks_stylegan2.Conv2dLayer)]
    with torch.no_grad():
        D(img, None)
    for h in hooks:
        h.remove()
    g = torch.Generator(device=device).manual_seed(0)
    cases = [(torch.randn(shape, device=device, generator=g).requires_grad_(True), m.weight.detach().clone().requires_grad_(True),
              m.down, m.padding) for m, shape in shapes]
    def run():
        for x, w, stride, padding in cases:
            y = torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)
            y.backward(torch.ones_like(y))
    return time_call(run, device, reps, warmup)

def reference_filtered_lrelu(fn):
    # fn() with native autograd through the reference filtered_lrelu (the CPU training path before the
    # sign-tensor Function): the comparison row of --reference.
    def run():
        taken = filtered_lrelu._cpu_training
        filtered_lrelu._cpu_training = lambda *args: False
        try:
            fn()
        finally:
            filtered_lrelu._cpu_training = taken
    return run

def check_nvidia_checkout(repo, cfgs):
    problem = nvidia_reference.checkout_problem(repo, [generator_kwargs(cfg, 256)[0] for cfg in cfgs])
    if problem:
        raise click.BadParameter(problem, param_hint='--nvidia')

def nvidia_run(repo, cfg, res, batch, reps, warmup, threads, train, G):
    # NVIDIA's generator from the checkout at `repo`, in a subprocess (bench/nvidia_reference.py): its
    # forward (and with `train`, forward+backward) as time_call tuples measured inside that process,
    # its latents, and the largest differences between its images and ours, (1) with its weights
    # loaded into G (left loaded) and (2) with the network read from a pickle that its own code wrote.
    module, kwargs = generator_kwargs(cfg, res)
    repo = os.path.expanduser(repo)
    spec = dict(module=module, kwargs=kwargs, batch=batch, warmup=warmup, reps=reps, threads=threads or torch.get_num_threads(),
                seed=0, train=train)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nvidia_reference.py')
    with tempfile.TemporaryDirectory() as tmp:
        out, pkl = os.path.join(tmp, 'nvidia.pt'), os.path.join(tmp, 'nvidia.pkl')
        if subprocess.run([sys.executable, script, repo, json.dumps(spec), out, pkl], check=False).returncode != 0:
            raise click.ClickException(f'--nvidia: NVIDIA\'s {cfg} generator from {repo} failed (its output is above)')
        theirs = torch.load(out, weights_only=True)
        imported = persistence.load_network_pkl(pkl)['G_ema'].eval()
    G.load_state_dict(theirs['state'])
    with torch.no_grad():
        diffs = [(net(theirs['z'], None, noise_mode='const') - theirs['img']).abs().max().item() for net in (G, imported)]
    summary = lambda m: (float(np.median(m['times'])), float(np.min(m['times'])), m['peak_gb'], float(np.min(m['cpu'])))
    return dict(forward=summary(theirs['forward']), train=summary(theirs['train']) if train else None, z=theirs['z'], diffs=diffs)

def ratio_row(cfg, res, what, ours, theirs):
    """The table row comparing two time_call tuples (median s, min s, peak RSS GB, CPU s): NVIDIA's value
    over ours in each column, so a time column reads as our speed-up and the RSS column as how many
    times more memory NVIDIA's process needed."""
    if min(ours) <= 0:
        raise ValueError(f'ratio_row: our {what} measurement {ours} has a non-positive entry')
    median, least, peak, cpu = (t / o for t, o in zip(theirs, ours))
    return f'| {cfg} | {res} | {what}: NVIDIA / ours | {median:.2f}x | {least:.2f}x | | {peak:.2f}x | {cpu:.2f}x |'

#----------------------------------------------------------------------------

@click.command()
@click.option('--cfg',    help='Comma list of configs: stylegan3-t, stylegan3-r, stylegan2  [default: all three; with --quick: stylegan3-t]')
@click.option('--res',    help='Comma list of resolutions  [default: 256,512; with --quick: 256]')
@click.option('--batch',  help='Batch size', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--reps',   help='Timed repetitions per measurement  [default: 3; with --quick: 1]', type=click.IntRange(min=1))
@click.option('--warmup', help='Untimed runs before the timed ones', type=click.IntRange(min=0), default=1, show_default=True)
@click.option('--device', help='torch device', default='cpu', show_default=True)
@click.option('--threads',help='torch CPU threads (0 = leave as is)', type=click.IntRange(min=0), default=2, show_default=True)
@click.option('--quick',  help='Only G forward and the modulated-conv floor, 1 rep', is_flag=True)
@click.option('--train',  help='Only the training rows: G forward+backward, its modulated-conv floor, D forward+backward, its convolution floor', is_flag=True)
@click.option('--reference', help='Also time G forward+backward with native autograd through the reference filtered_lrelu (needs several times the memory)', is_flag=True)
@click.option('--nvidia', help='Also time NVIDIA\'s generator from this local NVlabs/stylegan3 checkout (CPU; G forward, with --train also G forward+backward), compare its images with ours and print the ratios', metavar='PATH')
@click.option('--no-cpu-plugin', 'no_plugin', help='Run filtered_lrelu on its PyTorch CPU path (blocked passes) instead of the compiled CPU plugin, for comparison', is_flag=True)
def main(cfg, res, batch, reps, warmup, device, threads, quick, train, reference, nvidia, no_plugin):
    """Time G forward, G forward+backward and D forward+backward (images/s, peak RSS)."""
    args = (cfg, res, batch, reps, warmup, device, threads, quick, train, reference, nvidia)
    if no_plugin:
        with cpu_kernels.plugin_loader(lambda: None):
            return _main(*args, 'no CPU plugin')
    if torch.device(device).type != 'cpu':
        return _main(*args, 'CPU plugin not used')
    built = cpu_kernels.load_cpu_plugin() is not None # Built (once per machine) before anything is timed.
    return _main(*args, 'CPU plugin' if built else 'CPU plugin did not build')

def _main(cfg, res, batch, reps, warmup, device, threads, quick, train, reference, nvidia, plugin):
    device = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    cfgs = (cfg or ('stylegan3-t' if quick or train else 'stylegan3-t,stylegan3-r,stylegan2')).split(',')
    resolutions = [int(r) for r in (res or ('256' if quick or train else '256,512')).split(',')]
    reps = reps or (1 if quick else 3)
    for c in cfgs:
        if c not in ('stylegan3-t', 'stylegan3-r', 'stylegan2'):
            raise click.BadParameter(f'unknown config {c!r}; choose from stylegan3-t, stylegan3-r, stylegan2', param_hint='--cfg')
    if quick and train:
        raise click.BadParameter('--quick and --train select different rows; give one of them', param_hint='--train')
    if nvidia:
        if device.type != 'cpu':
            raise click.BadParameter('NVIDIA\'s generator is timed on the CPU only; use --device=cpu', param_hint='--nvidia')
        check_nvidia_checkout(nvidia, cfgs)
    print(f'# torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, batch {batch}, {plugin}, '
          f'load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}')
    print('| Config | Res | Measurement | median s | min s | images/s | peak RSS GB | CPU s |')
    print('|---|---|---|---:|---:|---:|---:|---:|')
    for c in cfgs:
        for r in resolutions:
            bench_config(c, r, batch, reps, warmup, device, threads, quick, train, reference, nvidia)

def bench_config(c, r, batch, reps, warmup, device, threads, quick, train, reference, nvidia):
    torch.manual_seed(0)
    G, D = build_networks(c, r, device)
    G.eval()
    D.eval()
    z = torch.randn([batch, G.z_dim], device=device)
    img = torch.randn([batch, 3, r, r], device=device)
    sg3 = c.startswith('stylegan3')
    nv = nvidia_run(nvidia, c, r, batch, reps, warmup, threads, train, G) if nvidia else None
    if nv:
        z = nv['z'].to(device) # Their latents; their weights are in G now.
    ours = dict()
    def row(what, t):
        extra = f'{t[2]:.2f} | {t[3]:.3f}' if len(t) > 2 else ' |'
        print(f'| {c} | {r} | {what} | {t[0]:.3f} | {t[1]:.3f} | {batch / t[0]:.3f} | {extra} |', flush=True)
        ours[what] = t
    if not train:
        with torch.no_grad():
            row('G forward', time_call(lambda: G(z, None, noise_mode='const'), device, reps, warmup))
        if sg3 and (r == 256 or quick):
            row('modulated convs only (floor)', modconv_floor(G, batch, device, reps, warmup))
    if not quick:
        step = lambda: G(z, None).square().mean().backward()
        row('G forward+backward', time_call(step, device, reps, warmup))
        if reference and sg3:
            row('G forward+backward, reference filtered_lrelu (native autograd)', time_call(reference_filtered_lrelu(step), device, reps, warmup))
        if sg3 and (train or r == 256):
            row('modulated convs forward+backward (floor)', modconv_floor(G, batch, device, reps, warmup, backward=True))
        if not train:
            with torch.no_grad():
                row('D forward', time_call(lambda: D(img, None), device, reps, warmup))
        row('D forward+backward', time_call(lambda: D(img, None).sum().backward(), device, reps, warmup))
        if train:
            row('D convolutions forward+backward (floor)', discriminator_conv_floor(D, img, device, reps, warmup))
    if nv:
        nvidia_rows(c, r, batch, nv, ours)

def nvidia_rows(c, r, batch, nv, ours):
    # NVIDIA's measurements (from their process: its own peak RSS and CPU time), the images' agreement,
    # and NVIDIA / ours for each measurement both sides made.
    for what, key in (('G forward', 'forward'), ('G forward+backward', 'train')):
        t = nv[key]
        if t is not None:
            print(f'| {c} | {r} | NVIDIA {what} (their code, same machine) | {t[0]:.3f} | {t[1]:.3f} | {batch / t[0]:.3f} | {t[2]:.2f} | {t[3]:.3f} |')
            if what in ours:
                print(ratio_row(c, r, what, ours[what], t))
    diff_state, diff_pkl = nv['diffs']
    print(f'| {c} | {r} | max abs difference to NVIDIA\'s images: our G with their weights | {diff_state:.2e} | | | | |')
    print(f'| {c} | {r} | max abs difference to NVIDIA\'s images: their pickle, our importer | {diff_pkl:.2e} | | | | |', flush=True)

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
