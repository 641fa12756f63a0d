# SSIM against scikit-image and MS-SSIM against pytorch-msssim, on the scikit-image retina photo.

import numpy as np
import pytest
import pytorch_msssim # Test-only oracle (requirements.txt).
import skimage.data
import skimage.metrics
import torch

from metrics import metric_main
from metrics import metric_utils
from metrics import ssim as ssim_lib
from tests.metrics import helpers

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def retina_pair():
    # A 256x256 crop around the optic disc and a perturbed copy (noise + brightness change).
    img = skimage.data.retina()[500:756, 900:1156] # [H, W, 3] uint8
    rng = np.random.default_rng(0)
    noisy = np.clip(img.astype(np.float64) * 0.9 + 12 + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    return img, noisy

def _chw(a):
    return torch.from_numpy(a.transpose(2, 0, 1).copy())

def test_ssim_equals_skimage(retina_pair):
    a, b = retina_pair
    ours = float(ssim_lib.ssim(_chw(a), _chw(b))[0])
    ref = skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                data_range=255, channel_axis=-1)
    assert ours == pytest.approx(ref, abs=1e-4)
    assert ours == pytest.approx(ref, abs=1e-9) # In fact equal to float64 rounding.
    assert 0.3 < ours < 0.95
    assert float(ssim_lib.ssim(_chw(a), _chw(a))[0]) == pytest.approx(1.0, abs=1e-12)

def test_ms_ssim_equals_pytorch_msssim(retina_pair):
    a, b = retina_pair
    x, y = _chw(a)[None].to(torch.float64), _chw(b)[None].to(torch.float64)
    ours = float(ssim_lib.ms_ssim(x, y)[0])
    ref = float(pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=True))
    assert ours == pytest.approx(ref, abs=1e-5) # The oracle builds its window in float32.
    single = float(pytorch_msssim.ssim(x, y, data_range=255))
    assert float(ssim_lib.ssim(x, y)[0]) == pytest.approx(single, abs=1e-5)

def test_ms_ssim_too_small():
    with pytest.raises(metric_utils.MetricError, match='larger than 160'):
        ssim_lib.ms_ssim(torch.zeros(1, 3, 128, 128), torch.zeros(1, 3, 128, 128))

def test_paired_ssim_metric_on_folders(tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 4, resolution=32, seed=1)
    same = metric_main.calc_metric('ssim', dataset_kwargs=helpers.folder_kwargs(reals), gen_dataset_kwargs=helpers.folder_kwargs(reals))
    assert same.results.ssim == pytest.approx(1.0, abs=1e-12) and same.results.ssim_num == 4
    other = helpers.write_folder(tmp_path / 'other', 4, resolution=32, seed=1, offset=40)
    shifted = metric_main.calc_metric('ssim', dataset_kwargs=helpers.folder_kwargs(reals), gen_dataset_kwargs=helpers.folder_kwargs(other))
    # Check one pair by hand against scikit-image.
    from metrics.image_folder import ImageFolder
    a, b = ImageFolder(other)[0][0], ImageFolder(reals)[0][0]
    ref = skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=0)
    assert float(ssim_lib.ssim(torch.from_numpy(a), torch.from_numpy(b))[0]) == pytest.approx(ref, abs=1e-9)
    assert shifted.results.ssim < 0.99

def test_paired_metric_count_mismatch(tmp_path):
    reals = helpers.write_folder(tmp_path / 'reals', 4, resolution=32)
    fewer = helpers.write_folder(tmp_path / 'fewer', 3, resolution=32)
    with pytest.raises(metric_utils.MetricError, match='same number of images'):
        metric_main.calc_metric('ssim', dataset_kwargs=helpers.folder_kwargs(reals), gen_dataset_kwargs=helpers.folder_kwargs(fewer))

#----------------------------------------------------------------------------
