# Fundus photograph preprocessing: field-of-view (FOV) detection, circle crop, mask and
# Ben Graham normalisation.
#
# A fundus camera records a bright, roughly circular FOV on a black background; the circle may be clipped
# at the top and bottom on wide sensors. We find the circle by thresholding a smoothed brightness channel,
# keeping the largest bright component, and fitting a circle (least squares, with one outlier-rejection
# pass) to the component's border pixels that do not touch the image border. Everything works on
# uint8 [H, W, C] numpy arrays with C in {1, 3, 4} or on [H, W] grayscale arrays.

import dataclasses

import numpy as np
import scipy.ndimage
from PIL import Image

#----------------------------------------------------------------------------

class NoFOVError(ValueError):
    """Raised when an image has no detectable circular field of view."""

@dataclasses.dataclass(frozen=True)
class FOV:
    cx:     float   # Circle centre, x, in pixels of the input image (pixel centres at integers).
    cy:     float   # Circle centre, y.
    radius: float   # Circle radius in pixels.

    def scaled(self, s):
        return FOV(cx=(self.cx + 0.5) * s - 0.5, cy=(self.cy + 0.5) * s - 0.5, radius=self.radius * s)

#----------------------------------------------------------------------------
# Channel handling.

def to_rgb_uint8(img):
    """Return an [H, W, 3] uint8 copy of a grayscale, RGB or RGBA array (alpha composited over black);
    16-bit input is scaled to 8 bits."""
    img = np.asarray(img)
    if img.dtype == np.uint16 or (img.dtype.kind in 'iu' and img.dtype.itemsize > 1):
        img = np.clip(np.round(img.astype(np.float64) / 257), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f'expected a uint8 or uint16 image, got dtype {img.dtype}')
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f'expected an [H, W] or [H, W, C] image with C in 1..4, got shape {img.shape}')
    if img.shape[2] in (2, 4): # Composite over black: premultiply by alpha.
        alpha = img[:, :, -1:].astype(np.uint16)
        img = ((img[:, :, :-1].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)

def _brightness(img):
    # Max over colour channels: the red channel dominates in fundus photos, but a green-only or grayscale
    # capture must work too.
    img = to_rgb_uint8(img)
    # Elementwise maxima: numpy's reduction over a length-3 last axis is many times slower.
    return np.maximum(np.maximum(img[:, :, 0], img[:, :, 1]), img[:, :, 2])

#----------------------------------------------------------------------------
# FOV detection.

_WORK_SIZE = 512    # Detection runs on a copy whose longer side is at most this (box-filtered).

def _kasa_fit(x, y):
    # Algebraic circle fit: x^2 + y^2 + D x + E y + F = 0 in least squares.
    A = np.stack([x, y, np.ones_like(x)], axis=1)
    b = -(x * x + y * y)
    (D, E, F), *_ = np.linalg.lstsq(A, b, rcond=None)
    cx, cy = -D / 2, -E / 2
    r = np.sqrt(max(cx * cx + cy * cy - F, 0.0))
    return cx, cy, r

def _border_points(mask):
    # Pixels of the mask that have a 4-neighbour outside it, and do not lie on the image border.
    inner = scipy.ndimage.binary_erosion(mask, border_value=1)
    edge = mask & ~inner
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = False
    ys, xs = np.nonzero(edge)
    return xs.astype(np.float64), ys.astype(np.float64)

def detect_fov(img, threshold=None, min_radius_frac=0.15):
    """Find the circular field of view of a fundus photograph.

    Args:
        img:             uint8/uint16 image, [H, W] or [H, W, C] with C in 1..4.
        threshold:       brightness threshold (0..255) separating the FOV from the background;
                         None = automatic (the larger of 8 and 15% of the 99th percentile).
        min_radius_frac: smallest accepted radius as a fraction of the shorter image side.

    Returns:
        FOV(cx, cy, radius) in input pixel coordinates.

    Raises:
        NoFOVError: 'no FOV detected: <reason>'.
    """
    bright = _brightness(img)
    h, w = bright.shape
    scale = max(1, int(np.ceil(max(h, w) / _WORK_SIZE)))

    # Reduce and smooth the brightness channel.
    small = np.asarray(Image.fromarray(bright).reduce(scale), dtype=np.float32) if scale > 1 else bright.astype(np.float32)
    small = scipy.ndimage.gaussian_filter(small, sigma=1.0)
    if threshold is None:
        threshold = max(8.0, 0.15 * float(np.percentile(small, 99)))
    mask = small > threshold
    if mask.sum() < 16:
        raise NoFOVError('no FOV detected: the image is dark everywhere')

    # Keep the largest bright component, with holes filled (dark vessels, lesions).
    labels, num = scipy.ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    mask = labels == (int(np.argmax(sizes)) + 1)
    mask = scipy.ndimage.binary_fill_holes(mask)
    if mask.all() or mask.mean() > 0.995:
        raise NoFOVError('no FOV detected: no dark background around the bright area')

    # Fit a circle to the border, drop outliers (notches, labels, reflections) and fit again.
    x, y = _border_points(mask)
    if len(x) < 20:
        raise NoFOVError('no FOV detected: too little visible circle border')
    cx, cy, r = _kasa_fit(x, y)
    resid = np.abs(np.hypot(x - cx, y - cy) - r)
    keep = resid <= max(1.5, 3 * np.median(resid))
    if keep.sum() >= 20:
        x, y = x[keep], y[keep]
        cx, cy, r = _kasa_fit(x, y)
        resid = np.abs(np.hypot(x - cx, y - cy) - r)

    # Check that the points cover enough of the circle and fit it.
    angles = np.arctan2(y - cy, x - cx)
    coverage = len(np.unique(np.floor((angles + np.pi) / (2 * np.pi) * 36).astype(int))) / 36
    small_h, small_w = mask.shape
    if not np.isfinite(r) or r < min_radius_frac * min(small_h, small_w):
        raise NoFOVError('no FOV detected: the bright area is not a large circle')
    if coverage < 0.3 or float(np.sqrt(np.mean(resid ** 2))) > 0.03 * r + 1.0:
        raise NoFOVError('no FOV detected: the bright area is not circular')
    if not (-0.25 * r <= cx <= small_w - 1 + 0.25 * r and -0.25 * r <= cy <= small_h - 1 + 0.25 * r):
        raise NoFOVError('no FOV detected: the circle centre lies outside the image')

    # Map back to input pixels and place the edge where brightness falls to half its inside level.
    fov = FOV(cx=float(cx), cy=float(cy), radius=float(r + 0.5)).scaled(scale)
    return _refine_radius(bright, fov)

def _refine_radius(bright, fov):
    # Average brightness in thin rings around the fitted circle (only pixels inside the image count),
    # then find where the profile crosses halfway between the inside and outside levels. Smoothing and
    # the threshold bias the mask edge by about a pixel; this does not depend on either.
    h, w = bright.shape
    band = max(4.0, 0.03 * fov.radius)
    step = max(1, int(round(fov.radius / 350)))
    ys = np.arange(max(0, int(fov.cy - fov.radius - band)), min(h, int(fov.cy + fov.radius + band) + 1), step)
    xs = np.arange(max(0, int(fov.cx - fov.radius - band)), min(w, int(fov.cx + fov.radius + band) + 1), step)
    d = np.sqrt((xs[np.newaxis, :] - fov.cx) ** 2 + (ys[:, np.newaxis] - fov.cy) ** 2) - fov.radius
    sel = np.abs(d) < band
    if sel.sum() < 50:
        return fov
    vals = bright[np.ix_(ys, xs)][sel].astype(np.float64)
    bins = np.floor((d[sel] + band) / 0.25).astype(int)
    num = int(np.ceil(2 * band / 0.25))
    cnt = np.bincount(bins, minlength=num)[:num]
    prof = np.bincount(bins, weights=vals, minlength=num)[:num] / np.maximum(cnt, 1)
    centres = -band + 0.25 * (np.arange(num) + 0.5)
    valid = cnt > 0
    inside = prof[valid & (centres < -band / 2)]
    outside = prof[valid & (centres > band / 2)]
    if len(inside) == 0 or len(outside) == 0 or inside.mean() - outside.mean() < 10:
        return fov
    half = (inside.mean() + outside.mean()) / 2
    c, p = centres[valid], prof[valid]
    # Walk outward from the fitted edge's inside: the last sample above half, then interpolate.
    above = np.nonzero((p > half) & (c < band / 2))[0]
    if len(above) == 0 or above[-1] + 1 >= len(p):
        return fov
    i = above[-1]
    t = (p[i] - half) / max(p[i] - p[i + 1], 1e-9)
    delta = c[i] + t * (c[i + 1] - c[i])
    return FOV(cx=fov.cx, cy=fov.cy, radius=float(fov.radius + delta))

#----------------------------------------------------------------------------
# Masks and crops.

def circle_mask(height, width, fov, soft=True):
    """[H, W] float32 coverage of the FOV circle: 1 inside, 0 outside, a 1-pixel linear ramp if soft."""
    yy, xx = np.ogrid[:height, :width]
    d = np.sqrt((xx - fov.cx) ** 2 + (yy - fov.cy) ** 2, dtype=np.float32)
    if soft:
        return np.clip(fov.radius + 0.5 - d, 0, 1).astype(np.float32)
    return (d <= fov.radius).astype(np.float32)

def apply_mask(img, fov, fill=0):
    """Set everything outside the FOV circle to `fill` (soft edge); returns uint8 [H, W, C]."""
    img = np.asarray(img)
    squeeze = img.ndim == 2
    x = img[:, :, np.newaxis] if squeeze else img
    m = circle_mask(x.shape[0], x.shape[1], fov)[:, :, np.newaxis]
    out = np.round(x.astype(np.float32) * m + float(fill) * (1 - m)).clip(0, 255).astype(np.uint8)
    return out[:, :, 0] if squeeze else out

def crop_to_fov(img, size, fov=None, resample=Image.LANCZOS):
    """Crop the square around the FOV circle, resize it to size x size and black out the outside.

    Args:
        img:      uint8/uint16 image ([H, W] or [H, W, C], C in 1..4); converted to RGB.
        size:     output side in pixels.
        fov:      a known FOV; None = detect_fov(img).
        resample: PIL filter for the resize (LANCZOS antialiases when shrinking).

    Returns:
        uint8 [size, size, 3]: the FOV circle inscribed in the square, black outside.
    """
    img = to_rgb_uint8(img)
    if fov is None:
        fov = detect_fov(img)
    h, w = img.shape[:2]

    # Pad with black where the square reaches past the image (clipped circles), then resize the float box.
    x0, y0 = fov.cx + 0.5 - fov.radius, fov.cy + 0.5 - fov.radius
    x1, y1 = fov.cx + 0.5 + fov.radius, fov.cy + 0.5 + fov.radius
    pl, pt = max(0, int(np.ceil(-x0))), max(0, int(np.ceil(-y0)))
    pr, pb = max(0, int(np.ceil(x1 - w))), max(0, int(np.ceil(y1 - h)))
    if pl or pt or pr or pb:
        img = np.pad(img, ((pt, pb), (pl, pr), (0, 0)))
    box = (x0 + pl, y0 + pt, x1 + pl, y1 + pt)
    out = np.asarray(Image.fromarray(img).resize((size, size), resample=resample, box=box))

    # Black out everything outside the inscribed circle.
    c = (size - 1) / 2
    return apply_mask(out, FOV(cx=c, cy=c, radius=size / 2))

def fundus_crop(img, size):
    """detect_fov + crop_to_fov; raises NoFOVError when no FOV is found."""
    return crop_to_fov(img, size, fov=detect_fov(img))

#----------------------------------------------------------------------------
# Ben Graham normalisation (Kaggle DR 2015 winner), for classifiers; never for GAN training targets.

def ben_graham(img, fov=None, sigma_frac=1 / 30, mask_frac=0.9):
    """Subtract the local average colour: 4*img - 4*gauss(img, radius*sigma_frac) + 128, then fill the
    outside of a circle of mask_frac * radius with 128. Returns uint8 [H, W, 3]."""
    img = to_rgb_uint8(img)
    if fov is None:
        fov = detect_fov(img)
    x = img.astype(np.float32)
    sigma = max(fov.radius * sigma_frac, 0.5)
    blur = scipy.ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0))
    out = np.clip(4 * x - 4 * blur + 128, 0, 255)
    inner = FOV(cx=fov.cx, cy=fov.cy, radius=fov.radius * mask_frac)
    return apply_mask(np.round(out).astype(np.uint8), inner, fill=128)

#----------------------------------------------------------------------------
