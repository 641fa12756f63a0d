# Our CUDA kernel bodies, run on the CPU through the emulation library (tests/ops/emulated_kernels.py),
# against the reference kernels of the op modules; then the self-check driven with that kernel as a
# correct plugin stand-in and with deliberately wrong ones.

import math
import warnings

import pytest
import torch

from torch_utils.ops import bias_act as bias_act_mod
from torch_utils.ops import cuda_kernels
from torch_utils.ops import filtered_lrelu as flrelu_mod
from torch_utils.ops import upfirdn2d as upfirdn2d_mod

from .emulated_kernels import EmulatedKernel, compile_library

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def emu_lib(tmp_path_factory):
    path = compile_library(str(tmp_path_factory.mktemp('emu')))
    if path is None:
        pytest.skip('no C++ compiler (g++) on this machine')
    return path

@pytest.fixture
def emu(emu_lib):
    return EmulatedKernel(emu_lib)

def _randn(shape, dtype, seed, layout='contiguous'):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    if layout == 'channels_last':
        return x.contiguous(memory_format=torch.channels_last)
    if layout == 'sliced': # Non-contiguous: every other column of a wider tensor.
        wide = torch.randn(shape[:-1] + [shape[-1] * 2], generator=g, dtype=torch.float64).to(dtype)
        return wide[..., ::2]
    return x

def _filter(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64).float() + 0.1

def _assert_close(got, ref, rtol):
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = (got.double() - ref.double()).abs().max().item()
    tol = rtol * max(ref.double().abs().max().item(), 1.0)
    assert err <= tol, f'max abs error {err:.3g} > {tol:.3g}'

_RTOL = {torch.float64: 1e-12, torch.float32: 2e-6}

#----------------------------------------------------------------------------
# upfirdn2d

@pytest.mark.parametrize('up,down,pad,fshape,flip', [
    ((1, 1), (1, 1), (0, 0, 0, 0), (3, 3), False),
    ((2, 2), (1, 1), (2, 1, 2, 1), (4, 4), False),
    ((1, 1), (2, 2), (1, 1, 1, 1), (4, 4), True),
    ((4, 4), (2, 2), (5, 4, 5, 4), (8, 8), False),
    ((2, 1), (1, 2), (-1, 3, 2, -2), (5, 3), True),  # asymmetric axes, crop
    ((3, 3), (2, 2), (1, 0, 0, 1), (1, 6), False),   # separable row pass
    ((1, 2), (1, 1), (0, 0, 3, 2), (6, 1), False),   # separable column pass
])
@pytest.mark.parametrize('layout', ['contiguous', 'channels_last', 'sliced'])
def test_emulated_upfirdn2d_matches_reference(emu, up, down, pad, fshape, flip, layout):
    for dtype in (torch.float64, torch.float32):
        x = _randn([2, 3, 7, 9], dtype, seed=1, layout=layout)
        f = _filter(list(fshape), seed=2)
        args = (*up, *down, *pad, flip, 1.7)
        _assert_close(emu.upfirdn2d(x, f, *args), upfirdn2d_mod.ref_kernel.upfirdn2d(x, f, *args), _RTOL[dtype])

def test_emulated_upfirdn2d_keeps_channels_last_layout(emu):
    x = _randn([1, 5, 6, 6], torch.float32, seed=3, layout='channels_last')
    y = emu.upfirdn2d(x, _filter([2, 2], 4), 2, 2, 1, 1, 1, 0, 1, 0, False, 1.0)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()

#----------------------------------------------------------------------------
# bias_act: every activation, forward and both derivative modes, with and without clamp.

@pytest.mark.parametrize('act', list(bias_act_mod.activation_funcs))
@pytest.mark.parametrize('clamp', [-1.0, 0.7])
def test_emulated_bias_act_matches_reference(emu, act, clamp):
    spec = bias_act_mod.activation_funcs[act]
    ref = bias_act_mod.ref_kernel
    empty = torch.empty([0], dtype=torch.float64)
    for dim, shape in ((1, [2, 5, 3, 4]), (0, [6, 7]), (2, [2, 3, 4])):
        x = _randn(shape, torch.float64, seed=5) * 3
        b = _randn([shape[dim]], torch.float64, seed=6)
        alpha, gain = 0.25, float(spec.def_gain) # 0.25: exact in fp32 (the ref casts alpha via a float32 where())
        y_ref = ref.bias_act(x, b, empty, empty, empty, 0, dim, spec.cuda_idx, alpha, gain, clamp)
        _assert_close(emu.bias_act(x, b, empty, empty, empty, 0, dim, spec.cuda_idx, alpha, gain, clamp), y_ref, 1e-12)
        s = x + b.reshape([-1] + [1] * (len(shape) - dim - 1))
        g = _randn(shape, torch.float64, seed=7)
        h = _randn(shape, torch.float64, seed=8)
        for grad, dy in ((1, empty), (2, g)):
            args = (h if grad == 2 else g, empty, s, y_ref, dy, grad, dim, spec.cuda_idx, alpha, gain, clamp)
            _assert_close(emu.bias_act(*args), ref.bias_act(*args), 1e-12)

def test_emulated_bias_act_channels_last_bias_along_dim1(emu):
    x = _randn([2, 5, 3, 4], torch.float32, seed=9, layout='channels_last')
    b = _randn([5], torch.float32, seed=10)
    empty = torch.empty([0])
    got = emu.bias_act(x, b, empty, empty, empty, 0, 1, 3, 0.2, math.sqrt(2), -1.0)
    ref = bias_act_mod.ref_kernel.bias_act(x.contiguous(), b, empty, empty, empty, 0, 1, 3, 0.2, math.sqrt(2), -1.0)
    _assert_close(got, ref, 2e-6)

#----------------------------------------------------------------------------
# filtered_lrelu: fused tile kernel vs the reference kernel; signs must be identical in fp64.

_FLRELU_CASES = [
    # up, down, pad (px0, px1, py0, py1), fu shape, fd shape, clamp, flip
    (1, 1, (0, 0, 0, 0), [1, 1], [1, 1], -1.0, False),
    (2, 2, (5, 4, 5, 4), [8], [8], -1.0, False),          # separable 1-D filters
    (2, 1, (3, 2, 3, 2), [6, 6], [1, 1], 0.5, False),
    (1, 2, (1, 2, 2, 1), [1, 1], [5, 4], 0.5, True),
    (4, 2, (9, 8, 9, 8), [12], [8], 0.8, False),          # stylegan3-like up=4 / down=2
    (2, 4, (-1, 3, 2, 0), [4, 5], [8, 7], -1.0, True),    # crop, odd/asymmetric filters
    (2, 2, (4, 3, 4, 3), [6], [5, 5], 0.5, True),         # 1-D fu, 2-D fd
    (2, 2, (3, 3, 3, 3), [4, 4], [7], -1.0, False),       # 2-D fu, 1-D fd
]

def _flrelu_args(case, dtype, layout='contiguous', h=7, w=9):
    up, down, pad, fu_shape, fd_shape, clamp, flip = case
    x = _randn([2, 3, h, w], dtype, seed=11, layout=layout) * 2
    fu, fd = _filter(fu_shape, 12), _filter(fd_shape, 13)
    fu, fd = fu / fu.sum(), fd / fd.sum()
    b = _randn([3], dtype, seed=14)
    empty_u8 = torch.empty([0], dtype=torch.uint8)
    return (x, fu, fd, b, empty_u8, up, down, *pad, 0, 0, math.sqrt(2), 0.2, clamp, flip, True)

@pytest.mark.parametrize('case', _FLRELU_CASES)
@pytest.mark.parametrize('smem_limit', [48 * 1024, 1200])  # 1200 bytes forces small tiles
def test_emulated_filtered_lrelu_matches_reference(emu_lib, case, smem_limit):
    emu = EmulatedKernel(emu_lib, smem_limit=smem_limit, threads=3)
    args = _flrelu_args(case, torch.float32)
    y_ref, s_ref, rc_ref = flrelu_mod.ref_kernel.filtered_lrelu(*args)
    y, s, rc = emu.filtered_lrelu(*args)
    if rc == -1:
        assert smem_limit < 48 * 1024, 'the default shared memory must fit every case here'
        return
    assert rc == rc_ref == 0
    _assert_close(y, y_ref, 2e-6)
    assert s.shape == s_ref.shape and s.dtype == torch.uint8
    mismatch = (flrelu_mod.unpack_signs(s) != flrelu_mod.unpack_signs(s_ref)).double().mean().item()
    assert mismatch <= 1e-3
    # Every sign byte written by exactly one tile (no races on the GPU), wherever the tiles fall.
    assert emu.last_write_count is not None and bool((emu.last_write_count == 1).all())

def test_emulated_filtered_lrelu_small_tiles_cover_many_tile_borders(emu_lib):
    emu = EmulatedKernel(emu_lib, smem_limit=3000, threads=5) # 4 x 4 output tiles fit, 8 x 8 do not
    case = (2, 2, (5, 4, 5, 4), [8], [8], 0.5, False)
    args = _flrelu_args(case, torch.float64, h=21, w=19)
    args = (args[0].float(), *args[1:3], args[3].float(), *args[4:])
    y_ref, s_ref, _ = flrelu_mod.ref_kernel.filtered_lrelu(*args)
    y, s, rc = emu.filtered_lrelu(*args)
    assert rc == 0 and emu.last_plan[0] == 4 and emu.last_plan[2] * emu.last_plan[3] > 4
    _assert_close(y, y_ref, 2e-6)
    assert (flrelu_mod.unpack_signs(s) != flrelu_mod.unpack_signs(s_ref)).double().mean().item() <= 1e-3
    assert bool((emu.last_write_count == 1).all())

@pytest.mark.parametrize('layout', ['channels_last', 'sliced'])
def test_emulated_filtered_lrelu_strided_inputs(emu, layout):
    case = (2, 2, (5, 4, 5, 4), [8], [8], -1.0, False)
    args = _flrelu_args(case, torch.float32, layout=layout)
    y_ref, s_ref, _ = flrelu_mod.ref_kernel.filtered_lrelu(*args)
    y, s, rc = emu.filtered_lrelu(*args)
    assert rc == 0
    _assert_close(y, y_ref, 2e-6)
    assert (flrelu_mod.unpack_signs(s) != flrelu_mod.unpack_signs(s_ref)).double().mean().item() <= 1e-3

@pytest.mark.parametrize('case', _FLRELU_CASES[1:5])
def test_emulated_filtered_lrelu_read_mode_matches_reference(emu, case):
    # The backward call of docs/kernels.md: read the forward's signs at offsets (sx, sy).
    args = _flrelu_args(case, torch.float32)
    x, fu, fd, b, _, up, down, px0, px1, py0, py1 = args[:11]
    y, s, _ = flrelu_mod.ref_kernel.filtered_lrelu(*args)
    fuw, fuh = fu.shape[-1], fu.shape[0]
    fdw, fdh = fd.shape[-1], fd.shape[0]
    h, w = x.shape[2:]
    oh, ow = y.shape[2:]
    bargs = (_randn(list(y.shape), torch.float32, seed=15), fd, fu, torch.empty([0]), s, down, up,
             fuw + fdw - 2 - px0, w * up - ow * down + px0 - up + 1,
             fuh + fdh - 2 - py0, h * up - oh * down + py0 - up + 1,
             px0 - (fuw - 1), py0 - (fuh - 1), math.sqrt(2) * up * up / (down * down), 0.2, -1.0, not args[16], False)
    dx_ref, _, _ = flrelu_mod.ref_kernel.filtered_lrelu(*bargs)
    dx, so, rc = emu.filtered_lrelu(*bargs)
    assert rc == 0 and so.numel() == 0
    assert dx.shape == x.shape
    _assert_close(dx, dx_ref, 2e-6)

def test_emulated_filtered_lrelu_declines_float64(emu):
    args = _flrelu_args(_FLRELU_CASES[1], torch.float64)
    assert emu.filtered_lrelu(*args)[2] == -1

@pytest.mark.parametrize('clamp', [-1.0, 0.5])
def test_emulated_filtered_lrelu_act_matches_reference(emu, clamp):
    ref = flrelu_mod.ref_kernel
    empty_u8 = torch.empty([0], dtype=torch.uint8)
    x = _randn([2, 3, 5, 21], torch.float64, seed=16)
    x_ref, x_emu = x.clone(), x.clone()
    s_ref = ref.filtered_lrelu_act_(x_ref, empty_u8, 0, 0, 1.3, 0.2, clamp, True)
    s_emu = emu.filtered_lrelu_act_(x_emu, empty_u8, 0, 0, 1.3, 0.2, clamp, True)
    _assert_close(x_emu, x_ref, 1e-12)
    assert torch.equal(s_emu, s_ref)
    for sx, sy in ((0, 0), (3, -1), (-2, 2)):
        g = _randn([2, 3, 4, 19], torch.float64, seed=17)
        g_ref, g_emu = g.clone(), g.clone()
        ref.filtered_lrelu_act_(g_ref, s_ref, sx, sy, 1.3, 0.2, clamp, False)
        emu.filtered_lrelu_act_(g_emu, s_ref, sx, sy, 1.3, 0.2, clamp, False)
        _assert_close(g_emu, g_ref, 1e-12)

#----------------------------------------------------------------------------
# The self-check and the autograd Functions with the emulated kernel as the plugin.

_CONFIGS = [
    ('upfirdn2d', dict(upx=2, upy=2, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1, flip=False, gain=4.0, fh=4, fw=4),
     upfirdn2d_mod.ref_kernel),
    ('bias_act', dict(dim=1, act=3, alpha=0.2, gain=math.sqrt(2), clamp=256.0), bias_act_mod.ref_kernel),
    ('bias_act', dict(dim=1, act=9, alpha=0.0, gain=math.sqrt(2), clamp=-1.0), bias_act_mod.ref_kernel),
    ('filtered_lrelu', dict(up=2, down=2, px0=5, px1=4, py0=5, py1=4, gain=math.sqrt(2), slope=0.2, clamp=0.5,
                            flip_filter=False, fu_shape=[8], fd_shape=[8]), flrelu_mod.ref_kernel),
]

@pytest.mark.parametrize('op,config,ref', _CONFIGS, ids=lambda v: v if isinstance(v, str) else '')
def test_self_check_accepts_the_emulated_kernels(emu, op, config, ref):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert cuda_kernels.self_check(op, config, emu, ref, torch.device('cpu'), torch.float32)
        with cuda_kernels.testing_hooks(plugin_loader=lambda: emu, device_check=lambda d: True):
            assert cuda_kernels.select_kernel(op, config, ref, 'cpu', torch.float32) is emu

def test_self_check_is_immune_to_the_callers_autocast_and_rng(emu):
    # Called from inside a mixed-precision forward: the reference must still run in float32, and the
    # check must not consume the global RNG (training reproducibility).
    op, config, ref = _CONFIGS[0]
    torch.manual_seed(123)
    expected = torch.rand([3])
    torch.manual_seed(123)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16), warnings.catch_warnings():
        warnings.simplefilter('error')
        assert cuda_kernels.self_check(op, config, emu, ref, torch.device('cpu'), torch.float32)
    assert torch.equal(torch.rand([3]), expected)

class _OffByOneSign(EmulatedKernel):
    # A plausible packing bug: codes written for element w land on element w + 1.
    def filtered_lrelu(self, *args):
        y, s, rc = super().filtered_lrelu(*args)
        if s.numel():
            s = ((s.to(torch.int32) << 2) & 0xFF).to(torch.uint8)
        return y, s, rc

def test_self_check_rejects_shifted_sign_packing(emu_lib):
    bad = _OffByOneSign(emu_lib)
    op, config, ref = _CONFIGS[3]
    with pytest.warns(RuntimeWarning, match=r'sign codes differ'):
        assert not cuda_kernels.self_check(op, config, bad, ref, torch.device('cpu'), torch.float32)

def test_upfirdn2d_function_gradients_with_emulated_kernel(emu):
    # The op's hand-written backward, run with our kernel body instead of the reference kernel.
    fn = upfirdn2d_mod._upfirdn2d_function(2, 2, 1, 1, 2, 1, 2, 1, False, 4.0, emu)
    x = _randn([1, 2, 5, 5], torch.float64, seed=18).requires_grad_(True)
    f = _filter([4, 4], 19)
    assert torch.autograd.gradcheck(lambda t: fn.apply(t, f), [x], fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda t: fn.apply(t, f), [x], fast_mode=True)

def test_filtered_lrelu_function_backward_with_emulated_kernel_matches_reference(emu):
    # fp32 fused kernel: forward, signs and the read-mode backward vs the reference kernel's Function.
    args = dict(up=2, down=2, px0=5, px1=4, py0=5, py1=4, gain=math.sqrt(2), slope=0.2, clamp=0.5, flip=False)
    fu, fd = _filter([8], 20), _filter([8], 21)
    fu, fd = fu / fu.sum(), fd / fd.sum()
    outs = []
    for kernel in (emu, flrelu_mod.ref_kernel):
        fn = flrelu_mod._filtered_lrelu_function(**args, kernel=kernel)
        x = _randn([2, 3, 7, 9], torch.float32, seed=22).requires_grad_(True)
        b = _randn([3], torch.float32, seed=23).requires_grad_(True)
        y = fn.apply(x, fu, fd, b, None, 0, 0)
        dy = _randn(list(y.shape), torch.float32, seed=24)
        dx, db = torch.autograd.grad(y, [x, b], dy)
        outs.append((y, dx, db))
    for got, ref in zip(outs[0], outs[1]):
        _assert_close(got, ref, 1e-5)

#----------------------------------------------------------------------------
