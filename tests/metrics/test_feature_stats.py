# FeatureStats streaming moments against numpy on the full array.

import numpy as np
import pytest

from metrics import metric_utils

#----------------------------------------------------------------------------

def test_streaming_equals_numpy_biased():
    x = np.random.default_rng(0).standard_normal((257, 12)).astype(np.float32) * 3 + 1
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True)
    for lo in range(0, 257, 50):
        stats.append(x[lo:lo + 50])
    mean, cov = stats.get_mean_cov()
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False, bias=True), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(stats.get_all(), x)
    assert stats.num_items == 257

def test_max_items_truncates():
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=70)
    for _ in range(4):
        stats.append(np.ones((30, 3)))
    assert stats.num_items == 70 and stats.get_all().shape == (70, 3) and stats.is_full()

def test_save_load_roundtrip(tmp_path):
    x = np.random.default_rng(1).standard_normal((40, 5))
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True)
    stats.append(x)
    stats.save(tmp_path / 's.npz')
    loaded = metric_utils.FeatureStats.load(tmp_path / 's.npz')
    np.testing.assert_array_equal(loaded.get_all(), stats.get_all())
    for a, b in zip(loaded.get_mean_cov(), stats.get_mean_cov()):
        np.testing.assert_array_equal(a, b)

def test_feature_size_change_is_an_error():
    stats = metric_utils.FeatureStats(capture_mean_cov=True)
    stats.append(np.zeros((2, 3)))
    with pytest.raises(metric_utils.MetricError, match='feature size'):
        stats.append(np.zeros((2, 4)))

#----------------------------------------------------------------------------
