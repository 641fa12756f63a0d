# upfirdn2d: the reference against scipy.signal.upfirdn and the zero-insertion oracle, properties,
# wrappers and argument validation.

import numpy as np
import pytest
import torch

from bench.zero_insertion import upfirdn2d_zero_insertion
from tests.ops.oracles import scipy_upfirdn2d
from tests.support.cpu_plugin import backend # pylint: disable=unused-import (a fixture)
from torch_utils.ops import upfirdn2d

SYM4 = [1.0, 3.0, 3.0, 1.0]
ASYM5 = [0.1, 0.7, -0.3, 0.45, 0.2]

def _filter(taps):
    return torch.tensor(taps, dtype=torch.float32) # Filters are float32; oracles get the same rounded taps.

#----------------------------------------------------------------------------
# The reference vs an independent oracle (fp64, a few orders of magnitude above the measured 1e-15).

@pytest.mark.parametrize('up', [1, 2, 3])
@pytest.mark.parametrize('down', [1, 2])
@pytest.mark.parametrize('taps', [SYM4, ASYM5], ids=['sym4', 'asym5'])
@pytest.mark.parametrize('flip_filter', [False, True])
def test_upfirdn2d_ref_matches_scipy(up, down, taps, flip_filter):
    gen = torch.Generator().manual_seed(up * 10 + down)
    x = torch.randn([2, 3, 7, 9], generator=gen, dtype=torch.float64)
    p = len(taps) - 1
    padding = [p, p - (up - 1), p, p - (up - 1)]
    y = upfirdn2d.upfirdn2d(x, _filter(taps), up=up, down=down, padding=padding, flip_filter=flip_filter, impl='ref')
    y_scipy = scipy_upfirdn2d(x.numpy(), _filter(taps).double().numpy(), (up, up), (down, down), padding, flip_filter)
    assert y.shape == y_scipy.shape
    np.testing.assert_allclose(y.numpy(), y_scipy, rtol=0, atol=1e-12)

@pytest.mark.parametrize('up,down,padding', [
    ((2, 3), (1, 1), [-2, 1, 3, -1]),   # Crop on one side, pad on the other; different factors per axis.
    ((1, 1), (2, 1), [-1, -2, 0, 4]),
    ((3, 1), (1, 2), [5, 0, -3, 2]),
])
def test_upfirdn2d_ref_matches_scipy_negative_padding(up, down, padding):
    x = torch.randn([1, 2, 7, 9], dtype=torch.float64)
    y = upfirdn2d.upfirdn2d(x, _filter(ASYM5), up=list(up), down=list(down), padding=padding, gain=1.5, impl='ref')
    y_scipy = scipy_upfirdn2d(x.numpy(), _filter(ASYM5).double().numpy(), up, down, padding, gain=1.5)
    np.testing.assert_allclose(y.numpy(), y_scipy, rtol=0, atol=1e-12)

@pytest.mark.parametrize('up,down,padding,fshape', [
    ((2, 2), (1, 1), [2, 1, 2, 1], (4, 4)),
    ((3, 2), (2, 1), [1, 3, -1, 2], (3, 5)),
    ((1, 1), (2, 3), [0, 2, 1, -1], (5, 2)),
    ((1, 1), (1, 1), [0, 0, 0, 0], (1, 1)),
    ((2, 1), (2, 2), [1, 1, 0, 0], (1, 1)),
])
def test_upfirdn2d_2d_filter_matches_zero_insertion(up, down, padding, fshape):
    x = torch.randn([2, 3, 7, 9], dtype=torch.float64)
    f = torch.rand(fshape)
    for flip in (False, True):
        y = upfirdn2d.upfirdn2d(x, f, up=list(up), down=list(down), padding=padding, flip_filter=flip, gain=0.7, impl='ref')
        y_ref = upfirdn2d_zero_insertion(x, f, up, down, padding, flip, 0.7)
        assert y.shape == y_ref.shape
        assert (y - y_ref).abs().max().item() <= 1e-12

#----------------------------------------------------------------------------
# Properties.

def test_upfirdn2d_separable_equals_2d():
    x = torch.randn([2, 3, 12, 10])
    f1 = upfirdn2d.setup_filter([1, 2, 5, 2, 1, 1, 3, 1], separable=True)
    f2 = f1[:, None] * f1[None, :]
    for up, down in [(1, 1), (2, 1), (1, 2), (2, 2)]:
        y1 = upfirdn2d.upfirdn2d(x, f1, up=up, down=down, padding=3, impl='ref')
        y2 = upfirdn2d.upfirdn2d(x, f2, up=up, down=down, padding=3, impl='ref')
        assert (y1 - y2).abs().max().item() < 2e-6 # Measured 2.4e-7 (fp32, different summation order).

def test_upfirdn2d_dc_gain_after_up_then_down():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.ones([1, 1, 16, 16], dtype=torch.float64)
    y = upfirdn2d.downsample2d(upfirdn2d.upsample2d(x, f, impl='ref'), f, impl='ref')
    assert y.shape == x.shape
    interior = y[:, :, 3:-3, 3:-3]
    assert torch.equal(interior, torch.ones_like(interior)) # Exactly 1: dyadic taps.

def test_upfirdn2d_linearity_and_gain():
    f = _filter(ASYM5)
    x1, x2 = torch.randn([2, 1, 2, 6, 7], dtype=torch.float64)
    op = lambda x, gain=1: upfirdn2d.upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 3, 0], gain=gain, impl='ref')
    assert torch.allclose(op(2 * x1 - 3 * x2), 2 * op(x1) - 3 * op(x2), rtol=0, atol=1e-12)
    assert torch.allclose(op(x1, gain=-2.5), -2.5 * op(x1), rtol=0, atol=1e-12)

@pytest.mark.parametrize('h,w,up,down,padding,taps', [
    (7, 9, 2, 1, [1, 2, 3, 4], 4), (8, 8, 1, 2, [-1, 0, 2, 1], 5), (5, 6, 3, 2, [0, 0, 0, 0], 3),
])
def test_upfirdn2d_output_size_closed_form(h, w, up, down, padding, taps):
    x = torch.randn([1, 1, h, w])
    y = upfirdn2d.upfirdn2d(x, torch.ones([taps]), up=up, down=down, padding=padding, impl='ref')
    px0, px1, py0, py1 = padding
    assert y.shape[3] == (w * up + px0 + px1 - taps + down) // down
    assert y.shape[2] == (h * up + py0 + py1 - taps + down) // down

def test_upfirdn2d_none_filter_is_zero_insertion():
    x = torch.randn([1, 2, 3, 4])
    y = upfirdn2d.upfirdn2d(x, None, up=2, padding=[0, 0, 1, 0], impl='ref')
    assert y.shape == (1, 2, 7, 8)
    assert torch.equal(y[:, :, 1::2, ::2], x) and y[:, :, 0::2].abs().sum() == 0 and y[:, :, :, 1::2].abs().sum() == 0

#----------------------------------------------------------------------------
# Wrappers and setup_filter.

def test_wrappers_match_upfirdn2d_with_their_padding():
    x = torch.randn([1, 2, 8, 10], dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    # filter2d keeps the size, upsample2d doubles it with gain 4, downsample2d halves it.
    assert torch.allclose(upfirdn2d.filter2d(x, f, impl='ref'), upfirdn2d_zero_insertion(x, f, padding=(2, 1, 2, 1)), atol=1e-12)
    assert torch.allclose(upfirdn2d.upsample2d(x, f, impl='ref'), upfirdn2d_zero_insertion(x, f, (2, 2), (1, 1), (2, 1, 2, 1), gain=4), atol=1e-12)
    assert torch.allclose(upfirdn2d.downsample2d(x, f, impl='ref'), upfirdn2d_zero_insertion(x, f, (1, 1), (2, 2), (1, 1, 1, 1)), atol=1e-12)
    assert upfirdn2d.upsample2d(x, f, impl='ref').shape[2:] == (16, 20)
    assert upfirdn2d.downsample2d(x, f, impl='ref').shape[2:] == (4, 5)

def test_setup_filter_normalises_flips_and_separates():
    f = upfirdn2d.setup_filter([1, 2, 3, 4])
    assert f.dtype == torch.float32 and f.shape == (4, 4) # < 8 taps: 2-D outer product.
    assert abs(f.sum().item() - 1) < 1e-6 and torch.allclose(f, f.T)
    f8 = upfirdn2d.setup_filter(list(range(1, 9)))
    assert f8.shape == (8,) and abs(f8.sum().item() - 1) < 1e-6
    assert torch.allclose(upfirdn2d.setup_filter([1, 2, 3], flip_filter=True, separable=True), torch.tensor([3, 2, 1]) / 6)
    assert torch.allclose(upfirdn2d.setup_filter([1, 1], gain=4).sum(), torch.tensor(4.0)) # gain^(2/2) for 2-D.
    assert torch.allclose(upfirdn2d.setup_filter([1, 1], gain=4, separable=True).sum(), torch.tensor(2.0))
    assert upfirdn2d.setup_filter(None).shape == (1, 1)

#----------------------------------------------------------------------------
# Bad arguments.

@pytest.mark.parametrize('call,name', [
    (lambda x, f: upfirdn2d.upfirdn2d(x[0], f), 'x'),
    (lambda x, f: upfirdn2d.upfirdn2d(x.long(), f), 'x'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f.long()), 'f'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f[None, None]), 'f'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f, up=0), 'up'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f, down=-2), 'down'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f, up=[2, 1, 1]), 'up'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f, padding=[1, 2, 3]), 'padding'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f, padding=-6), 'padding'),
    (lambda x, f: upfirdn2d.upfirdn2d(x, f, impl='fast'), 'impl'),
])
def test_upfirdn2d_bad_arguments_raise_value_error_naming_them(call, name):
    x = torch.randn([1, 1, 8, 8])
    f = torch.ones([4])
    with pytest.raises(ValueError, match=name):
        call(x, f)

def test_upfirdn2d_impl_cuda_on_cpu_equals_ref(backend):
    # Without the CPU plugin impl='cuda' on CPU is the reference itself; with it, the plugin's sums
    # (another order: rounding differences only).
    x = torch.randn([2, 3, 9, 7])
    f = upfirdn2d.setup_filter([1, 2, 3, 2, 1, 1, 2, 1])
    for kw in (dict(up=2, padding=[4, 3, 4, 3]), dict(down=2, padding=1), dict(up=[1, 3], down=[2, 1], padding=[0, 1, 2, 0])):
        y, y_ref = upfirdn2d.upfirdn2d(x, f, impl='cuda', **kw), upfirdn2d.upfirdn2d(x, f, impl='ref', **kw)
        if backend == 'blocked':
            assert torch.equal(y, y_ref)
        else:
            assert y.shape == y_ref.shape and (y - y_ref).abs().max().item() <= 1e-6 * y_ref.abs().max().item()

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Long axes: the tiled banded-matrix passes (more than _SINGLE_TILE_MAX outputs), including tiles that
# divide the output exactly and tiles that run past the end of the input.

@pytest.mark.parametrize('up,down,taps,padding', [
    (2, 1, 12, [9, 8]), (4, 1, 24, [-6, -9]), (1, 2, 12, [0, 0]), (3, 2, 5, [2, -1]), (2, 3, 7, [-3, 4]), (1, 1, 4, [3, 2]),
])
def test_upfirdn2d_long_axes_match_zero_insertion(up, down, taps, padding):
    x = torch.randn([1, 2, 3, 301], dtype=torch.float64)
    f = torch.rand([taps]) + 0.05
    y = upfirdn2d.upfirdn2d(x, f[None, :], up=[up, 1], down=[down, 1], padding=padding + [0, 0], impl='ref')
    y_ref = upfirdn2d_zero_insertion(x, f[None, :], (up, 1), (down, 1), tuple(padding) + (0, 0))
    assert y.shape == y_ref.shape and y.shape[3] > upfirdn2d._SINGLE_TILE_MAX
    assert (y - y_ref).abs().max().item() <= 1e-12
    xt = x.transpose(2, 3).contiguous() # The same along the height axis.
    yt = upfirdn2d.upfirdn2d(xt, f[:, None], up=[1, up], down=[1, down], padding=[0, 0] + padding, impl='ref')
    assert (yt.transpose(2, 3) - y_ref).abs().max().item() <= 1e-12
