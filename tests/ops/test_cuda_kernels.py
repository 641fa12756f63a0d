# The cuda lane (`pytest -m cuda`, auto-skipped without a GPU): our plugin against the reference kernels
# on the same GPU, forward, backward and double backward, fp32/fp16 (and fp64 where supported),
# contiguous, channels-last and sliced inputs, odd sizes, up/down 1/2/4, 1-D and 2-D filters.
#
# Tolerances: cuda_kernels.SELF_CHECK_RTOL (max abs error <= rtol * max(|ref|, 1)), STARTING POINTS from
# testing.md §3, not yet calibrated. On the first GPU run, set FUNDUS_CUDA_CALIBRATION=<file.json>: every
# comparison records its relative error there; replace the constants with the maxima x 10 and say so.

import json
import math
import os
import warnings

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act as bias_act_mod
from torch_utils.ops import cuda_kernels
from torch_utils.ops import filtered_lrelu as flrelu_mod
from torch_utils.ops import upfirdn2d as upfirdn2d_mod

pytestmark = pytest.mark.cuda

_DTYPES = [torch.float32, torch.float16]
_LAYOUTS = ['contiguous', 'channels_last', 'sliced']
_calibration = dict()

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def plugin():
    os.environ[custom_ops.STRICT_ENV] = '1' # A build failure must fail the lane, not fall back.
    try:
        return cuda_kernels.load_cuda_plugin()
    finally:
        del os.environ[custom_ops.STRICT_ENV]

@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    # A failed self-check must fail the lane: without this, the ops would quietly use the reference
    # and the impl='cuda' vs impl='ref' comparisons below would pass vacuously.
    monkeypatch.setenv(custom_ops.STRICT_ENV, '1')

@pytest.fixture(scope='module', autouse=True)
def _write_calibration():
    yield
    path = os.environ.get('FUNDUS_CUDA_CALIBRATION')
    if path and _calibration:
        with open(path, 'w', encoding='utf-8') as f:
            json.dump({k: max(v) for k, v in sorted(_calibration.items())}, f, indent=2)

def _randn(shape, dtype, seed, layout='contiguous', scale=1.0):
    g = torch.Generator().manual_seed(seed)
    if layout == 'sliced':
        wide = torch.randn(shape[:-1] + [shape[-1] * 2], generator=g, dtype=torch.float64) * scale
        return wide.to(device='cuda', dtype=dtype)[..., ::2]
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(device='cuda', dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == 'channels_last' else x

def _filter(shape, seed):
    g = torch.Generator().manual_seed(seed)
    f = torch.rand(shape, generator=g, dtype=torch.float64).float() + 0.1
    return (f / f.sum()).cuda()

def _assert_close(name, got, ref, dtype):
    assert got.shape == ref.shape, f'{name}: shape {tuple(got.shape)} != {tuple(ref.shape)}'
    assert torch.isfinite(got).all(), f'{name}: non-finite values'
    err = (got.double() - ref.double()).abs().max().item()
    scale = max(ref.double().abs().max().item(), 1.0)
    _calibration.setdefault(f'{name} {dtype}', []).append(err / scale)
    tol = cuda_kernels.SELF_CHECK_RTOL[dtype] * scale
    assert err <= tol, f'{name} ({dtype}): max abs error {err:.3g} > tolerance {tol:.3g}'

def _sign_mismatch(got, ref):
    return (cuda_kernels.unpack_signs(got) != cuda_kernels.unpack_signs(ref)).double().mean().item()

#----------------------------------------------------------------------------
# upfirdn2d: kernel level and through the Function (backward, double backward).

_UPFIRDN_CASES = [
    # up, down, padding (x0, x1, y0, y1), filter shape
    (1, 1, (1, 1, 1, 1), [3, 3]),
    (2, 1, (2, 1, 2, 1), [4, 4]),
    (1, 2, (1, 1, 1, 1), [4]),
    (4, 2, (7, 6, 7, 6), [12]),
    (2, 4, (-1, 3, 2, 0), [5, 7]),
    (4, 4, (3, 3, 3, 3), [1, 1]),
]

@pytest.mark.parametrize('case', _UPFIRDN_CASES)
@pytest.mark.parametrize('dtype', _DTYPES + [torch.float64])
@pytest.mark.parametrize('layout', _LAYOUTS)
def test_cuda_upfirdn2d_forward_backward(plugin, case, dtype, layout):
    up, down, pad, fshape = case
    f = _filter(fshape, seed=1)
    flip = len(fshape) == 2
    results = []
    for kernel in (plugin, upfirdn2d_mod.ref_kernel):
        fn = upfirdn2d_mod._upfirdn2d_function(up, up, down, down, *pad, flip, 1.5, kernel)
        x = _randn([3, 5, 13, 11], dtype, seed=2, layout=layout).requires_grad_(True)
        y = fn.apply(x, f)
        dy = _randn(list(y.shape), dtype, seed=3).requires_grad_(True)
        (dx,) = torch.autograd.grad(y, [x], dy, create_graph=True)
        (ddy,) = torch.autograd.grad(dx, [dy], _randn(list(dx.shape), dtype, seed=4)) # Double backward.
        results.append((y, dx, ddy))
    for name, got, ref in zip(('y', 'dx', 'ddy'), results[0], results[1]):
        _assert_close(f'upfirdn2d {name}', got, ref, dtype)

def test_cuda_upfirdn2d_double_backward_through_the_op(plugin):
    # Second-order gradients via the op (linear op: d(dx)/d(dy) is the op itself).
    x = _randn([2, 4, 9, 9], torch.float32, seed=5).requires_grad_(True)
    f = _filter([8], seed=6)
    outs = []
    for impl in ('cuda', 'ref'):
        xx = x.detach().clone().requires_grad_(True)
        y = upfirdn2d_mod.upsample2d(xx, f, up=2, impl=impl)
        (dx,) = torch.autograd.grad((y * y).sum(), [xx], create_graph=True)
        (ddx,) = torch.autograd.grad(dx.square().sum(), [xx])
        outs.append((y, dx, ddx))
    for name, got, ref in zip(('y', 'dx', 'ddx'), outs[0], outs[1]):
        _assert_close(f'upsample2d {name}', got, ref, torch.float32)

#----------------------------------------------------------------------------
# bias_act: every activation; forward, first and second derivatives through the Function.

@pytest.mark.parametrize('act', list(bias_act_mod.activation_funcs))
@pytest.mark.parametrize('dtype', _DTYPES + [torch.float64])
@pytest.mark.parametrize('clamp', [-1.0, 0.8])
def test_cuda_bias_act_forward_and_two_derivatives(plugin, act, dtype, clamp):
    spec = bias_act_mod.activation_funcs[act]
    results = []
    for kernel in (plugin, bias_act_mod.ref_kernel):
        fn = bias_act_mod._bias_act_function(dim=1, act=act, alpha=0.2, gain=float(spec.def_gain), clamp=clamp, kernel=kernel)
        x = _randn([4, 7, 5, 3], dtype, seed=7, scale=2).requires_grad_(True)
        b = _randn([7], dtype, seed=8).requires_grad_(True)
        y = fn.apply(x, b)
        dy = _randn(list(y.shape), dtype, seed=9)
        dx, db = torch.autograd.grad(y, [x, b], dy, create_graph=True)
        ddx = torch.autograd.grad((dx * _randn(list(dx.shape), dtype, seed=10)).sum(), [x], allow_unused=True)[0]
        results.append((y, dx, db, ddx if ddx is not None else torch.zeros_like(x)))
    for name, got, ref in zip(('y', 'dx', 'db', 'ddx'), results[0], results[1]):
        _assert_close(f'bias_act {act} {name}', got, ref, dtype)

@pytest.mark.parametrize('layout', ['channels_last', 'sliced'])
def test_cuda_bias_act_strided_inputs(plugin, layout):
    empty = torch.empty([0], device='cuda')
    x = _randn([2, 6, 5, 7], torch.float32, seed=11, layout=layout)
    b = _randn([6], torch.float32, seed=12)
    got = plugin.bias_act(x, b, empty, empty, empty, 0, 1, 3, 0.2, math.sqrt(2), -1.0)
    ref = bias_act_mod.ref_kernel.bias_act(x, b, empty, empty, empty, 0, 1, 3, 0.2, math.sqrt(2), -1.0)
    _assert_close('bias_act strided', got, ref, torch.float32)

def test_cuda_bias_act_rejects_bad_inputs(plugin):
    empty = torch.empty([0], device='cuda')
    x = torch.randn([2, 3], device='cuda')
    with pytest.raises(RuntimeError, match='b must be 1-D'):
        plugin.bias_act(x, torch.zeros([4], device='cuda'), empty, empty, empty, 0, 1, 3, 0.2, 1.0, -1.0)
    with pytest.raises(RuntimeError, match='CUDA tensor'):
        plugin.bias_act(x.cpu(), empty, empty, empty, empty, 0, 1, 3, 0.2, 1.0, -1.0)
    with pytest.raises(RuntimeError, match='unknown activation'):
        plugin.bias_act(x, empty, empty, empty, empty, 0, 1, 42, 0.2, 1.0, -1.0)

#----------------------------------------------------------------------------
# filtered_lrelu: fused kernel, signs, read-mode backward, generic path.

_FLRELU_CASES = [
    # up, down, padding, fu shape, fd shape, clamp, flip
    (1, 1, (0, 0, 0, 0), [1, 1], [1, 1], -1.0, False),
    (2, 2, (5, 4, 5, 4), [8], [8], -1.0, False),
    (2, 1, (3, 2, 3, 2), [6, 6], [1, 1], 0.5, False),
    (1, 2, (1, 2, 2, 1), [1, 1], [5, 4], 0.5, True),
    (4, 2, (9, 8, 9, 8), [12], [8], 0.8, False),
    (2, 4, (-1, 3, 2, 0), [4, 5], [8, 7], -1.0, True),
    (2, 2, (4, 3, 4, 3), [6], [5, 5], 0.5, True),         # 1-D fu, 2-D fd
    (2, 2, (3, 3, 3, 3), [4, 4], [7], -1.0, False),       # 2-D fu, 1-D fd
]

@pytest.mark.parametrize('case', _FLRELU_CASES)
@pytest.mark.parametrize('dtype', _DTYPES)
@pytest.mark.parametrize('layout', _LAYOUTS)
def test_cuda_filtered_lrelu_forward_signs_backward(plugin, case, dtype, layout):
    up, down, pad, fu_shape, fd_shape, clamp, flip = case
    fu, fd = _filter(fu_shape, 13), _filter(fd_shape, 14)
    results, signs = [], []
    for kernel in (plugin, flrelu_mod.ref_kernel):
        fn = flrelu_mod._filtered_lrelu_function(up, down, *pad, math.sqrt(2), 0.2, clamp, flip, kernel)
        x = _randn([3, 5, 15, 13], dtype, seed=15, layout=layout, scale=2).requires_grad_(True)
        b = _randn([5], dtype, seed=16).requires_grad_(True)
        y = fn.apply(x, fu, fd, b, None, 0, 0)
        dy = _randn(list(y.shape), dtype, seed=17).requires_grad_(True)
        dx, db = torch.autograd.grad(y, [x, b], dy, create_graph=True)
        (ddy,) = torch.autograd.grad(dx, [dy], _randn(list(dx.shape), dtype, seed=18)) # Double backward.
        results.append((y, dx, db, ddy))
        empty_u8 = torch.empty([0], dtype=torch.uint8, device=x.device)
        signs.append(kernel.filtered_lrelu(x.detach(), fu, fd, b.detach(), empty_u8, up, down, *pad, 0, 0,
                                           math.sqrt(2), 0.2, clamp, flip, True))
    for name, got, ref in zip(('y', 'dx', 'db', 'ddy'), results[0], results[1]):
        _assert_close(f'filtered_lrelu {name}', got, ref, dtype)
    (y_p, s_p, rc_p), (_, s_r, _) = signs
    assert rc_p == 0, 'the fast path should cover these shapes'
    assert s_p.shape == s_r.shape and s_p.dtype == torch.uint8
    mismatch = _sign_mismatch(s_p, s_r)
    _calibration.setdefault(f'filtered_lrelu sign mismatch {dtype}', []).append(mismatch)
    assert mismatch <= cuda_kernels.SELF_CHECK_SIGN_MISMATCH[dtype]

def test_cuda_filtered_lrelu_double_backward(plugin):
    # The backward call is linear in dy; its own backward reuses the signs with accumulated offsets.
    fu, fd = _filter([8], 19), _filter([8], 20)
    outs = []
    for impl in ('cuda', 'ref'):
        x = _randn([2, 4, 11, 11], torch.float32, seed=21).requires_grad_(True)
        b = _randn([4], torch.float32, seed=22).requires_grad_(True)
        y = flrelu_mod.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[5, 4, 5, 4], clamp=0.8, impl=impl)
        (dx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        ddx, ddb = torch.autograd.grad(dx.square().sum(), [x, b], allow_unused=True)
        outs.append((y, dx, ddx if ddx is not None else torch.zeros_like(x)))
    for name, got, ref in zip(('y', 'dx', 'ddx'), outs[0], outs[1]):
        _assert_close(f'filtered_lrelu double {name}', got, ref, torch.float32)

def test_cuda_filtered_lrelu_signs_equal_exactly_in_fp32_away_from_ties(plugin):
    # Signs can only differ where the pre-activation is within rounding of 0 or +-clamp; with values
    # scaled away from those, fp32 signs must be bit-identical.
    fu, fd = _filter([12], 23), _filter([8], 24)
    x = _randn([2, 8, 16, 16], torch.float32, seed=25, scale=3)
    b = torch.zeros([8], device='cuda')
    empty_u8 = torch.empty([0], dtype=torch.uint8, device='cuda')
    args = (x, fu, fd, b, empty_u8, 4, 2, 9, 8, 9, 8, 0, 0, math.sqrt(2), 0.2, 2.0, False, True)
    _, s_p, rc = plugin.filtered_lrelu(*args)
    _, s_r, _ = flrelu_mod.ref_kernel.filtered_lrelu(*args)
    assert rc == 0
    t = upfirdn2d_mod.ref_kernel.upfirdn2d(x.double(), torch.outer(fu, fu), 4, 4, 1, 1, 9, 8, 9, 8, False, 16.0)
    a = torch.where(t < 0, t * 0.2, t) * math.sqrt(2)
    ties = (t.abs() < 1e-4) | ((a.abs() - 2.0).abs() < 1e-4) # Beyond fp32 + fast-math rounding of |t| <= ~20.
    codes_p, codes_r = cuda_kernels.unpack_signs(s_p), cuda_kernels.unpack_signs(s_r)
    w = t.shape[3]
    differ = codes_p[..., :w] != codes_r[..., :w]
    assert not bool((differ & ~ties).any())
    assert bool((codes_p[..., w:] == 0).all())

def test_cuda_filtered_lrelu_generic_path(plugin):
    # fp64 and filters too large for shared memory return -1; the op then runs the generic path.
    empty_u8 = torch.empty([0], dtype=torch.uint8, device='cuda')
    x64 = _randn([1, 2, 9, 9], torch.float64, seed=26)
    fu, fd = _filter([8], 27), _filter([8], 28)
    b64 = torch.zeros([2], dtype=torch.float64, device='cuda')
    assert plugin.filtered_lrelu(x64, fu, fd, b64, empty_u8, 2, 2, 5, 4, 5, 4, 0, 0, 1.4, 0.2, -1.0, False, True)[2] == -1
    x = _randn([1, 2, 40, 40], torch.float32, seed=29)
    big = _filter([96, 96], 30)
    b = torch.zeros([2], device='cuda')
    assert plugin.filtered_lrelu(x, big, big, b, empty_u8, 1, 1, 95, 95, 95, 95, 0, 0, 1.4, 0.2, -1.0, False, True)[2] == -1
    for xx, bb in ((x64, b64), (x, b)):
        f = fu if xx.dtype == torch.float64 else big
        pad = [5, 4, 5, 4] if xx.dtype == torch.float64 else [95] * 4
        up = 2 if xx.dtype == torch.float64 else 1
        ys = [flrelu_mod.filtered_lrelu(xx, f, f, bb, up=up, down=up, padding=pad, impl=impl) for impl in ('cuda', 'ref')]
        _assert_close(f'filtered_lrelu generic {xx.dtype}', ys[0], ys[1], xx.dtype)

def test_cuda_filtered_lrelu_act_matches_reference(plugin):
    empty_u8 = torch.empty([0], dtype=torch.uint8, device='cuda')
    for dtype in (torch.float32, torch.float16, torch.float64):
        x = _randn([2, 3, 7, 37], dtype, seed=31, scale=3)
        xp, xr = x.clone(), x.clone()
        sp = plugin.filtered_lrelu_act_(xp, empty_u8, 0, 0, 1.3, 0.2, 1.0, True)
        sr = flrelu_mod.ref_kernel.filtered_lrelu_act_(xr, empty_u8, 0, 0, 1.3, 0.2, 1.0, True)
        _assert_close('filtered_lrelu_act_ write', xp, xr, dtype)
        assert _sign_mismatch(sp, sr) <= cuda_kernels.SELF_CHECK_SIGN_MISMATCH[dtype]
        g = _randn([2, 3, 6, 33], dtype, seed=32)
        gp, gr = g.clone(), g.clone()
        plugin.filtered_lrelu_act_(gp, sr, 3, -1, 1.3, 0.2, 1.0, False)
        flrelu_mod.ref_kernel.filtered_lrelu_act_(gr, sr, 3, -1, 1.3, 0.2, 1.0, False)
        _assert_close('filtered_lrelu_act_ read', gp, gr, dtype)

#----------------------------------------------------------------------------
# The op path: impl='cuda' picks the plugin without any self-check warning.

def test_cuda_ops_select_the_plugin_without_warnings(plugin):
    x = _randn([2, 4, 16, 16], torch.float32, seed=33)
    f = _filter([12], 34)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        upfirdn2d_mod.upsample2d(x, f, up=2, impl='cuda')
        bias_act_mod.bias_act(x, torch.zeros([4], device='cuda'), act='lrelu', impl='cuda')
        flrelu_mod.filtered_lrelu(x, f, f, torch.zeros([4], device='cuda'), up=2, down=2, padding=[11, 10, 11, 10],
                                  clamp=256, impl='cuda')
    # The configuration upsample2d used above (separable 12-tap filter, up=2): the plugin passed its check.
    ref = upfirdn2d_mod.ref_kernel
    config = dict(upx=2, upy=2, downx=1, downy=1, padx0=6, padx1=5, pady0=6, pady1=5, flip=False, gain=4.0, fh=1, fw=12)
    kernel = cuda_kernels.select_kernel('upfirdn2d', config, ref, x.device, torch.float32)
    assert kernel is not ref and getattr(kernel, '__name__', '') == plugin.__name__

#----------------------------------------------------------------------------
