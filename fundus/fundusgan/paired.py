# The paired image measures fundus.fundusgan uses, all from metrics/paired.py (LPIPS with offline
# VGG/AlexNet weights as a loss, SSIM of reconstruction pairs), with errors turned into FundusGANError.

import torch

from fundus.fundusgan import common
from metrics import paired as paired_metrics
from metrics.errors import DetectorError

#----------------------------------------------------------------------------

def lpips_model(net='vgg', device='cpu'):
    """LPIPS v0.1 module (frozen, shared per device): forward(x0, x1) on [-1, 1] images [N, 3, H, W] -> [N]."""
    try:
        return paired_metrics.load_lpips(net=net, device=device)
    except DetectorError as e:
        raise common.FundusGANError(str(e)) from None

def ssim(a, b):
    """SSIM of uint8 image pairs [N, 3, H, W] (Gaussian window 11, sigma 1.5) -> float64 [N]."""
    return paired_metrics.ssim(a.to(torch.float64) / 127.5 - 1, b.to(torch.float64) / 127.5 - 1)

def to_uint8(img):
    """[-1, 1] float images -> uint8 [N, C, H, W] with NVIDIA's rounding."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)

#----------------------------------------------------------------------------
