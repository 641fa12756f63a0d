# conv2d_gradfix, grid_sample_gradfix and fma: values, double backward (R1 through D and through ADA's
# geometric augmentation), and the no_weight_gradients context.

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import conv2d_gradfix, fma, grid_sample_gradfix

#----------------------------------------------------------------------------

def _bilinear_zeros(img, gx, gy):
    # NumPy oracle of grid_sample(bilinear, zeros, align_corners=False) for one channel.
    h, w = img.shape
    out = np.zeros(gx.shape)
    for idx in np.ndindex(gx.shape):
        px = ((gx[idx] + 1) * w - 1) / 2
        py = ((gy[idx] + 1) * h - 1) / 2
        x0, y0 = int(np.floor(px)), int(np.floor(py))
        for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
            if 0 <= yy < h and 0 <= xx < w:
                out[idx] += img[yy, xx] * (1 - abs(px - xx)) * (1 - abs(py - yy))
    return out

def test_grid_sample_matches_bilinear_oracle():
    img = torch.randn([1, 1, 5, 6], dtype=torch.float64)
    grid = torch.rand([1, 4, 3, 2], dtype=torch.float64) * 2.4 - 1.2 # Some samples fall outside.
    y = grid_sample_gradfix.grid_sample(img, grid)
    expected = _bilinear_zeros(img[0, 0].numpy(), grid[0, ..., 0].numpy(), grid[0, ..., 1].numpy())
    np.testing.assert_allclose(y[0, 0].numpy(), expected, rtol=0, atol=1e-12)

def test_grid_sample_double_backward():
    img = torch.randn([1, 2, 5, 5], dtype=torch.float64, requires_grad=True)
    grid = (torch.rand([1, 3, 4, 2], dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)
    assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, [img, grid], fast_mode=True)

def test_grid_sample_bad_grid():
    with pytest.raises(ValueError, match='grid'):
        grid_sample_gradfix.grid_sample(torch.randn([1, 1, 4, 4]), torch.zeros([1, 4, 4, 3]))

#----------------------------------------------------------------------------

def test_conv2d_and_conv_transpose2d_double_backward_through_weights():
    x = torch.randn([1, 2, 5, 5], dtype=torch.float64, requires_grad=True)
    w = torch.randn([3, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    assert torch.allclose(conv2d_gradfix.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_gradfix.conv2d(x, w, stride=2, padding=1), [x, w], fast_mode=True)
    wt = torch.randn([2, 3, 3, 3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_gradfix.conv_transpose2d(x, w, stride=2), [x, wt], fast_mode=True)

def test_no_weight_gradients_is_a_restoring_context():
    assert not conv2d_gradfix.weight_gradients_disabled()
    with conv2d_gradfix.no_weight_gradients():
        assert conv2d_gradfix.weight_gradients_disabled()
        with conv2d_gradfix.no_weight_gradients(disable=False): # Nested: stays disabled.
            assert conv2d_gradfix.weight_gradients_disabled()
    assert not conv2d_gradfix.weight_gradients_disabled()
    with pytest.raises(KeyError):
        with conv2d_gradfix.no_weight_gradients():
            raise KeyError('restored even on error')
    assert not conv2d_gradfix.weight_gradients_disabled()

def test_path_length_style_grad_leaves_weights_alone():
    # What no_weight_gradients is for: d(img)/d(ws) inside it; the weight gets no .grad.
    w = torch.randn([2, 2, 3, 3], requires_grad=True)
    ws = torch.randn([1, 2, 6, 6], requires_grad=True)
    with conv2d_gradfix.no_weight_gradients():
        img = conv2d_gradfix.conv2d(ws, w, padding=1)
        g, = torch.autograd.grad(img.square().sum(), [ws], create_graph=True)
    assert w.grad is None and g.shape == ws.shape

#----------------------------------------------------------------------------

def test_fma_values_broadcasting_and_gradients():
    a = torch.randn([2, 1, 4], dtype=torch.float64, requires_grad=True)
    b = torch.randn([1, 3, 1], dtype=torch.float64, requires_grad=True)
    c = torch.randn([4], dtype=torch.float64, requires_grad=True)
    y = fma.fma(a, b, c)
    assert y.shape == (2, 3, 4) and torch.allclose(y, c + a * b, rtol=0, atol=1e-15)
    assert torch.autograd.gradgradcheck(fma.fma, [a, b, c], fast_mode=True)
    with pytest.raises(ValueError, match='b'):
        fma.fma(a, 2.0, c)

#----------------------------------------------------------------------------
