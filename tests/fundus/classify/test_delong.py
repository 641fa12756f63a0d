# DeLong AUC variance, CI and paired test: the sorted-placement implementation against the O(m n)
# definition of DeLong et al. (1988), against scikit-learn's AUC, and on closed-form edge cases.

import os

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from fundus.classify import stats

#----------------------------------------------------------------------------

def _definition(y, rows):
    # DeLong et al. 1988, eqs. for V10, V01, S10, S01 written straight from psi(x, y) = 1 / 0.5 / 0.
    y = np.asarray(y, bool)
    v10, v01 = [], []
    for s in rows:
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])        # [m, n]
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - v10.mean(1, keepdims=True)) @ (v10 - v10.mean(1, keepdims=True)).T / (m - 1)
    s01 = (v01 - v01.mean(1, keepdims=True)) @ (v01 - v01.mean(1, keepdims=True)).T / (n - 1)
    return v10.mean(axis=1), s10 / m + s01 / n

def _data(seed, n=60, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    a = rng.normal(size=n) + 1.0 * y
    b = 0.6 * a + rng.normal(size=n) * 0.8 + 0.3 * y
    if ties:
        a, b = np.round(a), np.round(b * 2) / 2                                 # Many tied scores.
    return y, a, b

@pytest.mark.parametrize('seed,ties', [(0, False), (1, True), (2, False), (3, True)])
def test_matches_definition_and_sklearn(seed, ties):
    y, a, b = _data(seed, ties=ties)
    aucs, cov = stats.delong_cov(y, np.stack([a, b]))
    want_aucs, want_cov = _definition(y, [a, b])
    # Both are sums of at most 60 terms of size <= 1 in float64: agreement to 1e-12 on any machine.
    np.testing.assert_allclose(aucs, want_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, want_cov, rtol=0, atol=1e-12)
    assert abs(aucs[0] - roc_auc_score(y, a)) < 1e-12

def test_ci_and_test_formulas():
    y, a, b = _data(5, n=200)
    auc, lo, hi = stats.delong_ci(y, a, alpha=0.05)
    _, cov = _definition(y, [a])
    half = scipy.stats.norm.ppf(0.975) * np.sqrt(cov[0, 0])
    assert abs(lo - (auc - half)) < 1e-12 and abs(hi - (auc + half)) < 1e-12
    z, p = stats.delong_test(y, a, b)
    aucs, c2 = _definition(y, [a, b])
    want_z = (aucs[0] - aucs[1]) / np.sqrt(c2[0, 0] + c2[1, 1] - 2 * c2[0, 1])
    assert abs(z - want_z) < 1e-9 and abs(p - 2 * scipy.stats.norm.sf(abs(want_z))) < 1e-12
    z_swapped, p_swapped = stats.delong_test(y, b, a)
    assert z_swapped == -z and p_swapped == p

def test_identical_and_perfect_scores():
    y, a, _ = _data(7)
    assert stats.delong_test(y, a, a) == (0.0, 1.0)
    auc, lo, hi = stats.delong_ci(y, y.astype(float))        # Perfect separation: AUC 1, zero variance.
    assert (auc, lo, hi) == (1.0, 1.0, 1.0)

def test_bad_input():
    with pytest.raises(stats.StatsError, match='at least one positive and one negative'):
        stats.delong_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(stats.StatsError, match='3 labels but 2 scores'):
        stats.delong_ci([0, 1, 1], [0.1, 0.2])
    with pytest.raises(stats.StatsError, match='finite'):
        stats.delong_ci([0, 1], [0.1, np.nan])

#----------------------------------------------------------------------------
# Published values: pROC (Robin et al., BMC Bioinformatics 12:77, 2011) on its aSAH data set. The expected
# numbers are those pinned in pROC's own test suite (tests/testthat/test-roc.test.R and test-cov.R) and the
# documented ci.auc example (s100b: 0.6301-0.8326, DeLong); outcome 'Poor' is the positive class.

def _asah():
    path = os.path.join(os.path.dirname(__file__), 'data', 'asah.csv')
    rows = [line.strip().split(',') for line in open(path) if not line.startswith('#')][1:]
    y = np.array([r[0] == 'Poor' for r in rows])
    wfns, s100b, ndka = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3))
    return y, wfns, s100b, ndka

def test_delong_matches_proc_published_values():
    y, wfns, s100b, ndka = _asah()
    assert y.size == 113 and y.sum() == 41
    for a, b, z_want, p_want in ((wfns, s100b, 2.20898359144091, 0.0271757822291882),
                                 (wfns, ndka, 2.79777591868904, 0.00514557970691098),
                                 (ndka, s100b, -1.39077002573558, 0.164295175223054)):
        z, p = stats.delong_test(y, a, b)
        assert abs(z - z_want) < 1e-10 and abs(p - p_want) < 1e-12
    _, cov = stats.delong_cov(y, np.stack([wfns, ndka, s100b]))
    assert abs(cov[0, 1] - -0.000532967856762438) < 1e-15
    assert abs(cov[1, 2] - -0.000756164938056579) < 1e-15
    assert abs(cov[2, 0] - 0.00119615567376754) < 1e-15
    auc, lo, hi = stats.delong_ci(y, s100b)
    assert abs(auc - 0.7313686) < 1e-7 and abs(lo - 0.6301182) < 1e-7 and abs(hi - 0.8326189) < 1e-7

#----------------------------------------------------------------------------
