# filtered_lrelu: the reference against the zero-insertion composition of its definition, properties,
# the sign tensor of the reference kernel, and argument validation.

import numpy as np
import pytest
import torch

from bench.zero_insertion import filtered_lrelu_zero_insertion
from tests.support.cpu_plugin import backend # pylint: disable=unused-import (a fixture)
from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

def _lowpass(taps):
    return upfirdn2d.setup_filter(np.hanning(taps + 2)[1:-1], separable=True)

# (up, down, padding, fu taps or 2-D shape, fd taps or 2-D shape, clamp): StyleGAN3-like layers and odd ones.
CASES = [
    (2, 2, [9, 8, 9, 8], 12, 12, None),      # Non-critical layer (L0 at 256).
    (4, 2, [-6, -9, -6, -9], 24, 12, 256.0), # Layer that doubles the resolution.
    (2, 2, [-11, -12, -11, -12], 12, 12, 0.5), # Last critical layer: crops.
    (1, 1, [0, 0, 0, 0], None, None, 1.0),   # ToRGB-like: no filters.
    (3, 1, [2, 1, 3, 0], 5, (3, 3), 0.8),     # 2-D down filter, odd factor.
    (1, 2, [1, 2, 0, 3], (2, 3), 4, None),
]

def _case_filters(fu_spec, fd_spec, gen):
    def make(spec):
        if spec is None:
            return None
        if isinstance(spec, tuple):
            return torch.rand(spec, generator=gen) + 0.1
        return _lowpass(spec)
    return make(fu_spec), make(fd_spec)

def _input_size(up, down, padding, fu, fd, out=5):
    # Smallest input size giving an output of at least `out` samples per axis.
    fw = 1 if fu is None else fu.shape[-1]
    gw = 1 if fd is None else fd.shape[-1]
    n = 1
    while (n * up + padding[0] + padding[1] - (fw - 1) - (gw - 1) + down - 1) // down < out:
        n += 1
    return n

#----------------------------------------------------------------------------

@pytest.mark.parametrize('case', range(len(CASES)))
def test_filtered_lrelu_ref_matches_zero_insertion_definition(case):
    up, down, padding, fu_spec, fd_spec, clamp = CASES[case]
    gen = torch.Generator().manual_seed(case)
    fu, fd = _case_filters(fu_spec, fd_spec, gen)
    n = _input_size(up, down, padding, fu, fd)
    x = torch.randn([2, 3, n, n + 1], generator=gen, dtype=torch.float64) * 2
    b = torch.randn([3], generator=gen, dtype=torch.float64)
    for flip in (False, True):
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up, down, padding, gain=1.3, slope=0.15, clamp=clamp, flip_filter=flip, impl='ref')
        y_ref = filtered_lrelu_zero_insertion(x, fu, fd, b, up, down, padding, 1.3, 0.15, clamp, flip)
        assert y.shape == y_ref.shape
        assert (y - y_ref).abs().max().item() <= 1e-12 * max(1.0, y_ref.abs().max().item())

def test_filtered_lrelu_with_identity_filters_equals_bias_act_lrelu():
    x = torch.randn([2, 4, 6, 7], dtype=torch.float64) * 3
    b = torch.randn([4], dtype=torch.float64)
    y = filtered_lrelu.filtered_lrelu(x, None, None, b, gain=1.7, slope=0.3, clamp=2.0, impl='ref')
    y_ba = bias_act.bias_act(x, b, act='lrelu', alpha=0.3, gain=1.7, clamp=2.0, impl='ref')
    assert torch.allclose(y, y_ba, rtol=0, atol=1e-14)

@pytest.mark.parametrize('h,w,up,down,padding,fu_taps,fd_taps', [
    (36, 36, 2, 2, [9, 8, 9, 8], 12, 12), (36, 36, 4, 2, [-6, -9, -6, -9], 24, 12),
    (9, 7, 3, 2, [1, 0, 2, 3], 4, 5), (5, 6, 1, 3, [2, 2, 0, 1], 3, 2),
])
def test_filtered_lrelu_output_size_closed_form(h, w, up, down, padding, fu_taps, fd_taps):
    x = torch.randn([1, 1, h, w])
    y = filtered_lrelu.filtered_lrelu(x, torch.ones([fu_taps]) / fu_taps, torch.ones([fd_taps]) / fd_taps, up=up, down=down, padding=padding, impl='ref')
    px0, px1, py0, py1 = padding
    assert y.shape[3] == (w * up + px0 + px1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down
    assert y.shape[2] == (h * up + py0 + py1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down

def test_filtered_lrelu_stylegan3_layer_shapes():
    # stylegan3-t 256 L3 (36 -> 52) and L13 (276 -> 256, scaled down here to 40 -> 20).
    fu, fd = _lowpass(24), _lowpass(12)
    y = filtered_lrelu.filtered_lrelu(torch.randn([1, 2, 38, 38]), fu, fd, up=4, down=2, padding=[-6, -9, -6, -9], impl='ref')
    assert y.shape[2:] == (52, 52)
    y = filtered_lrelu.filtered_lrelu(torch.randn([1, 2, 42, 42]), _lowpass(12), fd, up=2, down=2, padding=[-11, -12, -11, -12], impl='ref')
    assert y.shape[2:] == (20, 20)

def test_filtered_lrelu_clamp_bounds_and_no_grad_path_equals_grad_path():
    fu, fd = _lowpass(6), _lowpass(6)
    x = torch.randn([1, 2, 9, 9], dtype=torch.float64) * 10
    with torch.no_grad():
        y0 = filtered_lrelu.filtered_lrelu(x, fu, torch.ones([1, 1]), up=2, padding=3, clamp=0.75, impl='ref')
    y1 = filtered_lrelu.filtered_lrelu(x.requires_grad_(True), fu, torch.ones([1, 1]), up=2, padding=3, clamp=0.75, impl='ref')
    assert y0.abs().max().item() <= 0.75 and y0.abs().max().item() == 0.75
    # The no-grad call takes the blocked path (other tiles, so another summation order).
    assert (y0 - y1.detach()).abs().max().item() <= 1e-14

#----------------------------------------------------------------------------
# The sign tensor of the reference kernel (format in docs/kernels.md).

def test_pack_unpack_signs_layout():
    codes = torch.tensor([[[[0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 0, 0, 2, 0, 0, 3, 1]]]], dtype=torch.uint8)
    packed = filtered_lrelu.pack_signs(codes)
    assert packed.dtype == torch.uint8 and packed.shape == (1, 1, 1, 8) # 17 elements -> 32 -> 8 bytes.
    assert packed[0, 0, 0, 0].item() == 0 | (1 << 2) | (2 << 4) | (3 << 6) # Element 4i+j in bits 2j, 2j+1.
    assert packed[0, 0, 0, 4].item() == 1 and packed[0, 0, 0, 5:].sum().item() == 0 # Padding holds code 0.
    assert torch.equal(filtered_lrelu.unpack_signs(packed)[..., :17], codes)

def test_reference_kernel_sign_codes_decode_to_the_activation_regions():
    gain, slope, clamp = 2.0, 0.25, 1.0
    t = torch.tensor([[[[0.3, -0.3, 0.6, -3.0, 0.0, -0.1, 5.0, 0.5]]]], dtype=torch.float64)
    x = t.clone()
    so = filtered_lrelu.ref_kernel.filtered_lrelu_act_(x, torch.empty([0], dtype=torch.uint8), 0, 0, gain, slope, clamp, True)
    codes = filtered_lrelu.unpack_signs(so)[0, 0, 0, :8].tolist()
    # 0.3 -> 0.6 pass; -0.3 -> -0.15 negative; 0.6 -> 1.2 > 1 clamped +; -3 -> -1.5 clamped -; 0 -> code 0;
    # 5 -> 10 clamped +; 0.5 -> 1.0 exactly at the clamp: not clamped (strict).
    assert codes == [0, 1, 2, 3, 0, 1, 2, 0]
    assert torch.allclose(x, torch.tensor([[[[0.6, -0.15, 1.0, -1.0, 0.0, -0.05, 1.0, 1.0]]]], dtype=torch.float64))
    # Read mode multiplies by gain * derivative(code), shifted by (sx, sy); outside reads code 2 (0).
    g = torch.ones([1, 1, 1, 8], dtype=torch.float64)
    filtered_lrelu.ref_kernel.filtered_lrelu_act_(g, so, 1, 0, gain, slope, clamp, False)
    assert g[0, 0, 0].tolist() == [gain * slope, 0, 0, gain, gain * slope, 0, gain, gain] # Last: padding, code 0.
    g = torch.ones([1, 1, 2, 3], dtype=torch.float64)
    filtered_lrelu.ref_kernel.filtered_lrelu_act_(g, so, -1, 0, gain, slope, clamp, False)
    assert g[0, 0].tolist() == [[0, gain, gain * slope], [0, 0, 0]]

def test_reference_kernel_signs_cover_the_whole_intermediate_tensor():
    fu, fd = _lowpass(12), _lowpass(12)
    x = torch.randn([2, 3, 10, 11], dtype=torch.float64)
    b = torch.randn([3], dtype=torch.float64)
    args = (x, fu, fd, b, torch.empty([0], dtype=torch.uint8), 2, 2, 9, 8, 7, 6, 0, 0, 1.4, 0.2, 0.3, False, True)
    y, so, rc = filtered_lrelu.ref_kernel.filtered_lrelu(*args)
    t = upfirdn2d.upfirdn2d(x + b[:, None, None], fu, up=2, padding=[9, 8, 7, 6], gain=4, impl='ref')
    assert rc == 0 and so.shape == (2, 3, t.shape[2], (t.shape[3] + 15) // 16 * 4)
    a = torch.where(t < 0, 0.2 * t, t) * 1.4
    expected = torch.where(a.abs() > 0.3, torch.where(a > 0, 2, 3), (t < 0).long())
    codes = filtered_lrelu.unpack_signs(so)
    assert torch.equal(codes[..., :t.shape[3]].long(), expected)
    assert codes[..., t.shape[3]:].sum() == 0
    y_ref = filtered_lrelu_zero_insertion(x, fu, fd, b, 2, 2, [9, 8, 7, 6], 1.4, 0.2, 0.3)
    assert torch.allclose(y, y_ref, rtol=0, atol=1e-12)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs,name', [
    (dict(x=torch.randn([3, 8, 8])), 'x'),
    (dict(fu=torch.ones([4], dtype=torch.int32)), 'fu'),
    (dict(fd=torch.ones([1, 2, 2])), 'fd'),
    (dict(b=torch.zeros([2])), 'b'),
    (dict(up=0), 'up'),
    (dict(down=-1), 'down'),
    (dict(padding=-9), 'padding'),
    (dict(clamp=-2), 'clamp'),
    (dict(impl='fast'), 'impl'),
])
def test_filtered_lrelu_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(x=torch.randn([1, 3, 8, 8]), fu=torch.ones([4]) / 4, fd=torch.ones([4]) / 4, up=2, down=2, padding=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        filtered_lrelu.filtered_lrelu(**args)

def test_filtered_lrelu_impl_cuda_on_cpu_equals_ref(backend):
    # Without the CPU plugin, impl='cuda' on CPU tensors is the reference path itself; with it, the
    # compiled kernel computes the same sums in another order.
    fu, fd = _lowpass(12), _lowpass(12)
    x = torch.randn([2, 3, 9, 9])
    b = torch.randn([3])
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], clamp=0.5)
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='cuda', **kw)
    y_ref = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='ref', **kw)
    if backend == 'blocked':
        assert torch.equal(y, y_ref)
    else:
        assert (y - y_ref).abs().max().item() <= 1e-6 * y_ref.abs().max().item()

#----------------------------------------------------------------------------

def test_filtered_lrelu_long_axes_match_zero_insertion():
    # 150 -> 300 -> 148 (stylegan3-t L8 geometry at one channel): tiled passes and the pre-padded height pass.
    fu, fd = _lowpass(12), _lowpass(12)
    x = torch.randn([1, 1, 150, 141], dtype=torch.float64)
    b = torch.randn([1], dtype=torch.float64)
    for up, padding, fu_ in ((2, [9, 8, 9, 8], fu), (4, [-6, -9, -5, -10], _lowpass(24))):
        y = filtered_lrelu.filtered_lrelu(x, fu_, fd, b, up, 2, padding, clamp=0.9, impl='ref')
        y_ref = filtered_lrelu_zero_insertion(x, fu_, fd, b, up, 2, padding, np.sqrt(2), 0.2, 0.9)
        assert y.shape == y_ref.shape and min(y.shape[2:]) > 128
        assert (y - y_ref).abs().max().item() <= 1e-12

#----------------------------------------------------------------------------
# The blocked inference path (docs/ops.md): blocks of planes, height passes reading strided windows.

BLOCKED_CASES = [ # (up, down, padding, fu taps, fd taps, input [h, w]): several tiles per axis.
    (2, 2, [9, 8, 9, 8], 12, 12, [40, 37]),           # Non-critical stylegan3 layer.
    (4, 2, [-6, -9, -6, -9], 24, 12, [21, 26]),       # Resolution-doubling layer.
    (2, 2, [-11, -12, -11, -12], 12, 12, [45, 41]),   # Last critical layer: crops.
    (3, 1, [2, 1, 3, 0], 5, 3, [19, 23]),             # Odd factor, odd taps.
    (1, 2, [1, 2, 0, 3], 4, 7, [70, 66]),
    (1, 3, [0, 0, 5, 1], 1, 6, [61, 64]),             # One-tap up filter, down 3.
    (2, 1, [-3, 4, 6, -2], 8, 1, [33, 30]),           # Asymmetric and negative padding.
]

def _blocked_inputs(case, dtype=torch.float64):
    up, down, padding, ku, kd, (h, w) = BLOCKED_CASES[case]
    gen = torch.Generator().manual_seed(100 + case)
    fu = torch.rand([ku], generator=gen, dtype=dtype) + 0.1 # Asymmetric taps: flipping matters.
    fd = torch.rand([kd], generator=gen, dtype=dtype) + 0.1
    x = torch.randn([2, 3, h, w], generator=gen, dtype=dtype) * 2
    b = torch.randn([3], generator=gen, dtype=dtype)
    return x, fu, fd, b, up, down, padding

@pytest.mark.parametrize('case', range(len(BLOCKED_CASES)))
@pytest.mark.parametrize('block_planes', [1, 4, 6]) # Of 6 planes: one per block, a partial last block, one block.
def test_blocked_path_matches_zero_insertion_definition(case, block_planes):
    x, fu, fd, b, up, down, padding = _blocked_inputs(case)
    for flip, clamp, slope, gain in ((False, 0.9, 0.2, np.sqrt(2)), (True, None, -0.3, 0.7)):
        y = filtered_lrelu._filtered_lrelu_blocked(x, fu, fd, b, up, down, *padding, gain, slope, -1.0 if clamp is None else clamp,
                                                   flip, block_planes=block_planes)
        y_ref = filtered_lrelu_zero_insertion(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip)
        assert y is not None and y.shape == y_ref.shape
        assert (y - y_ref).abs().max().item() <= 1e-12 * max(1.0, y_ref.abs().max().item())

@pytest.mark.parametrize('backend', ['blocked'], indirect=True)
def test_blocked_path_is_the_inference_path_and_matches_the_grad_path(backend, monkeypatch):
    x, fu, fd, b, up, down, padding = _blocked_inputs(1, torch.float32)
    taken = []
    blocked = filtered_lrelu._filtered_lrelu_blocked
    monkeypatch.setattr(filtered_lrelu, '_filtered_lrelu_blocked', lambda *a, **k: taken.append(1) or blocked(*a, **k))
    kw = dict(up=up, down=down, padding=padding, clamp=1.5)
    with torch.no_grad():
        y0 = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    assert taken == [1]
    y1 = filtered_lrelu.filtered_lrelu(x.clone().requires_grad_(True), fu, fd, b, **kw) # Autograd: unblocked.
    assert taken == [1]
    assert (y0 - y1.detach()).abs().max().item() <= 1e-5 * y1.abs().max().item()

@pytest.mark.parametrize('backend', ['blocked'], indirect=True)
def test_blocked_path_gives_up_on_non_finite_values_and_keeps_planes_apart(backend):
    # A NaN in one plane must not reach the other planes, although the blocked path reads past the end
    # of each plane: it returns None, and the public op reruns the unblocked path.
    x, fu, fd, b, up, down, padding = _blocked_inputs(0)
    clean = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up, down, padding)
    x[1, 1, 20, 20] = float('nan')
    args = (x, fu, fd, b, up, down, *padding, np.sqrt(2), 0.2, -1.0, False)
    assert filtered_lrelu._filtered_lrelu_blocked(*args, block_planes=6) is None
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up, down, padding)
    nan = torch.isnan(y)
    assert nan[1, 1].any()
    assert not nan[0].any() and not nan[1, 0].any() and not nan[1, 2].any()
    # The unblocked rerun computes the same sums in another order: equal to rounding.
    assert torch.allclose(y[0], clean[0], rtol=1e-12, atol=1e-9) and torch.allclose(y[1, 2], clean[1, 2], rtol=1e-12, atol=1e-9)

@pytest.mark.parametrize('backend', ['blocked'], indirect=True)
def test_blocked_path_ignores_non_finite_values_that_padding_crops_away(backend):
    x, fu, fd, b, up, down, padding = _blocked_inputs(2) # Crops about six input rows and columns per side.
    clean = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up, down, padding)
    x[0, 0, 0, 0] = float('inf')
    args = (x, fu, fd, b, up, down, *padding, np.sqrt(2), 0.2, -1.0, False)
    y = filtered_lrelu._filtered_lrelu_blocked(*args)
    assert y is not None and torch.equal(y, clean)
