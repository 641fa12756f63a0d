# SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli, Bovik 2003) on 0-255 RGB images.
#
# SSIM: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, population (not sample)
# covariances, mean of the map over the valid region, then mean over the three colour channels. Equal to
# skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
# data_range=255, channel_axis=0). No MATLAB-style automatic downsampling.
# MS-SSIM: 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); contrast-structure term at
# scales 1-4, full SSIM at scale 5 (all clamped at 0); 2x2 average pooling between scales. Needs the
# smaller side > 160 px.

import numpy as np
import torch

from metrics import metric_utils

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
    x, y = _as_float(a), _as_float(b)
    if x.shape != y.shape:
        raise metric_utils.MetricError(f'SSIM needs images of one shape, got {list(x.shape)} and {list(y.shape)}')
    if min(x.shape[2:]) < win_size:
        raise metric_utils.MetricError(f'SSIM needs images of at least {win_size}x{win_size} pixels, got {x.shape[3]}x{x.shape[2]}')
    s, _cs = _ssim_terms(x, y, data_range, gaussian_window(win_size, sigma))
    return s.mean(dim=1)

def ms_ssim(a, b, data_range=255, win_size=11, sigma=1.5, weights=MS_WEIGHTS):
    """MS-SSIM of image pairs; same arguments as ssim(). Returns float64 tensor [N]."""
    x, y = _as_float(a), _as_float(b)
    if x.shape != y.shape:
        raise metric_utils.MetricError(f'MS-SSIM needs images of one shape, got {list(x.shape)} and {list(y.shape)}')
    min_side = (win_size - 1) * 2 ** (len(weights) - 1)
    if min(x.shape[2:]) <= min_side:
        raise metric_utils.MetricError(f'MS-SSIM needs images larger than {min_side} px on the smaller side, got {x.shape[3]}x{x.shape[2]}')
    win = gaussian_window(win_size, sigma)
    w = torch.tensor(weights, dtype=torch.float64)
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
# Paired metric: the i-th generated image (sorted file names) against the i-th real image.

def iterate_pairs(opts, batch_size=16):
    if opts.gen_dataset_kwargs is None:
        raise metric_utils.MetricError('paired metrics (ssim, msssim, lpips) compare two folders: give --images=DIR and --data=DIR with matching files')
    real = metric_utils.construct_dataset(opts.dataset_kwargs)
    gen = metric_utils.construct_dataset(opts.gen_dataset_kwargs)
    if len(real) != len(gen):
        raise metric_utils.MetricError(f'paired metrics need the same number of images: --data has {len(real)}, --images has {len(gen)}')
    a = metric_utils.iterate_dataset_images(opts, gen, len(gen), batch_size, desc='generated')
    b = metric_utils.iterate_dataset_images(opts, real, len(real), batch_size, desc='real')
    for x, y in zip(a, b):
        if x.shape != y.shape:
            raise metric_utils.MetricError(f'paired metrics need images of one size: generated {list(x.shape[1:])}, real {list(y.shape[1:])}')
        yield x, y

def compute_paired(opts, multiscale):
    fn = ms_ssim if multiscale else ssim
    values = torch.cat([fn(x, y) for x, y in iterate_pairs(opts)]).numpy()
    name = 'msssim' if multiscale else 'ssim'
    return {name: float(np.mean(values)), f'{name}_std': float(np.std(values)), f'{name}_num': int(len(values))}

#----------------------------------------------------------------------------
