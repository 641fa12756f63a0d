# AugmentPipe: every op checked against an independent oracle (numpy flips / rotations / reflect-padded
# shifts, closed-form colour maths), identity at p = 0, and the ADA controller's direction of travel.

import math

import numpy as np
import pytest
import torch

from training import augment
from training.augment import AdaController, AugmentPipe, augpipe_specs

#----------------------------------------------------------------------------

def _images(n=16, c=3, res=8, seed=0):
    return torch.rand([n, c, res, res], generator=torch.Generator().manual_seed(seed)) * 2 - 1

def _pipe(p=1.0, **ops):
    pipe = AugmentPipe(**ops)
    pipe.p.fill_(p)
    return pipe

def _gen(seed=1):
    return torch.Generator().manual_seed(seed)

#----------------------------------------------------------------------------

def test_sym6_is_orthonormal_with_six_vanishing_moments():
    h = np.array(augment.SYM6)
    assert abs(h.sum() - math.sqrt(2)) < 1e-12
    for k in range(0, 6): # Orthonormality against even shifts.
        assert abs(np.dot(h[2 * k:], h[:h.size - 2 * k]) - (1 if k == 0 else 0)) < 1e-11
    g = h[::-1] * (-1) ** np.arange(12) # High-pass: kills polynomials up to degree 5.
    for m in range(6):
        assert abs(np.dot(g, np.arange(12.0) ** m)) < 1e-6 * 12 ** m

def test_filter_bank_bands_sum_to_an_impulse():
    bank = augment._octave_filter_bank()
    total = bank.sum(axis=0)
    delta = np.zeros_like(total)
    delta[total.size // 2] = 1
    np.testing.assert_allclose(total, delta, atol=1e-15)
    np.testing.assert_allclose(bank[:-1].sum(axis=1), 0, atol=1e-15) # Band-pass bands have no DC.

@pytest.mark.parametrize('spec', ['bgcfnc', 'fundus', 'fundus-xflip'])
def test_p_zero_is_exact_identity(spec):
    x = _images()
    y = _pipe(p=0.0, **augpipe_specs[spec])(x, generator=_gen())
    assert torch.equal(x, y)

def test_xflip_gives_exact_mirror_images():
    x = _images(n=32)
    y = _pipe(xflip=1)(x, generator=_gen())
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(32)]
    same = [torch.equal(y[i], x[i]) for i in range(32)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 4 < sum(flipped) < 28 # p=1, multiplier 1: a fair coin per sample.

def test_rotate90_gives_exact_quarter_turns():
    x = _images(n=40)
    y = _pipe(rotate90=1)(x, generator=_gen())
    seen = set()
    for i in range(40):
        ks = [k for k in range(4) if torch.equal(y[i], torch.rot90(x[i], k, dims=(1, 2)))]
        assert len(ks) == 1
        seen.add(ks[0])
    assert seen == {0, 1, 2, 3}

def _reflect_shift(img, tx, ty):
    # Oracle: numpy reflect padding, then crop the shifted window.
    r = img.shape[-1]
    pad = np.pad(img, [(0, 0), (r, r), (r, r)], mode='reflect')
    return pad[:, r - ty:2 * r - ty, r - tx:2 * r - tx]

def test_integer_translation_matches_reflect_padded_shift():
    x = _images(n=24, res=16)
    y = _pipe(xint=1, xint_max=0.25)(x, generator=_gen()).numpy()
    shifted = 0
    for i in range(24):
        matches = [(tx, ty) for tx in range(-4, 5) for ty in range(-4, 5)
                   if np.array_equal(y[i], _reflect_shift(x[i].numpy(), tx, ty))]
        assert matches, f'sample {i} is not an integer reflect-shift of its input'
        shifted += matches[0] != (0, 0)
    assert shifted >= 12

def test_brightness_and_contrast_are_affine_in_closed_form():
    x = _images(n=4)
    q = 0.8
    z = math.sqrt(2) * float(torch.erfinv(torch.tensor(2 * q - 1)))
    y = _pipe(brightness=1, brightness_std=0.2)(x, debug_percentile=q)
    torch.testing.assert_close(y, x + 0.2 * z, atol=1e-6, rtol=0)
    y = _pipe(contrast=1, contrast_std=0.5)(x, debug_percentile=q)
    torch.testing.assert_close(y, x * 2 ** (0.5 * z), atol=1e-6, rtol=0)

def test_lumaflip_negates_gray_and_keeps_chroma():
    x = _images(n=8)
    y = _pipe(lumaflip=1)(x, debug_percentile=0.9) # floor(0.9 * 2) = 1: flip every sample.
    luma = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(y, x - 2 * luma, atol=1e-6, rtol=0)

def test_hue_rotation_preserves_luma_and_chroma_norm_saturation_scales_chroma():
    x = _images(n=8)
    luma = x.mean(dim=1, keepdim=True)
    y = _pipe(hue=1)(x, generator=_gen())
    torch.testing.assert_close(y.mean(dim=1, keepdim=True), luma, atol=1e-5, rtol=0)
    torch.testing.assert_close((y - luma).norm(dim=1), (x - luma).norm(dim=1), atol=1e-5, rtol=0)
    assert (y - x).abs().max() > 0.05
    q = 0.75
    s = 2 ** (math.sqrt(2) * float(torch.erfinv(torch.tensor(2 * q - 1))))
    y = _pipe(saturation=1)(x, debug_percentile=q)
    torch.testing.assert_close(y, luma + (x - luma) * s, atol=1e-5, rtol=0)

def test_grayscale_colour_ops_use_brightness_and_contrast_only():
    x = _images(n=4, c=1)
    y = _pipe(brightness=1, lumaflip=1, hue=1, saturation=1)(x, debug_percentile=0.8)
    z = math.sqrt(2) * float(torch.erfinv(torch.tensor(0.6)))
    torch.testing.assert_close(y, x + 0.2 * z, atol=1e-6, rtol=0)

def test_noise_and_cutout_statistics():
    x = torch.zeros([64, 3, 16, 16])
    y = _pipe(noise=1, noise_std=0.1)(x, generator=_gen())
    per_sample = y.flatten(1).std(dim=1)
    # sigma = |N(0, 0.1)|: E[sigma] = 0.1 * sqrt(2 / pi).
    assert abs(float(per_sample.mean()) - 0.1 * math.sqrt(2 / math.pi)) < 0.02
    x = torch.ones([64, 3, 16, 16])
    y = _pipe(cutout=1, cutout_size=0.5)(x, generator=_gen())
    zero_fraction = (y == 0).float().mean(dim=[1, 2, 3])
    assert float(zero_fraction.max()) <= 0.25 + 1e-6
    assert float(zero_fraction.mean()) > 0.1

def test_imgfilter_changes_images_but_not_their_mean_much():
    x = _images(n=8, res=16)
    y = _pipe(imgfilter=1)(x, generator=_gen())
    assert (y - x).abs().max() > 1e-3
    assert y.shape == x.shape

def test_augment_pipe_is_differentiable_twice_through_colour_and_blit():
    x = _images(n=4).requires_grad_(True)
    y = _pipe(xflip=1, rotate90=1, xint=1, brightness=1, contrast=1, hue=1, saturation=1)(x, generator=_gen())
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    g.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

def test_same_generator_state_gives_same_augmentation():
    x = _images()
    pipe = _pipe(**augpipe_specs['bgc'] | dict(scale=0, rotate=0, aniso=0, xfrac=0))
    assert torch.equal(pipe(x, generator=_gen(5)), pipe(x, generator=_gen(5)))
    assert not torch.equal(pipe(x, generator=_gen(5)), pipe(x, generator=_gen(6)))

def test_fundus_preset_has_no_hue_lumaflip_rotate90_or_xflip():
    spec = augpipe_specs['fundus']
    for op in ('hue', 'lumaflip', 'rotate90', 'xflip'):
        assert spec.get(op, 0) == 0
    assert spec['brightness_std'] < 0.2 and spec['contrast_std'] < 0.5
    assert augpipe_specs['fundus-xflip']['xflip'] == 1

#----------------------------------------------------------------------------
# Geometric stage (needs the ops engineer's upfirdn2d and grid_sample_gradfix).

def test_fractional_translation_of_smooth_image_matches_analytic_shift():
    pytest.importorskip('torch_utils.ops.grid_sample_gradfix')
    res = 32
    yy, xx = torch.meshgrid(torch.arange(res, dtype=torch.float32), torch.arange(res, dtype=torch.float32), indexing='ij')
    def smooth(d):
        return torch.sin(2 * math.pi * (xx - d) / res * 2) * torch.cos(2 * math.pi * (yy - d) / res)
    x = smooth(0).expand(2, 3, res, res).contiguous()
    # xfrac: t = Phi^-1(q) * std in both axes; choose q so that t * res = 1.5 pixels.
    q = 0.5 * (1 + math.erf(1.5 / res / 0.125 / math.sqrt(2)))
    y = _pipe(xfrac=1)(x, debug_percentile=q)
    expected = smooth(1.5)
    interior = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    assert float((y - expected)[interior].abs().max()) < 1e-3

def test_geometric_p_zero_identity_and_double_backward():
    pytest.importorskip('torch_utils.ops.grid_sample_gradfix')
    x = _images(n=4, res=16).requires_grad_(True)
    y = _pipe(**augpipe_specs['bg'])(x, generator=_gen())
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    g.sum().backward()
    assert torch.isfinite(x.grad).all()

#----------------------------------------------------------------------------

def _ada(p=0.0, **kwargs):
    pipe = _pipe(p=p, xflip=1)
    return pipe, AdaController(pipe, **kwargs)

def test_ada_raises_p_when_discriminator_overfits():
    pipe, ada = _ada(target=0.6, interval=4, kimg=500, batch_size=32)
    for batch_idx in range(1, 9):
        ada.accumulate(torch.ones([32, 1])) # r_t = 1 > target.
        ada.step(batch_idx)
    assert float(pipe.p) == pytest.approx(2 * 32 * 4 / 500e3, rel=1e-6)

def test_ada_lowers_p_and_clamps_at_zero():
    pipe, ada = _ada(p=0.001, target=0.6, interval=4, kimg=500, batch_size=32)
    for batch_idx in range(1, 5):
        ada.accumulate(-torch.ones([32, 1]))
        ada.step(batch_idx)
    assert float(pipe.p) == pytest.approx(0.001 - 32 * 4 / 500e3, rel=1e-5)
    for batch_idx in range(5, 21): # Four more adjustments: 0.001 - 5 * 0.000256 < 0.
        ada.accumulate(-torch.ones([32, 1]))
        ada.step(batch_idx)
    assert float(pipe.p) == 0

def test_ada_state_round_trip_keeps_partial_sums():
    pipe, ada = _ada(target=0.6, interval=4, batch_size=32)
    ada.accumulate(torch.tensor([1.0, 1.0, -1.0]))
    state = ada.state_dict()
    pipe2, ada2 = _ada()
    ada2.load_state_dict(state)
    assert torch.equal(ada2.sums, ada.sums) and float(pipe2.p) == float(pipe.p)

#----------------------------------------------------------------------------
