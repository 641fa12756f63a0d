# Equivariance metrics of StyleGAN3 (Karras et al. 2021, Section 4 and Appendix E): EQ-T (integer and
# fractional translation) and EQ-R (rotation), as the PSNR between the generator's output for a transformed
# input grid and the correspondingly transformed reference image, inside the region where the reference
# is valid. Needs a generator exposing G.synthesis.input.transform (a 3x3 buffer).
#
# Coordinates: translations are fractions of the image size; x is the column (width) axis.

import math

import numpy as np
import torch

from metrics import metric_utils

#----------------------------------------------------------------------------
# Windowed sinc helpers.

def sinc(x):
    """sin(pi x) / (pi x), equal to 1 at x = 0."""
    y = (x * math.pi).abs()
    return torch.where(y < 1e-30, torch.ones_like(x), torch.sin(y) / y.clamp(min=1e-30))

def lanczos_window(x, a):
    return torch.where(x.abs() < a, sinc(x / a), torch.zeros_like(x))

def lanczos_taps(frac, a=3):
    """Normalised 2a taps for source offsets k = -(a-1) .. a at fractional position `frac`."""
    k = torch.arange(-(a - 1), a + 1, dtype=torch.float64)
    taps = sinc(k - frac) * sinc((k - frac) / a)
    return (taps / taps.sum()).to(torch.float32)

def translation_matrix(t):
    return torch.tensor([[1, 0, float(t[0])], [0, 1, float(t[1])], [0, 0, 1]], dtype=torch.float32)

def rotation_matrix(angle):
    c, s = math.cos(float(angle)), math.sin(float(angle))
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float32)

#----------------------------------------------------------------------------
# Integer translation: z(x) = x_orig(x - t), valid where the source pixel exists.

def _axis_range(shift, size):
    # Output indices o with 0 <= o - shift < size.
    return max(shift, 0), min(size + shift, size)

def translate_integer(x, tx, ty):
    """Shift [N, C, H, W] by round(tx W), round(ty H) pixels; returns (image, mask)."""
    _N, _C, H, W = x.shape
    ix, iy = int(round(tx * W)), int(round(ty * H))
    z = torch.zeros_like(x)
    m = torch.zeros_like(x)
    x0, x1 = _axis_range(ix, W)
    y0, y1 = _axis_range(iy, H)
    if x0 < x1 and y0 < y1:
        z[:, :, y0:y1, x0:x1] = x[:, :, y0 - iy:y1 - iy, x0 - ix:x1 - ix]
        m[:, :, y0:y1, x0:x1] = 1
    return z, m

#----------------------------------------------------------------------------
# Fractional translation with a separable Lanczos-3 interpolator. Output pixel o reads source pixels
# o - i - k for k = -(a-1) .. a (i = floor(shift)); it is valid when all of them lie inside the image.

def _shift_axis(x, dim, shift, a):
    size = x.shape[dim]
    i = math.floor(shift)
    taps = lanczos_taps(shift - i, a).to(x.device, x.dtype)
    pad = abs(i) + a + 1
    padded = torch.nn.functional.pad(x.movedim(dim, -1), [pad, pad]).movedim(-1, dim)
    out = torch.zeros_like(x)
    for j, k in enumerate(range(-(a - 1), a + 1)):
        start = pad - i - k # Source index of output 0 in padded coordinates.
        out = out + taps[j] * padded.narrow(dim, start, size)
    lo, hi = max(i + a, 0), min(size + i - (a - 1), size)
    return out, lo, hi

def translate_fractional(x, tx, ty, a=3):
    """Shift [N, C, H, W] by (tx W, ty H) pixels with Lanczos interpolation; returns (image, mask)."""
    z, x0, x1 = _shift_axis(x, 3, tx * x.shape[3], a)
    z, y0, y1 = _shift_axis(z, 2, ty * x.shape[2], a)
    m = torch.zeros_like(x)
    if x0 < x1 and y0 < y1:
        m[:, :, y0:y1, x0:x1] = 1
    return z * m, m

#----------------------------------------------------------------------------
# Rotation: an oriented band-limiting filter (the convolution of an input-aligned and an output-aligned
# 2-D sinc, windowed by the convolution of the matching Lanczos windows), 4x upsampling with it, then
# bilinear resampling on the rotated grid.

def _centred_coords(aflt, up):
    n = aflt * up * 2 - 1
    return (torch.arange(n, dtype=torch.float32) - (aflt * up - 1)) / up # Odd length, 0 in the middle.

def _circular_conv2d(a, b):
    return torch.fft.ifftn(torch.fft.fftn(a) * torch.fft.fftn(b)).real

def bandlimit_filter(mat, a=3, amax=16, aflt=64, up=4, cutoff_in=1, cutoff_out=1):
    """Filter [2 amax up - 1]^2 for resampling through the 2x2 part of `mat`; each of the up^2 phases sums to 1/up^2."""
    assert a <= amax < aflt
    mat = torch.as_tensor(mat, dtype=torch.float32)
    u = _centred_coords(aflt, up)
    yi, xi = torch.meshgrid(u, u, indexing='ij')
    xo = mat[0, 0] * xi + mat[0, 1] * yi
    yo = mat[1, 0] * xi + mat[1, 1] * yi

    # Convolve on FFT layout (zero coordinate at index 0), then move the zero back to the middle.
    to_fft = lambda t: torch.fft.ifftshift(t)
    f = _circular_conv2d(to_fft(sinc(xi * cutoff_in) * sinc(yi * cutoff_in)), to_fft(sinc(xo * cutoff_out) * sinc(yo * cutoff_out)))
    w = _circular_conv2d(to_fft(lanczos_window(xi, a) * lanczos_window(yi, a)), to_fft(lanczos_window(xo, a) * lanczos_window(yo, a)))
    f = torch.fft.fftshift(f * w)

    # Crop to +-amax input pixels and normalise each polyphase component.
    c = (aflt - amax) * up
    f = f[c:f.shape[0] - c, c:f.shape[1] - c].clone()
    for py in range(up):
        for px in range(up):
            f[py::up, px::up] /= f[py::up, px::up].sum() * up * up
    return f

def _conv_same_size_valid(x, f):
    # True 2-D convolution ('valid') of every channel with f.
    C = x.shape[1]
    weight = f.flip([0, 1])[None, None].repeat([C, 1, 1, 1]).to(x.dtype)
    return torch.nn.functional.conv2d(x, weight, groups=C)

def upsample_filtered(x, f, up, p):
    """Zero-insertion upsampling by `up`, then convolution with f; output size up*W + 2p (NVIDIA's upsample2d padding)."""
    N, C, H, W = x.shape
    fw = f.shape[0]
    u = torch.zeros([N, C, H * up, W * up], dtype=x.dtype, device=x.device)
    u[:, :, ::up, ::up] = x
    lo = p + (fw + up - 1) // 2
    hi = p + (fw - up) // 2
    u = torch.nn.functional.pad(u, [lo, hi, lo, hi])
    return _conv_same_size_valid(u, f.to(x.device)) * (up * up)

def _sampling_grid(mat, N, C, H, W, up, p, device):
    # Output pixel X (normalised [-1, 1] coordinates) reads the original image at mat^-1 X (translation
    # doubled to normalised units), expressed in the upsampled image, which is offset by half an upsampled
    # pixel and extends p / up original pixels beyond each border.
    inv = torch.linalg.inv(mat.to(torch.float64))
    inv[:2, 2] *= 2
    inv[0, 2] += 1 / (up * W)
    inv[1, 2] += 1 / (up * H)
    inv[0, :] *= W / (W + 2 * p / up)
    inv[1, :] *= H / (H + 2 * p / up)
    theta = inv[:2, :].to(torch.float32).unsqueeze(0).repeat([N, 1, 1]).to(device)
    return torch.nn.functional.affine_grid(theta, [N, C, H, W], align_corners=False)

def apply_affine(x, mat, up=4, **filter_kwargs):
    """Resample [N, C, H, W] through the affine `mat`; returns (image, mask)."""
    N, C, H, W = x.shape
    mat = torch.as_tensor(mat, dtype=torch.float32)
    f = bandlimit_filter(mat, up=up, **filter_kwargs)
    p = f.shape[0] // 2
    grid = _sampling_grid(mat, N, C, H, W, up, p, x.device)
    y = upsample_filtered(x, f, up, p)
    warped = torch.nn.functional.grid_sample(y, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    valid = torch.nn.functional.grid_sample(_inner_ones(y, margin=2 * p + 1), grid, mode='nearest', padding_mode='zeros', align_corners=False)
    return warped, valid

def _inner_ones(like, margin):
    # Ones on the upsampled pixels at least `margin` (one filter width) away from the border, zeros on the border.
    inner = torch.ones_like(like[:, :, margin:-margin, margin:-margin])
    return torch.nn.functional.pad(inner, [margin, margin, margin, margin])

def rotate_fractional(x, angle, a=3, **filter_kwargs):
    return apply_affine(x, rotation_matrix(angle), a=a, amax=a * 2, **filter_kwargs)

def pseudo_rotate(x, angle, a=3, **filter_kwargs):
    """The same band-limiting at up = 1 without resampling, applied to the generator output."""
    f = bandlimit_filter(rotation_matrix(-angle), a=a, amax=a * 2, up=1, **filter_kwargs).to(x.device, x.dtype)
    c = f.shape[0] // 2
    y = _conv_same_size_valid(torch.nn.functional.pad(x, [c, c, c, c]), f)
    m = torch.zeros_like(y)
    m[:, :, c:-c, c:-c] = 1
    return y, m

#----------------------------------------------------------------------------

def psnr_from_mse(mse):
    """PSNR for images in [-1, 1] (peak-to-peak 2); infinite for a perfect match."""
    if mse <= 0:
        return float('inf')
    return float(20 * np.log10(2) - 10 * np.log10(mse))

def compute_equivariance_metric(opts, num_samples, batch_size, translate_max=0.125, rotate_max=1,
                                compute_eqt_int=False, compute_eqt_frac=False, compute_eqr=False):
    """PSNR (dB) of one equivariance kind, pooled over `num_samples` generated images (one transform per batch)."""
    assert compute_eqt_int + compute_eqt_frac + compute_eqr == 1
    G = opts.G
    if G is None or not hasattr(getattr(getattr(G, 'synthesis', None), 'input', None), 'transform'):
        raise metric_utils.MetricError('Cannot compute equivariance metrics: the generator has no synthesis.input.transform (a StyleGAN3 generator is needed)')
    labels = metric_utils.dataset_labels(opts, G.c_dim)
    synth_kwargs = {k: v for k, v in opts.G_kwargs.items() if k not in ('truncation_psi', 'truncation_cutoff')}
    map_kwargs = {k: v for k, v in opts.G_kwargs.items() if k in ('truncation_psi', 'truncation_cutoff')}
    transform = G.synthesis.input.transform
    saved = transform.detach().clone()
    err_sum, mask_sum = 0.0, 0.0
    res = G.img_resolution
    try:
        with torch.no_grad(), metric_utils.restored_noise_const(G):
            for lo in range(opts.rank * batch_size, num_samples, batch_size * opts.num_gpus):
                indices = range(lo, min(lo + batch_size, num_samples))
                rng = np.random.default_rng([opts.seed, 3, lo]) # Per batch: the same draws for any number of processes.
                z, c = metric_utils.make_generator_inputs(indices, opts.seed, G.z_dim, G.c_dim, labels, opts.device)
                metric_utils.randomize_noise_const(G, rng)
                ws = G.mapping(z, c, **map_kwargs)
                transform.copy_(torch.eye(3))
                orig = G.synthesis(ws, noise_mode='const', **synth_kwargs)

                # Draw one transform for the batch, run G through it, and transform the reference to match.
                if compute_eqr:
                    angle = (rng.random() * 2 - 1) * math.pi * rotate_max
                    transform.copy_(rotation_matrix(-angle))
                    img = G.synthesis(ws, noise_mode='const', **synth_kwargs)
                    ref, ref_mask = rotate_fractional(orig, angle)
                    img, img_mask = pseudo_rotate(img, angle)
                    mask = ref_mask * img_mask
                else:
                    t = (rng.random(2) * 2 - 1) * translate_max
                    if compute_eqt_int:
                        t = np.round(t * res) / res
                    transform.copy_(translation_matrix(-t))
                    img = G.synthesis(ws, noise_mode='const', **synth_kwargs)
                    shift = translate_integer if compute_eqt_int else translate_fractional
                    ref, mask = shift(orig, t[0], t[1])
                err_sum += float((((ref.to(torch.float64) - img.to(torch.float64)) ** 2) * mask).sum())
                mask_sum += float(mask.to(torch.float64).sum())
    finally:
        transform.copy_(saved)
    if opts.num_gpus > 1:
        import torch.distributed as dist # Only for multi-process runs.
        sums = torch.tensor([err_sum, mask_sum], dtype=torch.float64, device=opts.device)
        dist.all_reduce(sums)
        err_sum, mask_sum = float(sums[0]), float(sums[1])
    if mask_sum == 0:
        raise metric_utils.MetricError('equivariance: the valid region is empty (image too small for the reference filters)')
    return psnr_from_mse(err_sum / mask_sum)

#----------------------------------------------------------------------------
