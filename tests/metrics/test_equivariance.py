# Equivariance reference functions (facts/metrics.md section 8) and the EQ metrics on toy generators.

import math

import numpy as np
import pytest
import torch

from metrics import equivariance as eq
from metrics import metric_main
from tests.metrics import helpers

#----------------------------------------------------------------------------

FREQS = [(1.0, 2.0, 0.3), (-3.0, 1.0, 1.1), (2.0, -4.0, 2.0), (5.0, 3.0, -0.7)] # Cycles per image (u, v) and phase.

def cosine_image(H, W, tx=0.0, ty=0.0, angle=0.0, amps=(0.3, 0.25, 0.2, 0.15)):
    """Band-limited sum of cosines sampled at pixel centres, optionally through a rotation and shift."""
    ys = (torch.arange(H, dtype=torch.float64) + 0.5) / H - 0.5
    xs = (torch.arange(W, dtype=torch.float64) + 0.5) / W - 0.5
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    c, s = math.cos(angle), math.sin(angle)
    # Evaluate f(R(-angle)(p) - t): the image shifted by t and rotated by angle.
    xr, yr = c * x + s * y - tx, -s * x + c * y - ty
    img = sum(a * torch.cos(2 * math.pi * (u * xr + v * yr) + ph) for a, (u, v, ph) in zip(amps, FREQS))
    return img[None, None].repeat([1, 3, 1, 1]).to(torch.float32)

def test_lanczos_taps_vector():
    expected = [0.03047469, -0.14799629, 0.76869351, 0.43898898, -0.10579124, 0.0156303]
    np.testing.assert_allclose(eq.lanczos_taps(0.3744).numpy(), expected, atol=1e-7)

def test_bandlimit_filter_vector():
    f = eq.bandlimit_filter(eq.rotation_matrix(0.3), a=3, amax=6, aflt=64, up=4)
    assert tuple(f.shape) == (47, 47)
    assert float(f.sum()) == pytest.approx(1.00000012, abs=1e-6)
    assert float(f[23, 23]) == pytest.approx(0.05553664, abs=1e-7)

def test_integer_translation_exact():
    x = cosine_image(64, 64)
    z, m = eq.translate_integer(x, 3 / 64, -2 / 64)
    assert float(m.sum()) == 11346 == 3 * 61 * 62
    ref = cosine_image(64, 64, tx=3 / 64, ty=-2 / 64)
    assert float(((z - ref).abs() * m).max()) < 1e-6
    assert float((z * (1 - m)).abs().max()) == 0

def test_fractional_translation_matches_analytic_shift():
    x = cosine_image(64, 64)
    z, m = eq.translate_fractional(x, 0.0371, -0.0213)
    assert float(m.sum()) == 10443 == 3 * 59 * 59
    ref = cosine_image(64, 64, tx=0.0371, ty=-0.0213)
    mse = float((((z - ref) ** 2) * m).sum() / m.sum())
    assert eq.psnr_from_mse(mse) > 50 # Lanczos-3 on low frequencies.
    assert eq.psnr_from_mse(float((((x - ref) ** 2) * m).sum() / m.sum())) < 30 # The unshifted image is far off.

def test_rotation_masks_and_accuracy():
    x = cosine_image(64, 64)
    z, m = eq.rotate_fractional(x, 0.3)
    assert float(m.sum()) == 8118
    _, pm = eq.pseudo_rotate(x, 0.3)
    assert float(pm.sum()) == 8748 == 3 * 54 * 54
    ref = cosine_image(64, 64, angle=0.3)
    mse = float((((z - ref) ** 2) * m).sum() / m.sum())
    assert eq.psnr_from_mse(mse) > 35

def test_psnr_example():
    assert eq.psnr_from_mse(1e-3) == pytest.approx(36.0206, abs=1e-4)

#----------------------------------------------------------------------------
# Toy generators: "synthesis" samples a continuous function of the transformed pixel grid, so it is
# exactly equivariant; the broken variant ignores the transform.

class _Input(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('transform', torch.eye(3))

class _Synthesis(torch.nn.Module):
    def __init__(self, res, equivariant):
        super().__init__()
        self.res, self.equivariant = res, equivariant
        self.input = _Input()

    def forward(self, ws, noise_mode='random', force_fp32=False, **_kwargs):
        assert noise_mode == 'const' and force_fp32
        T = self.input.transform.to(torch.float64) if self.equivariant else torch.eye(3, dtype=torch.float64)
        p = (torch.arange(self.res, dtype=torch.float64) + 0.5) / self.res - 0.5
        y, x = torch.meshgrid(p, p, indexing='ij')
        xq = T[0, 0] * x + T[0, 1] * y + T[0, 2]
        yq = T[1, 0] * x + T[1, 1] * y + T[1, 2]
        amps = ws[:, 0, :4].to(torch.float64) * 0.2 # [N, 4]
        img = sum(amps[:, k, None, None] * torch.cos(2 * math.pi * (u * xq + v * yq) + ph) for k, (u, v, ph) in enumerate(FREQS))
        return img[:, None].repeat([1, 3, 1, 1]).to(torch.float32)

class ToySG3(torch.nn.Module):
    def __init__(self, res=32, equivariant=True):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.img_resolution, self.img_channels = 4, 0, 4, 2, res, 3
        self.synthesis = _Synthesis(res, equivariant)

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None):
        return z[:, None].repeat([1, self.num_ws, 1])

@pytest.mark.parametrize('metric,good', [('eqt1k_int', 100), ('eqt1k_frac', 45), ('eqr1k', 35)])
def test_eq_metric_equivariant_vs_not(metric, good, tmp_path, monkeypatch):
    # 8 samples in 2 batches instead of 1000: the family's sample count comes from the name.
    monkeypatch.setattr(eq, 'compute_equivariance_metric', _limited(eq.compute_equivariance_metric, 8))
    kwargs = dict(dataset_kwargs=helpers.folder_kwargs(helpers.write_folder(tmp_path / 'r', 1, resolution=32)), seed=1)
    G = ToySG3(equivariant=True)
    transform_before = G.synthesis.input.transform.clone()
    high = metric_main.calc_metric(metric, G=G, **kwargs).results[metric]
    low = metric_main.calc_metric(metric, G=ToySG3(equivariant=False), **kwargs).results[metric]
    assert high > good
    assert low < 25
    assert torch.equal(G.synthesis.input.transform, transform_before) # The metric restores the transform.

def _limited(fn, num):
    return lambda opts, num_samples, **kw: fn(opts, num_samples=num, **kw)

def test_eq_metric_needs_transform(tmp_path):
    with pytest.raises(Exception, match='Cannot compute equivariance'):
        metric_main.calc_metric('eqt1k_int', G=helpers.TinyGenerator(), dataset_kwargs=helpers.folder_kwargs(helpers.write_folder(tmp_path / 'r', 1)))

#----------------------------------------------------------------------------
