# Shared pieces of the integration tests: a phantom dataset zip made by dataset_tool.py, the fake
# detector registered for a block of code, and an FID oracle that shares no code with metrics/.

import contextlib
import io
import zipfile

import numpy as np
import PIL.Image
import scipy.linalg
from click.testing import CliRunner

from metrics import detectors
from tests.support.fake_detector import FakeDetector

#----------------------------------------------------------------------------

def phantom_zip(path, num_images, resolution=16):
    """A labelled phantom fundus zip built by dataset_tool.py's command line; returns its path."""
    import dataset_tool
    result = CliRunner().invoke(dataset_tool.main, [f'--source=phantom:{num_images}', f'--dest={path}', f'--resolution={resolution}x{resolution}'])
    assert result.exit_code == 0, result.output
    return str(path)

@contextlib.contextmanager
def fake_inception(**kwargs):
    """Within the block, every 'inception' detector the metrics load is a FakeDetector(**kwargs)."""
    fake = FakeDetector(**kwargs)
    detectors.register_detector('inception', lambda _device: fake)
    try:
        yield fake
    finally:
        detectors.register_detector('inception', None)

def cap_fid_samples(monkeypatch, num_gen):
    """FID metrics generate `num_gen` images instead of the thousands their name asks for (fidNk_full)."""
    from metrics import frechet_inception_distance as fid_module
    compute_fid = fid_module.compute_fid
    monkeypatch.setattr(fid_module, 'compute_fid', lambda opts, max_real, **kw: compute_fid(opts, max_real, **dict(kw, num_gen=num_gen)))

#----------------------------------------------------------------------------
# Oracle: images read straight from the zip with PIL, statistics and FID in float64 with NumPy/SciPy.

def zip_images(path):
    """uint8 [N, 3, H, W] of every PNG in the zip, in sorted member order."""
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith('.png'))
        images = [np.asarray(PIL.Image.open(io.BytesIO(z.read(n))).convert('RGB')) for n in names]
    return np.stack(images).transpose(0, 3, 1, 2)

def fid_from_features(a, b):
    """FID with NVIDIA's biased (divide by N) covariances."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = (a - mu_a).T @ (a - mu_a) / len(a)
    cov_b = (b - mu_b).T @ (b - mu_b) / len(b)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(np.square(mu_a - mu_b).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))

#----------------------------------------------------------------------------
