# Inversion and variants (filled below).

import torch

from fundus.fundusgan import common
from torch_utils import device as device_lib

def resolve_device(device):
    try:
        return str(device_lib.resolve_device(device))
    except device_lib.DeviceError as e:
        raise common.FundusGANError(str(e)) from None
