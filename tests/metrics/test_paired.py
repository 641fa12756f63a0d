# metrics.paired: the tensor API of SSIM / MS-SSIM / LPIPS / MSE on image pairs in [-1, 1], checked against
# the registry's uint8 maths, the LPIPS module itself, and autograd (fp64 gradcheck where the maths allows).

import numpy as np
import pytest
import skimage.data
import torch

from metrics import lpips as lpips_lib
from metrics import paired
from metrics import ssim as ssim_lib
from metrics.errors import MetricError

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def retina_uint8():
    # Two 176x176 crops of the scikit-image retina photo (uint8 [2, 3, H, W]) and a noisy copy.
    img = skimage.data.retina()
    crops = np.stack([img[500:676, 900:1076], img[600:776, 700:876]]).transpose(0, 3, 1, 2).copy()
    rng = np.random.default_rng(0)
    noisy = np.clip(crops.astype(np.float64) + rng.normal(0, 12, crops.shape), 0, 255).astype(np.uint8)
    return torch.from_numpy(crops), torch.from_numpy(noisy)

def _unit(u, dtype=torch.float64):
    return u.to(dtype) / 127.5 - 1

def test_ssim_in_unit_range_equals_uint8_ssim(retina_uint8):
    # SSIM is invariant to scaling images and data range together: [-1, 1] with L = 2 equals 0-255 with L = 255.
    a, b = retina_uint8
    ours = paired.ssim(_unit(a), _unit(b))
    ref = ssim_lib.ssim(a, b, data_range=255)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=0, atol=1e-12)
    assert (ours < 0.95).all() and (ours > 0.2).all()
    assert torch.allclose(paired.ssim(_unit(a), _unit(a)), torch.ones(2, dtype=torch.float64), atol=1e-12)
    # Without the shift to [0, L] the value differs (SSIM is not shift-invariant; measured 4.6e-6 and 5.9e-5
    # here, far above the 1e-12 agreement above): the shift is applied.
    unshifted = ssim_lib.ssim_tensors(_unit(a), _unit(b), 2.0)
    assert float((unshifted - ours).abs().max()) > 1e-5

def test_ms_ssim_in_unit_range_equals_uint8_ms_ssim(retina_uint8):
    a, b = retina_uint8
    ours = paired.ms_ssim(_unit(a), _unit(b))
    np.testing.assert_allclose(ours.numpy(), ssim_lib.ms_ssim(a, b).numpy(), rtol=0, atol=1e-12)

def test_ssim_gradcheck_fp64():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand([1, 1, 12, 12], generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    y = torch.rand([1, 1, 12, 12], generator=g, dtype=torch.float64) * 2 - 1
    assert torch.autograd.gradcheck(lambda t: paired.ssim(t, y), (x,), fast_mode=True)

def test_ms_ssim_and_mse_backward(retina_uint8):
    a, b = retina_uint8
    x = _unit(a, torch.float32).requires_grad_(True)
    y = _unit(b, torch.float32)
    (1 - paired.ms_ssim(x, y)).sum().backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    assert paired.mse(x, y).dtype == torch.float32
    np.testing.assert_allclose(paired.mse(x, y).detach().numpy(), ((x - y) ** 2).mean(dim=[1, 2, 3]).detach().numpy(), rtol=1e-6)

def test_lpips_distance_is_the_cached_module_and_differentiable(retina_uint8):
    a, b = retina_uint8
    x = _unit(a[:, :, :64, :64], torch.float32).requires_grad_(True)
    y = _unit(b[:, :, :64, :64], torch.float32)
    model = paired.load_lpips('alex')
    assert paired.load_lpips('alex', device='cpu') is model and isinstance(model, lpips_lib.LPIPS)
    d = paired.lpips_distance(x, y, net='alex')
    with torch.no_grad():
        np.testing.assert_array_equal(d.detach().numpy(), lpips_lib.LPIPS('alex')(x, y).numpy())
    assert d.shape == (2,) and (d > 0.005).all()
    d.sum().backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.parameters()) # A frozen loss network.
    assert float(paired.lpips_distance(y, y, net='alex').abs().max()) == 0

def test_bad_inputs_name_the_function():
    with pytest.raises(MetricError, match='ssim needs float tensors'):
        paired.ssim(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(MetricError, match='SSIM needs images of one shape'):
        paired.ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(MetricError, match=r'lpips_distance needs two \[N, 3, H, W\]'):
        paired.lpips_distance(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), net='alex')
    with pytest.raises(MetricError, match='mse needs'):
        paired.mse(torch.zeros(2, 3), torch.zeros(2, 3))

#----------------------------------------------------------------------------
