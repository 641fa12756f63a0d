# Paired image metrics as plain functions on tensors, for callers outside the metric registry: the
# FundusGAN encoder (LPIPS as a training loss; SSIM / LPIPS / L2 of reconstruction pairs for validation)
# and anything else that holds two batches of images.
#
#   x, y:  float tensors [N, C, H, W] (C = 3 for LPIPS), values in the generator's range [-1, 1] unless a
#          function says otherwise; every function returns one value per pair, a tensor [N], and is
#          differentiable with respect to x and y (MS-SSIM's clamp at 0 has no gradient where a scale's
#          term is negative; its fractional powers have an infinite slope at 0).
#
# The maths is metrics/ssim.py (Wang et al., same constants as the ssim/msssim registry metrics) and
# metrics/lpips.py (LPIPS v0.1, weights from the offline packages, see docs/metrics.md).

import torch

from metrics import lpips as lpips_lib
from metrics import ssim as ssim_lib
from metrics.errors import MetricError

#----------------------------------------------------------------------------
# SSIM. SSIM is not shift-invariant: images are moved to [0, data_range] (x - low) before the constants
# C1 = (0.01 L)^2, C2 = (0.03 L)^2 apply. For x = u / 127.5 - 1 of 8-bit images u the result equals the
# ssim metric on u with L = 255 (SSIM is invariant to scaling images and L together).

def ssim(x, y, data_range=2.0, low=-1.0, win_size=11, sigma=1.5):
    """Per-pair SSIM [N] of float images [N, C, H, W] in [low, low + data_range]; 1 = identical."""
    return ssim_lib.ssim_tensors(_float(x, 'ssim') - low, _float(y, 'ssim') - low, data_range, win_size, sigma)

def ms_ssim(x, y, data_range=2.0, low=-1.0, win_size=11, sigma=1.5):
    """Per-pair MS-SSIM [N] (5 scales; the smaller side must exceed 160 px); same conventions as ssim()."""
    return ssim_lib.ms_ssim_tensors(_float(x, 'ms_ssim') - low, _float(y, 'ms_ssim') - low, data_range, win_size, sigma)

def mse(x, y):
    """Per-pair mean squared error [N] (the L2 reconstruction loss), in the units of x."""
    if x.shape != y.shape or x.ndim != 4:
        raise MetricError(f'mse needs two [N, C, H, W] tensors of one shape, got {list(x.shape)} and {list(y.shape)}')
    return (x - y).square().mean(dim=[1, 2, 3])

def _float(x, what):
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise MetricError(f'{what} needs float tensors (images in [-1, 1]); convert uint8 images with x / 127.5 - 1')
    return x

#----------------------------------------------------------------------------
# LPIPS. One frozen network per (backbone, device), built on first use and kept for the process: a loss
# called every training step must not rebuild VGG16. Callers must not modify the returned module (no
# .to(), .train() or requires_grad_ on it); ask load_lpips for another device instead.

_lpips_cache = dict() # (net, str(device)) -> lpips.LPIPS

def load_lpips(net='vgg', device='cpu'):
    """The LPIPS v0.1 module of backbone 'vgg' or 'alex' on `device`: forward(x, y) -> [N], usable as a loss."""
    key = (net, str(torch.device(device)))
    if key not in _lpips_cache:
        _lpips_cache[key] = lpips_lib.LPIPS(net=net).to(device)
    return _lpips_cache[key]

def lpips_distance(x, y, net='vgg', device=None):
    """Per-pair LPIPS [N] of float32 RGB images [N, 3, H, W] in [-1, 1]; 0 = identical, lower is closer.

    Args:
        x, y:   Images; gradients flow back to both.
        net:    'vgg' (the FundusGAN loss, PPL's backbone) or 'alex' (the lpips registry metric).
        device: Where the network runs; None = x's device.
    """
    x, y = _float(x, 'lpips_distance'), _float(y, 'lpips_distance')
    if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
        raise MetricError(f'lpips_distance needs two [N, 3, H, W] tensors of one shape, got {list(x.shape)} and {list(y.shape)}')
    model = load_lpips(net, x.device if device is None else device)
    return model(x.to(model.shift.device), y.to(model.shift.device))

def reset_for_tests():
    _lpips_cache.clear()

#----------------------------------------------------------------------------
