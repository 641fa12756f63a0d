# Classification metrics, paired tests, Holm and the patient bootstrap against scikit-learn, statsmodels and
# SciPy, plus closed-form cases.

import warnings

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from fundus.classify import stats

#----------------------------------------------------------------------------

def _graded(seed, n=300, k=5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = probs.argmax(1)
    return y, pred, probs

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_confusion_metrics_match_sklearn(seed):
    y, pred, _ = _graded(seed)
    cm = stats.confusion(y, pred, 5)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=range(5)))
    assert abs(stats.accuracy_cm(cm)[0] - skm.accuracy_score(y, pred)) < 1e-12
    assert abs(stats.balanced_accuracy(y, pred, 5) - skm.balanced_accuracy_score(y, pred)) < 1e-12
    assert abs(stats.quadratic_kappa(y, pred, 5) - skm.cohen_kappa_score(y, pred, weights='quadratic')) < 1e-12
    sens, spec = stats.sens_spec_cm(cm)
    for k in range(5):
        assert abs(sens[0, k] - skm.recall_score(y == k, pred == k)) < 1e-12
        assert abs(spec[0, k] - skm.recall_score(y != k, pred != k)) < 1e-12

def test_balanced_accuracy_with_absent_grade_matches_sklearn():
    y, pred, _ = _graded(3)
    keep = y != 3                                                           # Grade 3 absent from the labels.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)                       # sklearn: y_pred has a class y_true lacks.
        want = skm.balanced_accuracy_score(y[keep], pred[keep])
    assert abs(stats.balanced_accuracy(y[keep], pred[keep], 5) - want) < 1e-12

@pytest.mark.parametrize('seed', [0, 4])
def test_aucs_match_sklearn(seed):
    y, _, probs = _graded(seed)
    assert abs(stats.macro_ovr_auc(y, probs) - skm.roc_auc_score(y, probs, multi_class='ovr', average='macro')) < 1e-12
    ref = probs[:, 2:].sum(1)
    assert abs(stats.referable_auc(y, probs) - skm.roc_auc_score(y >= 2, ref)) < 1e-12

def test_mcnemar_exact_matches_statsmodels():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.random(80) < 0.7, rng.random(80) < 0.6
        nb, nc, p = stats.mcnemar_exact(a, b)
        table = [[(a & b).sum(), (a & ~b).sum()], [(~a & b).sum(), (~a & ~b).sum()]]
        want = sm_mcnemar(table, exact=True)
        assert (nb, nc) == (table[0][1], table[1][0])
        assert abs(p - want.pvalue) < 1e-12
    assert stats.mcnemar_exact([True, False], [True, False]) == (0, 0, 1.0)
    # Closed form: 0 vs 6 discordant pairs -> p = 2 / 2^6.
    assert abs(stats.mcnemar_exact([True] * 6, [False] * 6)[2] - 2 / 64) < 1e-15

def test_wilcoxon_and_holm_match_scipy_statsmodels():
    a, b = [0.71, 0.74, 0.69, 0.75, 0.72], [0.70, 0.70, 0.66, 0.71, 0.70]
    stat, p = stats.wilcoxon_seeds(a, b)
    want = scipy.stats.wilcoxon(a, b)
    assert stat == want.statistic and p == want.pvalue
    assert abs(p - 0.0625) < 1e-12                                          # All 5 differences positive: 2 / 2^5.
    assert stats.wilcoxon_seeds(a, a)[1] == 1.0
    pv = np.array([0.01, 0.04, 0.03, 0.2, 0.005])
    np.testing.assert_allclose(stats.holm(pv), multipletests(pv, method='holm')[1], rtol=0, atol=1e-15)

def test_patient_bootstrap_singletons_agree_with_scipy():
    # One image per patient: the percentile CI of accuracy agrees with scipy.stats.bootstrap's to Monte Carlo error.
    rng = np.random.default_rng(1)
    correct = (rng.random(400) < 0.7).astype(np.int64)
    y = np.zeros(400, np.int64)
    pred = 1 - correct
    cms = stats.boot_confusions(y, pred, np.arange(400), 2, n_boot=4000, seed=0)
    lo, hi = stats.percentile_ci(stats.accuracy_cm(cms))
    want = scipy.stats.bootstrap((correct,), np.mean, n_resamples=4000, method='percentile', random_state=0).confidence_interval
    assert abs(lo - want.low) < 0.01 and abs(hi - want.high) < 0.01

def test_patient_bootstrap_keeps_patients_together():
    # Two identical eyes per patient: resampling patients gives a wider CI than pretending eyes are independent,
    # and every resample holds both eyes of each drawn patient.
    rng = np.random.default_rng(2)
    correct = np.repeat(rng.random(150) < 0.7, 2).astype(np.int64)
    groups = np.repeat(np.arange(150), 2)
    y, pred = np.zeros(300, np.int64), 1 - correct
    lo_p, hi_p = stats.percentile_ci(stats.accuracy_cm(stats.boot_confusions(y, pred, groups, 2, 2000, 0)))
    lo_i, hi_i = stats.percentile_ci(stats.accuracy_cm(stats.boot_confusions(y, pred, np.arange(300), 2, 2000, 0)))
    assert (hi_p - lo_p) > 1.25 * (hi_i - lo_i)
    for idx in list(stats.boot_resamples(groups, n_boot=5, seed=3)):
        counts = np.bincount(groups[idx], minlength=150)
        assert np.all(counts % 2 == 0) and idx.size == 300

def test_boot_confusions_equal_explicit_resamples():
    y, pred, _ = _graded(5, n=60)
    groups = np.arange(60) // 3
    cms = stats.boot_confusions(y, pred, groups, 5, n_boot=7, seed=11)
    for cm, idx in zip(cms, stats.boot_resamples(groups, n_boot=7, seed=11)):
        np.testing.assert_array_equal(cm, stats.confusion(y[idx], pred[idx], 5))

def test_weighted_auc_equals_auc_of_resamples():
    y, _, probs = _graded(6, n=90)
    scores = np.round(probs[:, 2:].sum(1), 1)                               # Ties on purpose.
    groups = np.arange(90) // 2
    counts, inverse = stats.patient_weights(groups, 6, seed=4)
    got = stats.weighted_auc(y >= 2, scores, counts[:, inverse])
    for g, idx in zip(got, stats.boot_resamples(groups, n_boot=6, seed=4)):
        assert abs(g - skm.roc_auc_score(y[idx] >= 2, scores[idx])) < 1e-12

def test_paired_boot_p():
    assert stats.paired_boot_p([0.1, 0.2, 0.3]) == 0.5                     # 2 (1 + 0) / (1 + 3)
    assert abs(stats.paired_boot_p(np.r_[np.ones(998), -np.ones(1)]) - 2 * 2 / 1000) < 1e-15
    assert stats.paired_boot_p([-1, 1, -1, 1]) == 1.0

def test_bad_input():
    with pytest.raises(stats.StatsError, match='at least two grades'):
        stats.macro_ovr_auc([1, 1], np.ones((2, 5)) / 5)
    with pytest.raises(stats.StatsError, match='two patients'):
        stats.patient_weights(['a', 'a'], 10, 0)
    with pytest.raises(stats.StatsError, match='0..4'):
        stats.confusion([0, 5], [0, 1], 5)

#----------------------------------------------------------------------------
