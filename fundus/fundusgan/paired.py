# The one place fundus.fundusgan reaches into the metrics package for paired image measures (LPIPS with
# offline VGG/AlexNet weights, SSIM). When metrics/ gains its paired-metrics module, only the imports
# and the three functions below change.

import torch

from fundus.fundusgan import common
from metrics import detectors
from metrics import lpips as lpips_lib
from metrics import ssim as ssim_lib

#----------------------------------------------------------------------------

def lpips_model(net='vgg', device='cpu'):
    """LPIPS v0.1 module (frozen): forward(x0, x1) on [-1, 1] images [N, 3, H, W] -> [N]."""
    try:
        return lpips_lib.LPIPS(net=net).to(device)
    except detectors.DetectorError as e:
        raise common.FundusGANError(str(e)) from None

def ssim(a, b):
    """SSIM of uint8 image pairs [N, 3, H, W] (Gaussian window 11, sigma 1.5) -> float64 [N]."""
    return ssim_lib.ssim(a, b)

def to_uint8(img):
    """[-1, 1] float images -> uint8 [N, C, H, W] with NVIDIA's rounding."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)

#----------------------------------------------------------------------------
