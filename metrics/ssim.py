# SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli, Bovik 2003) on 0-255 RGB images.
#
# SSIM: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, population (not sample)
# covariances, mean of the map over the valid region, then mean over the three colour channels. Equal to
# skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
# data_range=255, channel_axis=0). No MATLAB-style automatic downsampling.
# MS-SSIM: 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); contrast-structure term at
# scales 1-4, full SSIM at scale 5 (all clamped at 0); 2x2 average pooling between scales. Needs the
# smaller side > 160 px.

import torch

from metrics.errors import MetricError

MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#----------------------------------------------------------------------------

def gaussian_window(size=11, sigma=1.5):
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()

def _blur_valid(x, g):
    # Separable 'valid' Gaussian filtering of every channel: [N, C, H, W] -> [N, C, H-10, W-10].
    C = x.shape[1]
    k = g.to(x.dtype).to(x.device)
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat([C, 1, 1, 1]), groups=C)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat([C, 1, 1, 1]), groups=C)

def _ssim_terms(x, y, data_range, win, K=(0.01, 0.03)):
    # Per-channel mean of the SSIM map and of the contrast-structure map: [N, C] each.
    C1 = (K[0] * data_range) ** 2
    C2 = (K[1] * data_range) ** 2
    mu_x, mu_y = _blur_valid(x, win), _blur_valid(y, win)
    var_x = _blur_valid(x * x, win) - mu_x ** 2
    var_y = _blur_valid(y * y, win) - mu_y ** 2
    cov = _blur_valid(x * y, win) - mu_x * mu_y
    cs = (2 * cov + C2) / (var_x + var_y + C2)
    lum = (2 * mu_x * mu_y + C1) / (mu_x ** 2 + mu_y ** 2 + C1)
    return (lum * cs).mean(dim=[2, 3]), cs.mean(dim=[2, 3])

def _as_float(images):
    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x[None]
    return x.to(torch.float64)

def ssim(a, b, data_range=255, win_size=11, sigma=1.5):
    """SSIM of image pairs.

    Args:
        a, b:       uint8 or float images [N, C, H, W] (or [C, H, W]) in [0, data_range].
        data_range: L in the SSIM constants; 255 for 8-bit images.
        win_size:   Gaussian window size.
        sigma:      Gaussian window standard deviation.

    Returns:
        float64 tensor [N]: per-image SSIM averaged over channels.
    """
    return ssim_tensors(_as_float(a), _as_float(b), data_range, win_size, sigma)

def ms_ssim(a, b, data_range=255, win_size=11, sigma=1.5, weights=MS_WEIGHTS):
    """MS-SSIM of image pairs; same arguments as ssim(). Returns float64 tensor [N]."""
    return ms_ssim_tensors(_as_float(a), _as_float(b), data_range, win_size, sigma, weights)

#----------------------------------------------------------------------------
# The same on float tensors [N, C, H, W] of any float dtype and device, differentiable (metrics/paired.py
# uses them as training losses): computed in the inputs' dtype.

def _check_pair(x, y, what):
    if x.shape != y.shape:
        raise MetricError(f'{what} needs images of one shape, got {list(x.shape)} and {list(y.shape)}')
    if x.ndim != 4:
        raise MetricError(f'{what} needs images shaped [N, C, H, W], got {list(x.shape)}')

def ssim_tensors(x, y, data_range, win_size=11, sigma=1.5):
    """Per-image SSIM [N] of float images [N, C, H, W] in [0, data_range]."""
    _check_pair(x, y, 'SSIM')
    if min(x.shape[2:]) < win_size:
        raise MetricError(f'SSIM needs images of at least {win_size}x{win_size} pixels, got {x.shape[3]}x{x.shape[2]}')
    s, _cs = _ssim_terms(x, y, data_range, gaussian_window(win_size, sigma))
    return s.mean(dim=1)

def ms_ssim_tensors(x, y, data_range, win_size=11, sigma=1.5, weights=MS_WEIGHTS):
    """Per-image MS-SSIM [N] of float images [N, C, H, W] in [0, data_range]."""
    _check_pair(x, y, 'MS-SSIM')
    min_side = (win_size - 1) * 2 ** (len(weights) - 1)
    if min(x.shape[2:]) <= min_side:
        raise MetricError(f'MS-SSIM needs images larger than {min_side} px on the smaller side, got {x.shape[3]}x{x.shape[2]}')
    win = gaussian_window(win_size, sigma)
    w = torch.tensor(weights, dtype=x.dtype, device=x.device)
    values = []
    for scale in range(len(weights)):
        s, cs = _ssim_terms(x, y, data_range, win)
        values.append(torch.relu(cs if scale < len(weights) - 1 else s))
        if scale < len(weights) - 1:
            padding = [x.shape[2] % 2, x.shape[3] % 2] # Odd sizes pool with one padded row/column.
            x = torch.nn.functional.avg_pool2d(x, 2, padding=padding)
            y = torch.nn.functional.avg_pool2d(y, 2, padding=padding)
    stacked = torch.stack(values, dim=0) # [scales, N, C]
    return torch.prod(stacked ** w[:, None, None], dim=0).mean(dim=1)

#----------------------------------------------------------------------------
