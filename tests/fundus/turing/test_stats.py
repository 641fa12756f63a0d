# fundus.turing.stats against scipy / statsmodels / scikit-learn and hand-computed cases; the ORH interval's
# coverage on simulated null studies.

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
from statsmodels.stats.proportion import proportion_confint

from fundus.classify.stats import StatsError
from fundus.turing import stats

#----------------------------------------------------------------------------

@pytest.mark.parametrize('k,n', [(0, 10), (1, 10), (7, 10), (10, 10), (31, 60), (512, 1000)])
def test_clopper_pearson_matches_statsmodels_beta(k, n):
    lo, hi = stats.clopper_pearson(k, n, alpha=0.05)
    ref = proportion_confint(k, n, alpha=0.05, method='beta')
    assert abs(lo - ref[0]) < 1e-12 and abs(hi - ref[1]) < 1e-12

def test_clopper_pearson_hand_case():
    # k = 0: upper bound solves (1 - p)^n = alpha / 2.
    lo, hi = stats.clopper_pearson(0, 10, alpha=0.05)
    assert lo == 0 and abs(hi - (1 - 0.025 ** 0.1)) < 1e-12

@pytest.mark.parametrize('k,n,p', [(0, 10, 0.5), (3, 10, 0.5), (5, 10, 0.5), (9, 10, 0.5), (61, 100, 0.5), (7, 20, 0.3)])
def test_binomial_test_matches_scipy(k, n, p):
    assert abs(stats.binomial_test(k, n, p) - scipy.stats.binomtest(k, n, p).pvalue) < 1e-12

def test_binomial_test_hand_case():
    # 8 of 10 at p = 0.5: P(X >= 8) * 2 = 2 * (45 + 10 + 1) / 1024.
    assert abs(stats.binomial_test(8, 10) - 112 / 1024) < 1e-15
    assert abs(stats.binomial_test(5, 10) - 1.0) < 1e-12

def test_proportion_bad_input():
    assert stats.proportion(0, 0) is None
    with pytest.raises(StatsError):
        stats.clopper_pearson(11, 10)

#----------------------------------------------------------------------------

def test_fleiss_kappa_matches_statsmodels_and_fleiss_1971_example():
    rng = np.random.default_rng(0)
    calls = rng.integers(0, 2, (40, 5))
    calls[:20] = calls[:20, :1]                                        # Some agreement.
    table = np.stack([calls.sum(1), 5 - calls.sum(1)], axis=1)
    assert abs(stats.fleiss_kappa(table) - sm_fleiss(table)) < 1e-12
    # Fleiss (1971) table: 10 cases, 14 raters, 5 categories; kappa = 0.210 (Wikipedia's worked example).
    wiki = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                     [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert abs(stats.fleiss_kappa(wiki) - 0.20993070442195522) < 1e-12

def test_cohen_kappa_matches_sklearn_and_hand_case():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 50)
    b = np.where(rng.random(50) < 0.7, a, 1 - a)
    assert abs(stats.cohen_kappa(a, b) - sklearn.metrics.cohen_kappa_score(a, b)) < 1e-12
    # Hand case: 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4.
    a = np.array([1] * 25 + [0] * 25)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert abs(stats.cohen_kappa(a, b) - 0.4) < 1e-12
    assert np.isnan(stats.cohen_kappa([1, 1], [1, 1]))

#----------------------------------------------------------------------------

def _ratings(rng, n_readers, n_pos, n_neg, shift):
    """Roe-Metz-like ratings: case effect shared by readers + reader noise, rounded to a 10-point scale."""
    truth = np.array([True] * n_pos + [False] * n_neg)
    case = rng.normal(size=truth.size) + shift * truth
    scores = case[None] + rng.normal(scale=0.8, size=(n_readers, truth.size)) + rng.normal(scale=0.3, size=(n_readers, 1)) * truth
    return truth, np.round(np.clip(scores * 2, -5, 5))

def test_jackknife_aucs_match_brute_force_sklearn():
    rng = np.random.default_rng(2)
    truth, scores = _ratings(rng, 3, 9, 11, 0.8)
    aucs, jack = stats.jackknife_aucs(truth, scores)
    for j in range(3):
        assert abs(aucs[j] - sklearn.metrics.roc_auc_score(truth, scores[j])) < 1e-12
        for k in range(truth.size):
            keep = np.arange(truth.size) != k
            assert abs(jack[j, k] - sklearn.metrics.roc_auc_score(truth[keep], scores[j, keep])) < 1e-12

def test_orh_hand_computed_quantities():
    rng = np.random.default_rng(3)
    truth, scores = _ratings(rng, 4, 12, 12, 0.5)
    r = stats.orh_single_test(truth, scores)
    aucs, jack = stats.jackknife_aucs(truth, scores)
    n = truth.size
    cov = np.cov(jack, ddof=1) * (n - 1) ** 2 / n                       # Jackknife covariance, written another way.
    cov2 = cov[~np.eye(4, dtype=bool)].mean()
    ms_r = np.sum((aucs - aucs.mean()) ** 2) / 3
    se = np.sqrt(ms_r / 4 + max(cov2, 0))
    df = (ms_r + 4 * max(cov2, 0)) ** 2 / (ms_r ** 2 / 3)
    half = scipy.stats.t.ppf(0.975, df) * se
    assert abs(r['cov2'] - cov2) < 1e-14 and abs(r['ms_r'] - ms_r) < 1e-14 and abs(r['var_e'] - np.diag(cov).mean()) < 1e-14
    assert abs(r['se'] - se) < 1e-14 and abs(r['df'] - df) < 1e-9
    assert abs(r['lo'] - (aucs.mean() - half)) < 1e-12 and abs(r['hi'] - (aucs.mean() + half)) < 1e-12
    assert abs(r['p'] - 2 * scipy.stats.t.sf(abs((aucs.mean() - 0.5) / se), df)) < 1e-12
    assert r['df'] >= 3                                                 # Hillis df is at least J - 1.

def test_orh_interval_covers_half_under_the_null():
    # Ratings that carry no information about the truth: the 95% ORH interval should cover 0.5 about 95% of
    # the time (Monte Carlo, 300 studies of 4 readers x 40 cases; binomial SD of the rate is about 1.3%).
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(300):
        truth, scores = _ratings(rng, 4, 20, 20, 0.0)
        r = stats.orh_single_test(truth, scores)
        covered += r['lo'] <= 0.5 <= r['hi']
    assert 0.90 <= covered / 300 <= 0.99, covered

def test_orh_refuses_one_reader_and_one_class():
    with pytest.raises(StatsError, match='two readers'):
        stats.orh_single_test([1, 0, 1, 0], [[1, 2, 3, 4]])
    with pytest.raises(StatsError, match='two positive'):
        stats.orh_single_test([1, 0, 0, 0], [[1, 2, 3, 4], [1, 2, 3, 4]])

#----------------------------------------------------------------------------
