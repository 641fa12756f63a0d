# Adaptive discriminator augmentation (ADA): a differentiable augmentation pipeline applied to every image
# the discriminator sees, plus the controller that adapts its strength. Karras et al., "Training
# Generative Adversarial Networks with Limited Data" (2020), Sec. 2-3 and Appendix B.
#
# Every augmentation runs per sample with probability `multiplier * p`. Stages, in order:
#   1. pixel blitting (xflip, rotate90, integer translation): an exact index gather, no resampling;
#   2. general geometry (scale, rotation, anisotropy, fractional translation): one combined inverse
#      homography, applied by reflect padding, 2x upsampling with the sym6 wavelet, bilinear sampling and
#      2x downsampling;
#   3. colour (brightness, contrast, luma flip, hue rotation, saturation): one 4x4 matrix on RGB;
#   4. image-space filtering, 5. additive noise, 6. cutout.
# A stage whose sampled transforms are all identities is skipped, so p = 0 returns the input unchanged.
# Randomness comes from the `generator` passed to forward() (or torch's global RNG when None).

import math

import numpy as np
import torch

from torch_utils import distributed, misc, persistence
from torch_utils.ops import grid_sample_gradfix, upfirdn2d

#----------------------------------------------------------------------------
# Symlet-6 low-pass decomposition filter (Daubechies, "Ten Lectures on Wavelets", 1992). Orthonormal with
# six vanishing moments; tests check both properties.

SYM6 = [
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
]

#----------------------------------------------------------------------------
# Named presets: per-op multipliers (and magnitudes) passed to AugmentPipe. train.py uses 'bgc'.
#
# 'fundus' keeps retinal photographs plausible: no hue rotation (the red-orange fundus palette and the
# dark-red haemorrhage / yellow exudate contrast carry the diagnosis), no luma flip (it would turn the bright
# optic disc dark), no rotate90 (the disc-macula axis is roughly horizontal in every capture), and milder
# brightness / contrast / saturation than 'bgc'. It has no xflip: a mirrored right eye looks like a left eye,
# so flipping changes laterality. Use 'fundus-xflip' when laterality does not matter for your labels.

_blit   = dict(xflip=1, rotate90=1, xint=1)
_geom   = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_color  = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
_filter = dict(imgfilter=1)
_noise  = dict(noise=1)
_cutout = dict(cutout=1)
_fundus = dict(xint=1, xint_max=0.0625, scale=1, rotate=1, rotate_max=0.125, aniso=1, xfrac=1,
               brightness=1, brightness_std=0.1, contrast=1, contrast_std=0.25, saturation=1, saturation_std=0.25)

augpipe_specs = {
    'blit':         dict(**_blit),
    'geom':         dict(**_geom),
    'color':        dict(**_color),
    'filter':       dict(**_filter),
    'noise':        dict(**_noise),
    'cutout':       dict(**_cutout),
    'bg':           dict(**_blit, **_geom),
    'bgc':          dict(**_blit, **_geom, **_color),
    'bgcf':         dict(**_blit, **_geom, **_color, **_filter),
    'bgcfn':        dict(**_blit, **_geom, **_color, **_filter, **_noise),
    'bgcfnc':       dict(**_blit, **_geom, **_color, **_filter, **_noise, **_cutout),
    'fundus':       dict(**_fundus),
    'fundus-xflip': dict(**_fundus, xflip=1),
}

#----------------------------------------------------------------------------
# 3x3 (2-D homogeneous) and 4x4 (3-D homogeneous) matrices, batched over the leading axis.

def _matrix(rows, device):
    # rows: nested lists of scalars or [N] tensors -> [N, R, C].
    n = max([r.shape[0] for row in rows for r in row if isinstance(r, torch.Tensor)] + [1])
    cols = [torch.as_tensor(r, dtype=torch.float32, device=device).expand(n) for row in rows for r in row]
    return torch.stack(cols, dim=1).reshape(n, len(rows), len(rows[0]))

def translate2d(tx, ty, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], device)

def scale2d(sx, sy, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], device)

def rotate2d(theta, device):
    return _matrix([[torch.cos(theta), -torch.sin(theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]], device)

def translate3d(tx, ty, tz, device):
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], device)

def scale3d(sx, sy, sz, device):
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], device)

def rotate3d(axis, theta, device):
    # Rodrigues' rotation about a unit axis [3] by angles theta [N].
    x, y, z = [float(a) for a in axis]
    c, s = torch.cos(theta), torch.sin(theta)
    d = 1 - c
    return _matrix([
        [x * x * d + c,     x * y * d - z * s, x * z * d + y * s, 0],
        [y * x * d + z * s, y * y * d + c,     y * z * d - x * s, 0],
        [z * x * d - y * s, z * y * d + x * s, z * z * d + c,     0],
        [0, 0, 0, 1]], device)

#----------------------------------------------------------------------------
# Random draws from an explicit generator; values are drawn on the generator's device and then moved.

def _rand(shape, generator, device):
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)

def _randn(shape, generator, device):
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device).to(device)

def _gate(values, identity, prob, generator, device):
    # Keep each sample's value with probability `prob`, else the identity value.
    keep = _rand([values.shape[0]] + [1] * (values.ndim - 1), generator, device) < prob
    return torch.where(keep, values, torch.full_like(values, identity))

#----------------------------------------------------------------------------
# Band-split filter bank for image-space filtering: four octave bands that sum to a unit impulse, built
# from a trous binomial low-passes (our own design). Returns [bands, taps] float64.

def _octave_filter_bank(num_bands=4):
    lowpasses = [np.array([1.0])]
    for level in range(num_bands - 1):
        kernel = np.zeros(2 ** (level + 1) + 1)
        kernel[[0, 2 ** level, 2 ** (level + 1)]] = [0.25, 0.5, 0.25]
        lowpasses.append(np.convolve(lowpasses[-1], kernel))
    taps = lowpasses[-1].size
    padded = [np.pad(lp, (taps - lp.size) // 2) for lp in lowpasses]
    bands = [padded[i] - padded[i + 1] for i in range(num_bands - 1)] + [padded[-1]]
    return np.stack(bands)

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    def __init__(self,
        xint_max=0.125, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125, # Geometric magnitudes.
        brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,           # Colour magnitudes.
        imgfilter_bands=None, imgfilter_std=1, noise_std=0.1, cutout_size=0.5,       # Other magnitudes.
        xflip       = 0,    # Probability multiplier for x-flip.
        rotate90    = 0,    # Probability multiplier for rotations by multiples of 90 degrees.
        xint        = 0,    # Probability multiplier for integer translation.
        scale       = 0,    # Probability multiplier for isotropic scaling (log2-normal, std scale_std).
        rotate      = 0,    # Probability multiplier for arbitrary rotation (uniform in +-rotate_max half-turns).
        aniso       = 0,    # Probability multiplier for anisotropic scaling.
        xfrac       = 0,    # Probability multiplier for fractional translation (normal, std xfrac_std of the size).
        brightness  = 0,    # Probability multiplier for brightness (additive, std brightness_std).
        contrast    = 0,    # Probability multiplier for contrast (log2-normal, std contrast_std).
        lumaflip    = 0,    # Probability multiplier for luma flip.
        hue         = 0,    # Probability multiplier for hue rotation (uniform in +-hue_max half-turns).
        saturation  = 0,    # Probability multiplier for saturation (log2-normal, std saturation_std).
        imgfilter   = 0,    # Probability multiplier for per-band amplification (log2-normal, std imgfilter_std).
        noise       = 0,    # Probability multiplier for additive Gaussian noise (std |N(0, noise_std)|).
        cutout      = 0,    # Probability multiplier for cutout (a zeroed square, side cutout_size of the image).
    ):
        super().__init__()
        imgfilter_bands = [1, 1, 1, 1] if imgfilter_bands is None else list(imgfilter_bands)
        settings = dict(
            xint_max=xint_max, scale_std=scale_std, rotate_max=rotate_max, aniso_std=aniso_std, xfrac_std=xfrac_std,
            brightness_std=brightness_std, contrast_std=contrast_std, hue_max=hue_max, saturation_std=saturation_std,
            imgfilter_bands=imgfilter_bands, imgfilter_std=imgfilter_std, noise_std=noise_std, cutout_size=cutout_size,
            xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac,
            brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
            imgfilter=imgfilter, noise=noise, cutout=cutout)
        for name, value in settings.items():
            setattr(self, name, value)
        if len(imgfilter_bands) != 4:
            raise ValueError(f'AugmentPipe: imgfilter_bands must have 4 entries, got {imgfilter_bands}')
        self.register_buffer('p', torch.zeros([]))                                   # Overall probability.
        self.register_buffer('Hz_geom', torch.tensor(SYM6, dtype=torch.float32))    # Resampling filter.
        self.register_buffer('Hz_fbank', torch.tensor(_octave_filter_bank(), dtype=torch.float32))

    def extra_repr(self):
        active = [k for k in ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast',
                              'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout') if getattr(self, k)]
        return 'ops=' + ','.join(active)

    def forward(self, images, debug_percentile=None, generator=None):
        """Augment a batch.

        Args:
            images:           [N, C, H, W] float images in [-1, 1]; C is 1 or 3 for colour ops.
            debug_percentile: None, or a float in [0, 1] that replaces every random draw (for visual checks).
            generator:        torch.Generator for every random draw (None: torch's global RNG).
        Returns:
            [N, C, H, W] augmented images (differentiable with respect to `images`).
        """
        if not (isinstance(images, torch.Tensor) and images.ndim == 4):
            raise ValueError(f'AugmentPipe: expected [N, C, H, W] images, got {getattr(images, "shape", type(images))}')
        draw = _Draw(generator, images.device, debug_percentile)
        p = float(self.p)
        images = self._blit(images, p, draw)
        images = self._geometric(images, p, draw)
        images = self._color(images, p, draw)
        images = self._filter(images, p, draw)
        images = self._noise_and_cutout(images, p, draw)
        return images

    #------------------------------------------------------------------------
    # Stage 1: exact pixel blitting. Each sample gets an integer 2x2 matrix and shift; output pixel (y, x)
    # reads input pixel A^-1 (y, x) - t with reflection at the borders.

    def _blit(self, images, p, draw):
        N, C, H, W = images.shape
        if not (self.xflip or self.rotate90 or self.xint) or p == 0:
            return images
        dev = images.device
        flip = draw.gated(draw.floor(N, 2), 0, self.xflip * p)              # [N] 0 or 1
        rot = draw.gated(draw.floor(N, 4), 0, self.rotate90 * p)            # [N] quarter turns
        shift = draw.gated((draw.uniform([N, 2]) * 2 - 1) * self.xint_max, 0, self.xint * p)
        tx = torch.round(shift[:, 0] * W).to(torch.int64)
        ty = torch.round(shift[:, 1] * H).to(torch.int64)
        if not (flip.any() or rot.any() or tx.any() or ty.any()):
            return images
        if rot.any() and H != W:
            raise ValueError(f'AugmentPipe: rotate90 needs square images, got {H}x{W}')

        # Centred pixel coordinates of every output pixel; undo translation, rotation, flip in reverse order.
        ys = torch.arange(H, device=dev, dtype=torch.float32) - (H - 1) / 2
        xs = torch.arange(W, device=dev, dtype=torch.float32) - (W - 1) / 2
        y = ys.view(1, H, 1).expand(N, H, W) - ty.view(N, 1, 1)
        x = xs.view(1, 1, W).expand(N, H, W) - tx.view(N, 1, 1)
        for _ in range(3): # Inverse rotation by -90 degrees per quarter turn, applied rot times.
            turn = (rot > _).view(N, 1, 1)
            x, y = torch.where(turn, y, x), torch.where(turn, -x, y)
        x = torch.where(flip.view(N, 1, 1) > 0, -x, x)
        iy = _reflect(torch.round(y + (H - 1) / 2).to(torch.int64), H)
        ix = _reflect(torch.round(x + (W - 1) / 2).to(torch.int64), W)
        flat = (iy * W + ix).view(N, 1, H * W).expand(N, C, H * W)
        return images.reshape(N, C, H * W).gather(2, flat).reshape(N, C, H, W)

    #------------------------------------------------------------------------
    # Stage 2: general geometric transformation as one inverse homography per sample.

    def _geometric(self, images, p, draw):
        N, C, H, W = images.shape
        if not (self.scale or self.rotate or self.aniso or self.xfrac) or p == 0:
            return images
        dev = images.device
        G_inv = torch.eye(3, device=dev).repeat(N, 1, 1)                   # [N, 3, 3]
        s = draw.gated(torch.exp2(draw.normal([N]) * self.scale_std), 1, self.scale * p)
        G_inv = G_inv @ scale2d(1 / s, 1 / s, dev)
        p_rot = 1 - math.sqrt(1 - min(max(self.rotate * p, 0), 1)) # Two rotations: P(any) = rotate * p.
        theta = draw.gated((draw.uniform([N]) * 2 - 1) * math.pi * self.rotate_max, 0, p_rot)
        G_inv = G_inv @ rotate2d(-theta, dev)
        s = draw.gated(torch.exp2(draw.normal([N]) * self.aniso_std), 1, self.aniso * p)
        G_inv = G_inv @ scale2d(1 / s, s, dev)
        theta = draw.gated((draw.uniform([N]) * 2 - 1) * math.pi * self.rotate_max, 0, p_rot)
        G_inv = G_inv @ rotate2d(-theta, dev)
        t = draw.gated(draw.normal([N, 2]) * self.xfrac_std, 0, self.xfrac * p)
        G_inv = G_inv @ translate2d(-t[:, 0] * W, -t[:, 1] * H, dev)
        if bool((G_inv == torch.eye(3, device=dev)).all()):
            return images
        return _resample(images, G_inv, self.Hz_geom)

    #------------------------------------------------------------------------
    # Stage 3: colour transformation as one 4x4 matrix on homogeneous RGB.

    def _color(self, images, p, draw):
        N, C, H, W = images.shape
        if not (self.brightness or self.contrast or self.lumaflip or self.hue or self.saturation) or p == 0:
            return images
        if C not in (1, 3):
            raise ValueError(f'AugmentPipe: colour augmentation needs 1 or 3 channels, got {C}')
        dev = images.device
        luma = np.ones(3) / np.sqrt(3)                                        # Unit luma axis.
        v = torch.tensor([*luma, 0], dtype=torch.float32, device=dev)
        vvT = torch.outer(v, v)                                               # [4, 4] projector on luma.
        I_4 = torch.eye(4, device=dev)
        M = I_4.repeat(N, 1, 1)                                               # [N, 4, 4]
        b = draw.gated(draw.normal([N]) * self.brightness_std, 0, self.brightness * p)
        M = translate3d(b, b, b, dev) @ M
        c = draw.gated(torch.exp2(draw.normal([N]) * self.contrast_std), 1, self.contrast * p)
        M = scale3d(c, c, c, dev) @ M
        if C == 3: # Luma flip, hue and saturation act within the colour plane; skipped for grayscale.
            i = draw.gated(draw.floor(N, 2), 0, self.lumaflip * p)
            M = (I_4 - 2 * vvT * i.view(N, 1, 1)) @ M
            theta = draw.gated((draw.uniform([N]) * 2 - 1) * math.pi * self.hue_max, 0, self.hue * p)
            M = rotate3d(luma, theta, dev) @ M
            s = draw.gated(torch.exp2(draw.normal([N]) * self.saturation_std), 1, self.saturation * p)
            M = (vvT + (I_4 - vvT) * s.view(N, 1, 1)) @ M
        if bool((M == I_4).all()):
            return images
        x = images.reshape(N, C, H * W)
        if C == 3:
            x = M[:, :3, :3] @ x + M[:, :3, 3:]
        else: # Grayscale: treat the pixel as (g, g, g) and average the three output rows.
            x = M[:, :3, :3].mean(dim=1, keepdim=True).sum(dim=2, keepdim=True) * x + M[:, :3, 3:].mean(dim=1, keepdim=True)
        return x.reshape(N, C, H, W)

    #------------------------------------------------------------------------
    # Stage 4: random per-band gains, renormalised to keep the expected power of white noise.

    def _filter(self, images, p, draw):
        N, C, H, W = images.shape
        if not self.imgfilter or p == 0:
            return images
        bands = self.Hz_fbank.to(images.dtype)                                # [B, T]
        power = bands.square().sum(dim=1)                                     # [B]
        active = torch.as_tensor(self.imgfilter_bands, dtype=images.dtype, device=images.device) > 0
        gains = torch.ones([N, bands.shape[0]], dtype=images.dtype, device=images.device)
        for i in range(bands.shape[0]):
            t = draw.gated(torch.exp2(draw.normal([N]) * self.imgfilter_std), 1, self.imgfilter * p)
            gains[:, i] = torch.where(active[i], t, torch.ones_like(t))
        if bool((gains == 1).all()):
            return images
        gains = gains / (gains.square() * power).sum(dim=1, keepdim=True).div(power.sum()).sqrt()
        taps = gains @ bands                                                  # [N, T]
        pad = taps.shape[1] // 2
        x = images.reshape(1, N * C, H, W)
        kernel = taps.repeat_interleave(C, dim=0)                             # [N*C, T]
        x = torch.nn.functional.pad(x, [pad, pad, 0, 0], mode='reflect')
        x = torch.nn.functional.conv2d(x, kernel.view(N * C, 1, 1, -1), groups=N * C)
        x = torch.nn.functional.pad(x, [0, 0, pad, pad], mode='reflect')
        x = torch.nn.functional.conv2d(x, kernel.view(N * C, 1, -1, 1), groups=N * C)
        return x.reshape(N, C, H, W)

    #------------------------------------------------------------------------
    # Stages 5 and 6: additive Gaussian noise and cutout.

    def _noise_and_cutout(self, images, p, draw):
        N, C, H, W = images.shape
        dev = images.device
        if self.noise and p > 0:
            sigma = draw.gated(draw.normal([N, 1, 1, 1]).abs() * self.noise_std, 0, self.noise * p)
            if bool((sigma != 0).any()):
                images = images + draw.normal([N, C, H, W]) * sigma
        if self.cutout and p > 0:
            size = draw.gated(torch.full([N, 1, 1, 1], float(self.cutout_size), device=dev), 0, self.cutout * p)
            centre = draw.uniform([N, 2, 1, 1])
            if bool((size != 0).any()):
                ys = ((torch.arange(H, device=dev) + 0.5) / H).view(1, 1, H, 1)
                xs = ((torch.arange(W, device=dev) + 0.5) / W).view(1, 1, 1, W)
                inside = ((xs - centre[:, 0:1]).abs() < size / 2) & ((ys - centre[:, 1:2]).abs() < size / 2)
                images = images * (~inside).to(images.dtype)
        return images

#----------------------------------------------------------------------------

class _Draw:
    """Random draws for one forward pass; debug_percentile replaces every draw by a fixed quantile."""

    def __init__(self, generator, device, debug_percentile=None):
        self.generator = generator
        self.device = device
        self.q = debug_percentile

    def uniform(self, shape):
        if self.q is not None:
            return torch.full(shape, float(self.q), device=self.device)
        return _rand(shape, self.generator, self.device)

    def normal(self, shape):
        if self.q is not None:
            return torch.full(shape, float(torch.erfinv(torch.tensor(self.q * 2 - 1.0)) * math.sqrt(2)), device=self.device)
        return _randn(shape, self.generator, self.device)

    def floor(self, n, k):
        # Uniform integers in [0, k) as float.
        return torch.floor(self.uniform([n]) * k).clamp(max=k - 1)

    def gated(self, values, identity, prob):
        if self.q is not None:
            return values if prob > 0 else torch.full_like(values, identity)
        return _gate(values, identity, prob, self.generator, self.device)

#----------------------------------------------------------------------------
# Reflection of integer indices into [0, size), mirroring about the edge pixel centres ("reflect" padding).

def _reflect(idx, size):
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= size, period - idx, idx)

#----------------------------------------------------------------------------
# Resampling by an inverse homography G_inv [N, 3, 3] that maps centred output coordinates (pixels) to
# centred input coordinates. Anti-aliased: 2x upsampling before and 2x downsampling after sampling.

def _resample(images, G_inv, Hz):
    N, C, H, W = images.shape
    dev = images.device

    # Find how far outside the image the transformed output corners reach; pad that much by reflection.
    corners = torch.tensor([[-W / 2, -H / 2, 1], [W / 2, -H / 2, 1], [W / 2, H / 2, 1], [-W / 2, H / 2, 1]], device=dev)
    src = (G_inv @ corners.t())[:, :2, :]                                 # [N, 2, 4]
    reach_x = float(src[:, 0].abs().max()) - W / 2
    reach_y = float(src[:, 1].abs().max()) - H / 2
    margin = Hz.shape[0] // 4 + 1 # Filter support in input pixels.
    pad_x = int(min(max(math.ceil(reach_x), 0) + margin, W - 1))
    pad_y = int(min(max(math.ceil(reach_y), 0) + margin, H - 1))
    x = torch.nn.functional.pad(images, [pad_x, pad_x, pad_y, pad_y], mode='reflect')
    Hp, Wp = H + 2 * pad_y, W + 2 * pad_x

    # Upsample 2x, then sample a 2x-resolution output grid; grid coordinates are normalised to the
    # padded, upsampled image (align_corners=False: -1 and +1 are its outer edges).
    f = upfirdn2d.setup_filter(Hz / Hz.sum(), device=dev)
    x = upfirdn2d.upsample2d(x=x, f=f, up=2)                              # [N, C, 2Hp, 2Wp]
    gy = (torch.arange(2 * H, device=dev, dtype=torch.float32) + 0.5) / 2 - H / 2
    gx = (torch.arange(2 * W, device=dev, dtype=torch.float32) + 0.5) / 2 - W / 2
    yy, xx = torch.meshgrid(gy, gx, indexing='ij')
    pts = torch.stack([xx, yy, torch.ones_like(xx)], dim=0).reshape(3, -1)  # [3, 4HW]
    src = G_inv @ pts                                                     # [N, 3, 4HW]
    grid_x = src[:, 0] / (Wp / 2)
    grid_y = src[:, 1] / (Hp / 2)
    grid = torch.stack([grid_x, grid_y], dim=2).reshape(N, 2 * H, 2 * W, 2)
    x = grid_sample_gradfix.grid_sample(x, grid.to(x.dtype))             # [N, C, 2H, 2W]
    x = upfirdn2d.downsample2d(x=x, f=f, down=2, flip_filter=True)        # [N, C, H, W]; flipped: delays cancel.
    misc.assert_shape(x, [N, C, H, W], 'augmented images')
    return x

#----------------------------------------------------------------------------
# Adaptive control of p (Karras et al. 2020, Sec. 3): every `interval` minibatches, move p by
# batch * interval / (ada_kimg * 1000) towards the side that brings r_t = E[sign(D(real))] to `target`.
# The sums are kept here, not in a global, so they can be saved and restored for an exact resume.

class AdaController:
    def __init__(self,
        augment_pipe,       # AugmentPipe whose p this controller adjusts.
        target      = 0.6,  # Target value of r_t.
        interval    = 4,    # Adjust every this many minibatches.
        kimg        = 500,  # Thousands of images for p to rise from 0 to 1 at full speed.
        batch_size  = 32,   # Total batch over all processes.
    ):
        self.augment_pipe = augment_pipe
        self.target = target
        self.interval = interval
        self.kimg = kimg
        self.batch_size = batch_size
        self.sums = torch.zeros([2], dtype=torch.float64) # [count, sum of signs] on this process.

    def accumulate(self, real_logits):
        signs = torch.sign(real_logits.detach()).flatten().to(torch.float64).cpu()
        self.sums += torch.stack([torch.tensor(float(signs.numel()), dtype=torch.float64), signs.sum()])

    def step(self, batch_idx):
        """Call after every minibatch with the number of minibatches done; returns r_t when p moved, else None."""
        if batch_idx % self.interval != 0:
            return None
        totals = self.sums.clone()
        if distributed.get_world_size() > 1:
            totals = totals.to(self.augment_pipe.p.device)
            torch.distributed.all_reduce(totals)
            totals = totals.cpu()
        self.sums.zero_()
        if totals[0] == 0:
            return None
        r_t = float(totals[1] / totals[0])
        adjust = np.sign(r_t - self.target) * self.batch_size * self.interval / (self.kimg * 1000)
        with torch.no_grad():
            self.augment_pipe.p.copy_((self.augment_pipe.p + adjust).clamp(min=0))
        return r_t

    def state_dict(self):
        return dict(sums=self.sums.clone(), p=self.augment_pipe.p.detach().cpu().clone())

    def load_state_dict(self, state):
        self.sums.copy_(state['sums'])
        with torch.no_grad():
            self.augment_pipe.p.copy_(state['p'])

#----------------------------------------------------------------------------
