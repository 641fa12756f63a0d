# Time the ops at the layer shapes of a stylegan3-t generator and the StyleGAN2 discriminator, against
# straightforward zero-insertion implementations of the same maths (bench/zero_insertion.py).
#
#   python bench/ops.py                      # CPU, 256x256 layer shapes, batch 1, 3 interleaved repeats
#   python bench/ops.py --res=512 --device=cuda --batch=4
#   python bench/ops.py --quick              # a few layers, one repeat: a smoke test of the script
#
# Each repeat times the baseline and our op back to back for every case, so both see the same machine
# load; the table reports the median of the repeats and their ratio. Results go to docs/benchmarks.md.

import os
import platform
import sys
import time

import click
import numpy as np
import scipy.signal
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import zero_insertion as oracles # pylint: disable=wrong-import-position
from torch_utils.ops import bias_act, conv2d_resample, filtered_lrelu, upfirdn2d # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# stylegan3-t layer schedule (facts: stylegan3.md sections 4.3 and 4.6), train.py defaults.

def sg3_layers(res, channel_base=32768, channel_max=512, num_layers=14, num_critical=2, margin=10, conv_kernel=3):
    last_cutoff = res / 2
    last_stopband = last_cutoff * 2 ** 0.3
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = 2 * (last_cutoff / 2) ** exponents
    stopbands = 2 ** 2.1 * (last_stopband / 2 ** 2.1) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = 3
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == num_layers
        k = 1 if is_torgb else conv_kernel
        tmp_rate = max(rates[prev], rates[idx]) * (1 if is_torgb else 2)
        up = int(np.rint(tmp_rate / rates[prev]))
        down = int(np.rint(tmp_rate / rates[idx]))
        up_taps = 6 * up if up > 1 and not is_torgb else 1
        down_taps = 6 * down if down > 1 and not is_torgb else 1
        in_size = int(sizes[prev]) + k - 1 # After the modulated convolution.
        out_size = int(sizes[idx])
        pad_total = (out_size - 1) * down + 1 - in_size * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        fu = _lowpass(up_taps, cutoffs[prev], half_widths[prev] * 2, tmp_rate)
        fd = _lowpass(down_taps, cutoffs[idx], half_widths[idx] * 2, tmp_rate)
        name = f'L{idx}_{out_size}_{int(channels[idx])}'
        layers.append(dict(name=name, channels=int(channels[idx]),
                           in_channels=int(channels[prev]), in_size=in_size, out_size=out_size, up=up, down=down,
                           padding=[pad_lo, pad_hi, pad_lo, pad_hi], fu=fu, fd=fd,
                           gain=1 if is_torgb else np.sqrt(2), slope=1 if is_torgb else 0.2))
    return layers

def _lowpass(numtaps, cutoff, width, fs):
    if numtaps == 1:
        return None
    return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)

def d_blocks(res, channel_base=32768, channel_max=512):
    # StyleGAN2 discriminator blocks: (resolution, channels in, channels out).
    ch = lambda r: min(channel_base // r, channel_max)
    blocks = []
    r = res
    while r >= 8:
        blocks.append((r, ch(r), ch(r // 2)))
        r //= 2
    return blocks

#----------------------------------------------------------------------------
# Cases: (group, name, ours(), baseline()).

def filtered_lrelu_cases(res, batch, device, dtype, quick):
    layers = sg3_layers(res)
    if quick:
        layers = [layers[0], layers[3], layers[-3]]
    gen = torch.Generator().manual_seed(0)
    for layer in layers:
        c = layer['channels']
        x = torch.randn([batch, c, layer['in_size'], layer['in_size']], generator=gen).to(device=device, dtype=dtype)
        b = torch.randn([c], generator=gen).to(device=device, dtype=dtype)
        fu = None if layer['fu'] is None else layer['fu'].to(device)
        fd = None if layer['fd'] is None else layer['fd'].to(device)
        kw = dict(up=layer['up'], down=layer['down'], padding=layer['padding'], gain=layer['gain'], slope=layer['slope'], clamp=256.0)
        ours = lambda x=x, b=b, fu=fu, fd=fd, kw=kw: filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl=_impl(device), **kw)
        base = lambda x=x, b=b, fu=fu, fd=fd, kw=kw: oracles.filtered_lrelu_zero_insertion(
            x, fu, fd, b, kw['up'], kw['down'], kw['padding'], kw['gain'], kw['slope'], kw['clamp'])
        desc = f"{layer['name']} [{batch},{c},{layer['in_size']}] up{layer['up']}/down{layer['down']}"
        yield 'filtered_lrelu', desc, ours, base

def upfirdn2d_cases(res, batch, device, dtype, quick):
    # Separable 12-tap up- and downsampling by 2 (ADA's geometric augmentation filters) and the
    # discriminator's [1,3,3,1] downsampling, at full image size.
    gen = torch.Generator().manual_seed(1)
    f12 = upfirdn2d.setup_filter(np.hanning(14)[1:-1], separable=True).to(device)
    f4 = upfirdn2d.setup_filter([1, 3, 3, 1]).to(device)
    sizes = [(3, res)] if quick else [(3, res), (128, res // 2)]
    for c, size in sizes:
        x = torch.randn([batch, c, size, size], generator=gen).to(device=device, dtype=dtype)
        for name, f, kw in (('up2 sep12', f12, dict(up=2, padding=[6, 5, 6, 5], gain=4)),
                            ('down2 sep12', f12, dict(down=2, padding=5)),
                            ('down2 2-D 4x4', f4, dict(down=2, padding=1))):
            ours = lambda x=x, f=f, kw=kw: upfirdn2d.upfirdn2d(x, f, impl=_impl(device), **kw)
            base = lambda x=x, f=f, kw=kw: oracles.upfirdn2d_zero_insertion(
                x, f, _pair(kw.get('up', 1)), _pair(kw.get('down', 1)), _pad4(kw['padding']), False, kw.get('gain', 1))
            yield 'upfirdn2d', f'{name} [{batch},{c},{size}]', ours, base

def conv2d_resample_cases(res, batch, device, dtype, quick):
    # Discriminator conv1 (3x3, down 2) and skip (1x1, down 2) of each block.
    gen = torch.Generator().manual_seed(2)
    f4 = upfirdn2d.setup_filter([1, 3, 3, 1]).to(device)
    blocks = d_blocks(res)[:1] if quick else d_blocks(res)[:3]
    for r, cin, cout in blocks:
        x = torch.randn([batch, cin, r, r], generator=gen).to(device=device, dtype=dtype)
        for k, pad in ((3, 1), (1, 0)):
            w = torch.randn([cout, cin, k, k], generator=gen).to(device=device, dtype=dtype)
            ours = lambda x=x, w=w, pad=pad: conv2d_resample.conv2d_resample(x, w, f4, down=2, padding=pad)
            base = lambda x=x, w=w, k=k, pad=pad: _conv_down_baseline(x, w, f4, pad)
            yield 'conv2d_resample', f'D {k}x{k} down2 [{batch},{cin},{r}]->{cout}', ours, base

def _conv_down_baseline(x, w, f, pad):
    # The generic order at full resolution: pad, convolve, FIR, keep every second sample.
    p = pad + 1 # downsample2d padding for a 4-tap filter and down=2: [1, 1].
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [p, p, p, p]), w)
    return oracles.upfirdn2d_zero_insertion(x, f, (1, 1), (2, 2))

def bias_act_cases(res, batch, device, dtype, quick):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([batch, 128, res, res], generator=gen).to(device=device, dtype=dtype)
    b = torch.randn([128], generator=gen).to(device=device, dtype=dtype)
    ours = lambda: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl=_impl(device))
    base = lambda: (torch.nn.functional.leaky_relu(x + b.reshape(1, -1, 1, 1), 0.2) * np.sqrt(2)).clamp(-256, 256)
    yield 'bias_act', f'lrelu+clamp [{batch},128,{res}]', ours, base

def _as_ref(fn):
    # Re-run a case's closure with every op forced to impl='ref'.
    def run():
        saved = _FORCE_REF[0]
        _FORCE_REF[0] = True
        try:
            return fn()
        finally:
            _FORCE_REF[0] = saved
    return run

_FORCE_REF = [False]

def _impl(device):
    return 'cuda' if device.type == 'cuda' and not _FORCE_REF[0] else 'ref'

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)

def _pad4(p):
    return (p, p, p, p) if isinstance(p, int) else tuple(p)

#----------------------------------------------------------------------------

def _time(fn, device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0

def run_bench(res, batch, device, dtype, reps, quick, baseline='zero-insertion', out=print):
    groups = [filtered_lrelu_cases, upfirdn2d_cases, conv2d_resample_cases, bias_act_cases]
    cases = [case for group in groups for case in group(res, batch, device, dtype, quick)]
    if baseline == 'ref': # The same op with impl='ref' on the same device (for --device=cuda).
        cases = [(g, d, ours, _as_ref(ours)) for g, d, ours, _ in cases]
    times = {i: ([], []) for i in range(len(cases))}
    with torch.no_grad():
        for i, (_, _, ours, base) in enumerate(cases): # Warm-up, and check that both agree.
            y, y0 = ours(), base()
            err = (y.double() - y0.double()).abs().max().item() / max(y0.double().abs().max().item(), 1e-30)
            if not err < 1e-4:
                raise click.ClickException(f'case {cases[i][1]}: ours and the baseline differ (relative error {err:.3g})')
        for _ in range(reps):
            for i, (_, _, ours, base) in enumerate(cases):
                times[i][1].append(_time(base, device))
                times[i][0].append(_time(ours, device))
    rows = []
    out(f'| Op | Case | Baseline (s) | Ours (s) | Speed-up |')
    out(f'|---|---|---:|---:|---:|')
    totals = dict()
    for i, (group, desc, _, _) in enumerate(cases):
        t_ours, t_base = np.median(times[i][0]), np.median(times[i][1])
        tot = totals.setdefault(group, [0.0, 0.0])
        tot[0] += t_base
        tot[1] += t_ours
        rows.append((group, desc, t_base, t_ours))
        out(f'| {group} | {desc} | {t_base:.4f} | {t_ours:.4f} | {t_base / t_ours:.2f}x |')
    for group, (t_base, t_ours) in totals.items():
        out(f'| {group} | **all cases above** | {t_base:.4f} | {t_ours:.4f} | **{t_base / t_ours:.2f}x** |')
    return rows

#----------------------------------------------------------------------------

@click.command()
@click.option('--device', default='cpu', show_default=True, help='Device to run on: cpu or cuda (cuda uses impl=\'cuda\').')
@click.option('--res', type=click.Choice(['256', '512', '1024']), default='256', show_default=True, help='Image resolution whose layer shapes are timed.')
@click.option('--batch', type=click.IntRange(min=1), default=1, show_default=True, help='Batch size.')
@click.option('--reps', type=click.IntRange(min=1), default=3, show_default=True, help='Interleaved repeats; the table shows medians.')
@click.option('--dtype', type=click.Choice(['float32', 'float16']), default='float32', show_default=True, help='Tensor dtype (float16 only on cuda).')
@click.option('--threads', type=click.IntRange(min=1), default=None, help='torch.set_num_threads (default: torch\'s choice).')
@click.option('--baseline', type=click.Choice(['zero-insertion', 'ref']), default='zero-insertion', show_default=True, help='What to compare with: the zero-insertion implementations, or the same op with impl=\'ref\' (for --device=cuda).')
@click.option('--quick', is_flag=True, help='A few cases and one repeat: checks that the script runs.')
def main(device, res, batch, reps, dtype, threads, baseline, quick):
    """Time the ops against zero-insertion baselines at StyleGAN3 layer shapes; prints a Markdown table."""
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise click.ClickException('--device=cuda: no CUDA device is available')
    if dtype == 'float16' and device.type != 'cuda':
        raise click.ClickException('--dtype=float16 needs --device=cuda')
    if threads is not None:
        torch.set_num_threads(threads)
    if quick:
        reps = 1
    load = os.getloadavg() if hasattr(os, 'getloadavg') else (float('nan'),) * 3
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()
    print(f'# bench/ops.py --device={device} --res={res} --batch={batch} --reps={reps} --dtype={dtype}'
          f' --baseline={baseline}{" --quick" if quick else ""}: torch {torch.__version__}, {name}, {torch.get_num_threads()} threads, '
          f'load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
    run_bench(int(res), batch, device, getattr(torch, dtype), reps, quick, baseline)
    load = os.getloadavg() if hasattr(os, 'getloadavg') else (float('nan'),) * 3
    print(f'# load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
