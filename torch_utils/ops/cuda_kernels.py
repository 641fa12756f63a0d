# Which kernel an op runs: our CUDA plugin, or the pure-PyTorch reference kernel.
#
# The op modules (upfirdn2d.py, bias_act.py, filtered_lrelu.py) write their autograd Functions against a
# *kernel object*: anything with the entry points below (the plugin module has exactly these pybind
# functions; the reference kernel mirrors them in PyTorch). `select_kernel()` decides, per op
# configuration, which object to hand them:
#
#   upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain) -> y
#   bias_act(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp) -> y
#   filtered_lrelu(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp,
#                  flip_filter, write_signs) -> (y, so, return_code)
#   filtered_lrelu_act_(x, si, sx, sy, gain, slope, clamp, write_signs) -> so
#
# Policy (docs/cuda.md): the plugin is built lazily on the first CUDA call (never at import) through
# custom_ops.load_plugin, which warns once and returns None when the build fails (FUNDUS_CUDA_STRICT=1
# raises instead). The first time a configuration (op, static arguments, device, dtype) is seen, the
# plugin is compared with the reference kernel on a small random input; a mismatch warns once with the
# numbers and pins the reference kernel for that configuration. A wrong kernel never trains silently.

import contextlib
import math
import os
import warnings

import torch

from .. import custom_ops

#----------------------------------------------------------------------------
# The plugin: one extension for all three ops, so CI compiles (and users wait for) a single build.

PLUGIN_NAME = 'fundus_ops_plugin'
PLUGIN_SOURCES = ['fundus_ops.cpp', 'upfirdn2d.cu', 'bias_act.cu', 'filtered_lrelu.cu']
PLUGIN_HEADERS = ['fundus_ops.h', 'fundus_kernels.h']
PLUGIN_CFLAGS = ['-Wall', '-Wextra']   # compile_check fails on any warning these produce.
PLUGIN_CUDA_FLAGS = ['--use_fast_math', '-Xcudafe', '--display_error_number', '-Xcompiler', '-Wall']
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))

# Self-check tolerances: max |plugin - reference| <= RTOL[dtype] * max(|reference|, 1).
# STARTING POINTS from testing.md §3, not yet calibrated on a GPU (no GPU was lent to the task that wrote
# the kernels); replace them with measured maxima x a safety factor after the first `pytest -m cuda` run.
SELF_CHECK_RTOL = {
    torch.float64: 1e-10,   # Both sides accumulate in fp64.
    torch.float32: 1e-5,    # testing.md §3 starting point.
    torch.float16: 1e-2,    # testing.md §3 starting point; the kernels accumulate in fp32.
}
# Sign tensors (filtered_lrelu): fraction of 2-bit codes allowed to differ. Codes can legitimately
# differ only where the pre-activation is within rounding of 0 or of the clamp; a broken encoding
# differs in about half of them. Starting points, not yet calibrated.
SELF_CHECK_SIGN_MISMATCH = {
    torch.float64: 0.0,
    torch.float32: 1e-3,
    torch.float16: 2e-2,
}

#----------------------------------------------------------------------------
# Process state: the verdict per configuration, plus injectable hooks so tests can drive the selection
# on a CPU-only machine.

_verdicts = dict()      # key -> True (plugin passed) or False (use reference)
_hooks = dict(plugin_loader=None, device_check=None)

def reset_for_tests():
    _verdicts.clear()
    _hooks.update(plugin_loader=None, device_check=None)

@contextlib.contextmanager
def testing_hooks(plugin_loader=None, device_check=None):
    """Temporarily replace the plugin loader (a callable returning a kernel object or None) and the
    device check (a callable device -> bool) used by select_kernel; restores them on exit."""
    saved = dict(_hooks)
    _hooks.update(plugin_loader=plugin_loader, device_check=device_check)
    try:
        yield
    finally:
        _hooks.clear()
        _hooks.update(saved)
        _verdicts.clear()

def load_cuda_plugin():
    """The built plugin module, or None after one warning if it cannot be built (strict mode raises)."""
    return custom_ops.load_plugin(PLUGIN_NAME, PLUGIN_SOURCES, PLUGIN_HEADERS, source_dir=SOURCE_DIR,
                                  extra_cflags=PLUGIN_CFLAGS, extra_cuda_cflags=PLUGIN_CUDA_FLAGS)

def _is_cuda_device(device):
    return torch.device(device).type == 'cuda' and torch.cuda.is_available()

#----------------------------------------------------------------------------

def select_kernel(op_name, config, ref_kernel, device, dtype):
    """The kernel object to run `op_name` with: the CUDA plugin if it builds and passes the self-check
    for this configuration, otherwise `ref_kernel`.

    Args:
        op_name:    'upfirdn2d', 'bias_act' or 'filtered_lrelu'.
        config:     dict of the op's static arguments, named as in the kernel entry point (see
                    docs/cuda.md, "Self-check configurations"); unknown keys are ignored, missing ones
                    take defaults. Together with device and dtype it keys the verdict cache.
        ref_kernel: The reference kernel object (same entry points as the plugin).
        device:     Device of the op's inputs.
        dtype:      Dtype of the op's inputs.

    Returns:
        The plugin module or `ref_kernel`.
    """
    if op_name not in _PROBES:
        raise ValueError(f'select_kernel: unknown op {op_name!r}; expected one of {sorted(_PROBES)}')
    device = torch.device(device)
    device_check = _hooks['device_check'] or _is_cuda_device
    if not device_check(device):
        return ref_kernel
    key = (op_name, _freeze(config), str(device), dtype)
    verdict = _verdicts.get(key)
    if verdict is not None:
        return _plugin() if verdict else ref_kernel
    plugin = _plugin()
    if plugin is None:
        return ref_kernel # load_plugin already warned (once).
    ok = self_check(op_name, config, plugin, ref_kernel, device, dtype)
    _verdicts[key] = ok
    return plugin if ok else ref_kernel

def _plugin():
    loader = _hooks['plugin_loader'] or load_cuda_plugin
    return loader()

def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, torch.Tensor):
        return tuple(value.flatten().tolist())
    return value

#----------------------------------------------------------------------------
# The self-check: run both kernels on the same small random inputs and compare.

class SelfCheckFailure(RuntimeError):
    pass

def self_check(op_name, config, plugin, ref_kernel, device, dtype):
    """True if `plugin` agrees with `ref_kernel` for this configuration; otherwise warns (strict mode:
    raises) with the largest error and the tolerance, and returns False."""
    gen = torch.Generator().manual_seed(_config_seed(op_name, config)) # Never touches the global RNG.
    device = torch.device(device)
    try:
        # The caller may be under autocast (mixed-precision training): the reference must run in dtype.
        with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
            problems = _PROBES[op_name](dict(config or {}), plugin, ref_kernel, device, dtype, gen)
    except Exception as e: # A crash in the plugin is a failed check, not a crashed training run.
        problems = [f'the plugin raised {type(e).__name__}: {e}']
    if not problems:
        return True
    message = (f'CUDA kernel self-check failed for {op_name} {dict(config or {})} on {device} ({dtype}): '
               + '; '.join(problems) + '. Using the reference kernel for this configuration.')
    if custom_ops.strict_mode():
        raise SelfCheckFailure(message + f' ({custom_ops.STRICT_ENV}=1 forbids the fallback.)')
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return False

def _config_seed(op_name, config):
    return sum(ord(c) for c in op_name + repr(_freeze(config or {}))) % (2**31)

def _compare(name, got, ref, dtype, problems):
    if not isinstance(got, torch.Tensor) or got.shape != ref.shape:
        got_shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        problems.append(f'{name}: shape {got_shape} != reference {tuple(ref.shape)}')
        return
    got64, ref64 = got.detach().double(), ref.detach().double()
    if not torch.isfinite(got64).all() and torch.isfinite(ref64).all():
        problems.append(f'{name}: non-finite values where the reference is finite')
        return
    err = (got64 - ref64).abs().max().item() if ref64.numel() else 0.0
    tol = SELF_CHECK_RTOL[dtype] * max(ref64.abs().max().item() if ref64.numel() else 0.0, 1.0)
    if not err <= tol:
        problems.append(f'{name}: max abs error {err:.3g} > tolerance {tol:.3g}')

def _compare_signs(name, got, ref, dtype, problems):
    if not isinstance(got, torch.Tensor) or got.shape != ref.shape or got.dtype != ref.dtype:
        problems.append(f'{name}: sign tensor {getattr(got, "shape", None)}/{getattr(got, "dtype", None)} '
                        f'!= reference {tuple(ref.shape)}/{ref.dtype}')
        return
    codes_got, codes_ref = unpack_signs(got), unpack_signs(ref)
    frac = (codes_got != codes_ref).double().mean().item() if codes_ref.numel() else 0.0
    if frac > SELF_CHECK_SIGN_MISMATCH[dtype]:
        problems.append(f'{name}: {frac:.3g} of the sign codes differ > tolerance {SELF_CHECK_SIGN_MISMATCH[dtype]:.3g}')

def unpack_signs(s):
    """Bit-packed uint8 sign tensor [..., W/4] -> 2-bit codes [..., W] (element 4*i+j in bits 2j, 2j+1)."""
    s = s.to(torch.int32)
    parts = [(s >> (2 * j)) & 3 for j in range(4)]
    return torch.stack(parts, dim=-1).flatten(-2)

def _randn(shape, dtype, device, gen, memory_format=torch.contiguous_format):
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    return x.contiguous(memory_format=memory_format)

def _layouts():
    return [torch.contiguous_format, torch.channels_last]

#----------------------------------------------------------------------------
# upfirdn2d probe. Config keys: upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain, and
# optionally fh, fw (filter shape; default 4 x 4 plus a 1 x 4 / 4 x 1 pair for the separable passes).

def _out_len(n, up, down, p0, p1, taps):
    return (n * up + p0 + p1 - taps + down) // down

def _fit_input_len(up, down, p0, p1, taps, want=3):
    n = 5
    while _out_len(n, up, down, p0, p1, taps) < want and n < 4096:
        n += 1
    return n

def _probe_upfirdn2d(cfg, plugin, ref, device, dtype, gen):
    upx, upy = int(cfg.get('upx', 1)), int(cfg.get('upy', 1))
    downx, downy = int(cfg.get('downx', 1)), int(cfg.get('downy', 1))
    px0, px1 = int(cfg.get('padx0', 0)), int(cfg.get('padx1', 0))
    py0, py1 = int(cfg.get('pady0', 0)), int(cfg.get('pady1', 0))
    flip, gain = bool(cfg.get('flip', False)), float(cfg.get('gain', 1.0))
    shapes = [(int(cfg['fh']), int(cfg['fw']))] if 'fh' in cfg else [(4, 4), (1, 4), (4, 1)]
    problems = []
    for fh, fw in shapes:
        h = _fit_input_len(upy, downy, py0, py1, fh)
        w = _fit_input_len(upx, downx, px0, px1, fw) + 1 # Non-square, odd or even: catches swapped axes.
        f = torch.rand([fh, fw], generator=gen, dtype=torch.float64).to(device=device, dtype=torch.float32)
        for layout in _layouts():
            x = _randn([2, 3, h, w], dtype, device, gen, layout)
            args = (upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
            y_ref = ref.upfirdn2d(x, f, *args)
            y = plugin.upfirdn2d(x, f, *args)
            _compare(f'upfirdn2d f{fh}x{fw} {_layout_name(layout)}', y, y_ref, dtype, problems)
    return problems

def _layout_name(layout):
    return 'channels_last' if layout == torch.channels_last else 'contiguous'

#----------------------------------------------------------------------------
# bias_act probe. Config keys: dim, act (integer activation index, docs/kernels.md), alpha, gain, clamp
# (negative = no clamp). Checks grad = 0, 1 and 2 (forward, first and second derivative modes).

def _probe_bias_act(cfg, plugin, ref, device, dtype, gen):
    dim, act = int(cfg.get('dim', 1)), int(cfg.get('act', 1))
    alpha, gain, clamp = float(cfg.get('alpha', 0.0)), float(cfg.get('gain', 1.0)), float(cfg.get('clamp', -1.0))
    shape = [3, 5, 7, 6] if dim < 4 else [3] * (dim + 1)
    problems = []
    empty = torch.empty([0], device=device, dtype=dtype)
    x = _randn(shape, dtype, device, gen) * 2
    b = _randn([shape[dim]], dtype, device, gen)
    y_ref = ref.bias_act(x, b, empty, empty, empty, 0, dim, act, alpha, gain, clamp)
    y = plugin.bias_act(x, b, empty, empty, empty, 0, dim, act, alpha, gain, clamp)
    _compare('bias_act forward', y, y_ref, dtype, problems)
    xref = (x + b.reshape([-1] + [1] * (len(shape) - dim - 1))).contiguous()
    dy = _randn(shape, dtype, device, gen)
    for grad in (1, 2):
        # The grad modes read xref (the biased input) and yref (the forward output); give both.
        args = (dy, empty, xref, y_ref, dy if grad == 2 else empty, grad, dim, act, alpha, gain, clamp)
        g_ref = ref.bias_act(*args)
        g = plugin.bias_act(*args)
        _compare(f'bias_act grad={grad}', g, g_ref, dtype, problems)
    return problems

#----------------------------------------------------------------------------
# filtered_lrelu probe. Config keys: up, down, px0, px1, py0, py1, gain, slope, clamp (negative = none),
# flip_filter, and optionally fu_shape / fd_shape (default: 2-D, 2*up x 2*up and 2*down x 2*down taps).
# Checks the fused op (values, signs, and that return code -1 is reported consistently) and
# filtered_lrelu_act_ (the generic path's activation), including reading signs back.

def _probe_filtered_lrelu(cfg, plugin, ref, device, dtype, gen):
    up, down = int(cfg.get('up', 1)), int(cfg.get('down', 1))
    px0, px1, py0, py1 = (int(cfg.get(k, 0)) for k in ('px0', 'px1', 'py0', 'py1'))
    gain, slope = float(cfg.get('gain', math.sqrt(2))), float(cfg.get('slope', 0.2))
    clamp, flip = float(cfg.get('clamp', -1.0)), bool(cfg.get('flip_filter', False))
    fu_shape = list(cfg.get('fu_shape', [2 * up, 2 * up] if up > 1 else [1, 1]))
    fd_shape = list(cfg.get('fd_shape', [2 * down, 2 * down] if down > 1 else [1, 1]))
    fu = torch.rand(fu_shape, generator=gen, dtype=torch.float64).to(device=device, dtype=torch.float32)
    fd = torch.rand(fd_shape, generator=gen, dtype=torch.float64).to(device=device, dtype=torch.float32)
    fu, fd = fu / fu.sum(), fd / fd.sum()
    taps_y = (fu_shape[0] - 1) + (fd_shape[0] - 1) + 1
    taps_x = (fu_shape[-1] - 1) + (fd_shape[-1] - 1) + 1
    h = _fit_input_len(up, down, py0, py1, taps_y)
    w = _fit_input_len(up, down, px0, px1, taps_x) + 1
    problems = []
    empty_u8 = torch.empty([0], device=device, dtype=torch.uint8)
    for layout in _layouts():
        x = _randn([2, 3, h, w], dtype, device, gen, layout)
        b = _randn([3], dtype, device, gen)
        if clamp >= 0:
            x = x * 4 # Make sure some values hit the clamp.
        args = (x, fu, fd, b, empty_u8, up, down, px0, px1, py0, py1, 0, 0, gain, slope, clamp, flip, True)
        y_ref, s_ref, rc_ref = ref.filtered_lrelu(*args)
        y, s, rc = plugin.filtered_lrelu(*args)
        name = f'filtered_lrelu {_layout_name(layout)}'
        if int(rc) == -1:
            continue # The plugin declined; the op then takes the generic path, checked below.
        _compare(name, y, y_ref, dtype, problems)
        _compare_signs(name + ' signs', s, s_ref, dtype, problems)
        # The backward call (docs/kernels.md, "Backward pass"): read mode on the reference's signs.
        dy = _randn(list(y_ref.shape), dtype, device, gen)
        bargs = _backward_args(dy, x, y_ref, fu, fd, s_ref, up, down, px0, px1, py0, py1, gain, slope, flip)
        dx_ref, _, _ = ref.filtered_lrelu(*bargs)
        dx, _, rc_b = plugin.filtered_lrelu(*bargs)
        if int(rc_b) != -1:
            _compare(name + ' backward', dx, dx_ref, dtype, problems)
    problems += _probe_filtered_lrelu_act(gain, slope, clamp, plugin, ref, device, dtype, gen)
    return problems

def _backward_args(dy, x, y, fu, fd, signs, up, down, px0, px1, py0, py1, gain, slope, flip):
    fuw, fuh, fdw, fdh = fu.shape[-1], fu.shape[0], fd.shape[-1], fd.shape[0]
    h, w = x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    empty = torch.empty([0], device=x.device, dtype=x.dtype)
    return (dy, fd, fu, empty, signs, down, up,
            fuw + fdw - 2 - px0, w * up - ow * down + px0 - up + 1,
            fuh + fdh - 2 - py0, h * up - oh * down + py0 - up + 1,
            px0 - (fuw - 1), py0 - (fuh - 1), gain * up * up / (down * down), slope, -1.0, not flip, False)

def _probe_filtered_lrelu_act(gain, slope, clamp, plugin, ref, device, dtype, gen):
    problems = []
    empty_u8 = torch.empty([0], device=device, dtype=torch.uint8)
    x = _randn([2, 3, 9, 21], dtype, device, gen) * 3
    x_ref, x_plg = x.clone(), x.clone()
    s_ref = ref.filtered_lrelu_act_(x_ref, empty_u8, 0, 0, gain, slope, clamp, True)
    s = plugin.filtered_lrelu_act_(x_plg, empty_u8, 0, 0, gain, slope, clamp, True)
    _compare('filtered_lrelu_act_ write', x_plg, x_ref, dtype, problems)
    _compare_signs('filtered_lrelu_act_ signs', s, s_ref, dtype, problems)
    g = _randn([2, 3, 9, 21], dtype, device, gen)
    g_ref, g_plg = g.clone(), g.clone()
    ref.filtered_lrelu_act_(g_ref, s_ref, 0, 0, gain, slope, clamp, False)
    plugin.filtered_lrelu_act_(g_plg, s_ref, 0, 0, gain, slope, clamp, False)
    _compare('filtered_lrelu_act_ read', g_plg, g_ref, dtype, problems)
    return problems

#----------------------------------------------------------------------------

_PROBES = {
    'upfirdn2d':      _probe_upfirdn2d,
    'bias_act':       _probe_bias_act,
    'filtered_lrelu': _probe_filtered_lrelu,
}

#----------------------------------------------------------------------------
