# Closed-form and published test vectors for FID, KID, IS and precision/recall (facts/metrics.md section 7).

import warnings

import numpy as np
import pytest

from metrics import frechet_inception_distance as fid_lib
from metrics import inception_score
from metrics import kernel_inception_distance as kid_lib
from metrics import metric_utils
from metrics import precision_recall

#----------------------------------------------------------------------------

def _stream():
    # Vectors C, D, E, F share one RandomState(0) stream, in that order.
    rs = np.random.RandomState(0)
    A = rs.randn(64, 64) / 8
    X = rs.randn(2000, 64)
    Y = rs.randn(2000, 64) @ A + 0.1
    Xs = rs.randn(100, 256)
    Ys = rs.randn(100, 256) * 1.2 + 0.05
    Xk = rs.randn(500, 2048)
    Yk = rs.randn(500, 2048) * 1.1 + 0.02
    logits = rs.randn(1000, 1008) * 3
    return dict(X=X, Y=Y, Xs=Xs, Ys=Ys, Xk=Xk, Yk=Yk, logits=logits)

@pytest.fixture(scope='module')
def stream():
    return _stream()

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_fid_vector_a_identity_covariances_2048():
    d = 2048 # sqrtm of a 2048x2048 matrix takes 10-20 s on a shared 2-core CPU.
    assert fid_lib.fid_from_stats(np.zeros(d), np.eye(d), np.ones(d), np.eye(d)) == pytest.approx(2048.0, abs=1e-6)

@pytest.mark.parametrize('method', ['sqrtm', 'eigh'])
def test_fid_vector_a_identity_covariances_small(method):
    d = 128 # Same closed form as vector A: FID = d.
    assert fid_lib.fid_from_stats(np.zeros(d), np.eye(d), np.ones(d), np.eye(d), method=method) == pytest.approx(d, abs=1e-8)

def test_fid_vector_b_diagonal():
    mu2 = np.array([1.0, 2, 3, 4])
    fid = fid_lib.fid_from_stats(np.zeros(4), np.diag([1.0, 2, 3, 4]), mu2, np.diag([4.0, 3, 2, 1]))
    assert fid == pytest.approx(42 - 4 * np.sqrt(6), abs=1e-9)
    assert fid == pytest.approx(32.202041028867285, abs=1e-9)

def test_fid_vector_c_biased_and_unbiased(stream):
    X, Y = stream['X'], stream['Y']
    assert fid_lib.fid_from_features(X, Y) == pytest.approx(19.8941440939, abs=1e-8)
    unbiased = fid_lib.fid_from_stats(X.mean(0), np.cov(X, rowvar=False), Y.mean(0), np.cov(Y, rowvar=False))
    assert unbiased == pytest.approx(19.9037397489, abs=1e-8)
    assert fid_lib.fid_from_features(X, Y, method='eigh') == pytest.approx(19.8941440939, abs=1e-8)

def test_fid_vector_d_singular_no_warning(stream):
    Xs, Ys = stream['Xs'], stream['Ys']
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)
        fid = fid_lib.fid_from_stats(Xs.mean(0), np.cov(Xs, rowvar=False), Ys.mean(0), np.cov(Ys, rowvar=False))
    # rank 99 of 256: 157 zero eigenvalues, sqrtm error <= 2*157*sqrt(256*eps*|Sg||Sr|) = 5.9e-4 (spread over row orders 1e-6).
    assert fid == pytest.approx(322.717753608531, abs=6e-4)
    eig = fid_lib.fid_from_stats(Xs.mean(0), np.cov(Xs, rowvar=False), Ys.mean(0), np.cov(Ys, rowvar=False), method='eigh')
    assert eig == pytest.approx(322.71775375612845, abs=6e-4) # Same bound: clip + sqrt of the 157 near-zero eigenvalues.

def test_fid_properties():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 16)) @ rng.standard_normal((16, 16))
    assert abs(fid_lib.fid_from_features(x, x)) < 1e-8
    y = x + np.arange(16) * 0.1  # Same covariance, shifted mean: FID = |dmu|^2.
    assert fid_lib.fid_from_features(x, y) == pytest.approx(float(np.sum((np.arange(16) * 0.1) ** 2)), abs=1e-8)
    z = rng.standard_normal((500, 16)) * 2
    assert fid_lib.fid_from_features(x, z) == pytest.approx(fid_lib.fid_from_features(z, x), rel=1e-8)

def test_kid_vector_e(stream):
    Xk, Yk = stream['Xk'], stream['Yk']
    kid = kid_lib.kid_from_features(Yk, Xk, num_subsets=3, max_subset_size=1000, rng=0)
    assert kid == pytest.approx(0.000928907774, abs=1e-11)
    kid32 = kid_lib.kid_from_features(Yk.astype(np.float32), Xk.astype(np.float32), num_subsets=2, rng=0)
    # float32 sums: one ulp of a per-subset term (~500, ulp 2^-15) is 3e-8 of KID; measured 2 ulp over dot-product orders.
    assert kid32 == pytest.approx(0.000928894035, abs=3e-7)

def test_kid_unbiased_on_identical_distributions():
    # Over many independent pairs of sets from one distribution the estimates average to zero within
    # their standard error, whereas the biased (V-statistic) estimate is clearly positive.
    rng = np.random.default_rng(3)
    d, m, trials = 8, 100, 40
    unbiased, biased = [], []
    for _ in range(trials):
        x = rng.standard_normal((m, d))
        y = rng.standard_normal((m, d))
        unbiased.append(kid_lib.kid_from_features(x, y, num_subsets=1, rng=0))
        k = lambda a, b: (a @ b.T / d + 1) ** 3
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    sem = np.std(unbiased) / np.sqrt(trials)
    assert abs(np.mean(unbiased)) < 3 * sem
    assert np.mean(biased) > 10 * sem
    shifted = kid_lib.kid_from_features(x, y + 0.5, num_subsets=1, rng=0)
    assert shifted > 10 * np.std(unbiased)

def test_kid_too_few_images():
    with pytest.raises(metric_utils.MetricError, match='at least 2'):
        kid_lib.kid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))

def test_is_vector_f(stream):
    mean, std = inception_score.is_from_probs(np.full((1000, 1008), 1 / 1008), num_splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std < 1e-12
    logits = stream['logits']
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    mean, std = inception_score.is_from_probs(probs, num_splits=10)
    assert mean == pytest.approx(21.207440839688147, rel=1e-10)
    assert std == pytest.approx(1.1998570202931633, rel=1e-8)

def test_pr_vector_g():
    real = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]], dtype=np.float32)
    fake = np.array([[0.5, 0.4], [3, 3], [0.9, 0.1], [-2, 0]], dtype=np.float32)
    precision, recall = precision_recall.pr_from_features(real, fake, nhood_size=3)
    assert precision == 0.5
    assert recall == 1.0

def test_pr_identical_sets_and_small_batches():
    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    assert precision_recall.pr_from_features(x, x, nhood_size=3, row_batch_size=64, col_batch_size=50) == (1.0, 1.0)
    precision, recall = precision_recall.pr_from_features(x, x + 100, nhood_size=3)
    assert precision == 0.0 and recall == 0.0

#----------------------------------------------------------------------------
