# fundus.data.preprocess: FOV detection on the real scikit-image photo and on synthetic discs, circle crop,
# channel handling, idempotence, Ben Graham normalisation and the no-FOV error.

import numpy as np
import pytest
import skimage.data

from fundus.data import preprocess as P

#----------------------------------------------------------------------------

def _disc(h, w, cx, cy, r, value=180, ss=4, channels=3):
    # Anti-aliased disc with exact coverage (ss x ss supersampling); the oracle circle is (cx, cy, r).
    yy, xx = np.mgrid[:h * ss, :w * ss]
    yy = (yy + 0.5) / ss - 0.5
    xx = (xx + 0.5) / ss - 0.5
    inside = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float32)
    cov = inside.reshape(h, ss, w, ss).mean(axis=(1, 3))
    img = np.round(cov * value).astype(np.uint8)
    return np.repeat(img[:, :, None], channels, axis=2) if channels > 1 else img

#----------------------------------------------------------------------------

def test_retina_fov_matches_hand_measurement():
    # Hand measurement on skimage.data.retina() (1411x1411): red-channel profiles along row 705 and
    # column 705, printed and read by eye; the edge is where the value passes half of the inside level
    # (about 100 of 200). Row 705: left edge between x=9 (70) and x=10 (135) -> 9.5, right edge between
    # x=1398 (113) and x=1399 (66) -> 1398.7. Column 705: top between y=7 (86) and y=8 (133) -> 7.3,
    # bottom between y=1398 (122) and y=1399 (66) -> 1398.4. Centre (704.1, 702.9); radius 694.6
    # horizontally and 695.6 vertically -> 695.1.
    fov = P.detect_fov(skimage.data.retina())
    assert abs(fov.cx - 704.1) < 0.01 * 695.1
    assert abs(fov.cy - 702.9) < 0.01 * 695.1
    assert abs(fov.radius - 695.1) < 0.01 * 695.1

@pytest.mark.parametrize('h,w,cx,cy,r', [
    (200, 200, 99.5, 99.5, 80.0),
    (240, 320, 150.3, 118.7, 90.2),     # Off-centre, fractional.
    (300, 400, 200.0, 150.0, 190.0),    # Clipped at top and bottom, as on wide camera sensors.
    (600, 1100, 560.0, 300.0, 250.0),   # Large enough to be detected on a reduced copy.
])
def test_synthetic_disc_within_one_pixel(h, w, cx, cy, r):
    fov = P.detect_fov(_disc(h, w, cx, cy, r, ss=2 if h * w > 200_000 else 4))
    assert abs(fov.cx - cx) < 1 and abs(fov.cy - cy) < 1 and abs(fov.radius - r) < 1

def test_grayscale_rgba_and_16bit_inputs():
    gray = _disc(160, 160, 80.0, 79.0, 60.0, channels=1)
    f = P.detect_fov(gray)
    assert abs(f.cx - 80) < 1 and abs(f.cy - 79) < 1 and abs(f.radius - 60) < 1
    # RGBA: the disc is opaque on a fully transparent white canvas; compositing over black leaves the disc.
    rgba = np.full((160, 160, 4), 255, np.uint8)
    rgba[:, :, 3] = _disc(160, 160, 70.0, 85.0, 55.0, value=255, channels=1)
    f = P.detect_fov(rgba)
    assert abs(f.cx - 70) < 1 and abs(f.cy - 85) < 1 and abs(f.radius - 55) < 1
    deep = gray.astype(np.uint16) * 257
    assert P.detect_fov(deep) == P.detect_fov(gray)
    assert P.to_rgb_uint8(deep).shape == (160, 160, 3)

def test_dim_fov_with_vignetting_is_found():
    # Brightness falls from 120 at the centre to about 20 at the rim (dark fundus photos).
    h = w = 240
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(xx - 119.5, yy - 119.5)
    img = (_disc(h, w, 119.5, 119.5, 100.0, value=255, channels=1) / 255 * (120 - d)).clip(0, 255).astype(np.uint8)
    f = P.detect_fov(img)
    assert abs(f.cx - 119.5) < 1 and abs(f.cy - 119.5) < 1 and abs(f.radius - 100) < 1.5

@pytest.mark.parametrize('img,why', [
    (np.zeros((100, 100, 3), np.uint8), 'dark everywhere'),
    (np.full((100, 100, 3), 200, np.uint8), 'no dark background'),
    (np.pad(np.full((10, 80), 200, np.uint8), ((45, 45), (10, 10))), 'not'),  # A bar, not a circle.
])
def test_no_fov_detected(img, why):
    with pytest.raises(P.NoFOVError, match=f'no FOV detected: .*{why}'):
        P.detect_fov(img)

def test_crop_is_black_outside_and_fills_the_square():
    img = P.fundus_crop(_disc(240, 320, 150.3, 118.7, 90.2, value=200), 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    yy, xx = np.mgrid[:64, :64]
    d = np.hypot(xx - 31.5, yy - 31.5)
    assert img[d > 32.5].max() == 0             # Outside the inscribed circle: black.
    assert np.abs(img[d < 26].astype(int) - 200).max() <= 1     # Inside, beyond the LANCZOS reach of the edge.
    # The circle touches all four sides.
    for edge in (img[31], img[32], img[:, 31], img[:, 32]):
        assert edge[0].max() > 50 and edge[-1].max() > 50

def test_crop_of_retina_is_idempotent():
    r = skimage.data.retina()[::2, ::2]
    once = P.fundus_crop(r, 128)
    twice = P.fundus_crop(once, 128)
    f = P.detect_fov(once)
    assert abs(f.cx - 63.5) < 1 and abs(f.cy - 63.5) < 1 and abs(f.radius - 64) < 1
    diff = np.abs(twice.astype(int) - once.astype(int))
    assert diff.mean() < 3.0

def test_apply_mask_and_circle_mask():
    fov = P.FOV(cx=10.0, cy=10.0, radius=5.0)
    m = P.circle_mask(21, 21, fov, soft=False)
    assert m[10, 10] == 1 and m[10, 15] == 1 and m[10, 16] == 0 and m.sum() == 81  # Lattice points in r=5.
    out = P.apply_mask(np.full((21, 21, 3), 100, np.uint8), fov, fill=7)
    assert out[0, 0, 0] == 7 and out[10, 10, 0] == 100

def test_ben_graham_flattens_illumination():
    # A smooth ramp inside the FOV becomes about 128 (high-pass), outside 0.9 r is 128.
    h = w = 200
    yy, xx = np.mgrid[:h, :w]
    base = _disc(h, w, 99.5, 99.5, 90.0, value=255, channels=1) / 255
    img = (base * (60 + 0.8 * xx))[:, :, None].repeat(3, axis=2).astype(np.uint8)
    out = P.ben_graham(img)
    d = np.hypot(xx - 99.5, yy - 99.5)
    assert np.abs(out[d < 60].astype(int) - 128).mean() < 6
    assert (out[d > 82] == 128).all()

#----------------------------------------------------------------------------
