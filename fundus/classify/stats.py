# Statistics shared by the classifier study and the reader study.
#
# DeLong, DeLong & Clarke-Pearson, "Comparing the areas under two or more correlated receiver operating
# characteristic curves: a nonparametric approach", Biometrics 44 (1988): the AUC is a two-sample
# U-statistic; its variance (and the covariance of AUCs computed on the same cases) comes from the
# structural components V10 (one per positive) and V01 (one per negative). The placements are computed
# by sorting, as in Sun & Xu, IEEE Signal Processing Letters 21 (2014), in O(N log N).

import numpy as np
import scipy.stats

#----------------------------------------------------------------------------

class StatsError(ValueError):
    """Inputs a statistic cannot be computed from (e.g. only one class present)."""

#----------------------------------------------------------------------------

def _split(y_true, scores):
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64)
    s = s.reshape(1, -1) if s.ndim == 1 else s                             # [K, N] one row per rater/model
    if s.shape[1] != y.size:
        raise StatsError(f'{y.size} labels but {s.shape[1]} scores')
    if y.all() or not y.any():
        raise StatsError('AUC needs at least one positive and one negative case')
    if not np.isfinite(s).all():
        raise StatsError('scores must be finite')
    return s[:, y], s[:, ~y]

def _placements(pos, neg):
    """Structural components of one score row: V10 [m] and V01 [n] (ties count one half)."""
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, 'left')                       # Negatives scored lower than each positive.
    tied = np.searchsorted(neg_sorted, pos, 'right') - below
    v10 = (below + 0.5 * tied) / neg.size
    above = pos.size - np.searchsorted(pos_sorted, neg, 'right')           # Positives scored higher than each negative.
    tied = np.searchsorted(pos_sorted, neg, 'right') - np.searchsorted(pos_sorted, neg, 'left')
    v01 = (above + 0.5 * tied) / pos.size
    return v10, v01

def delong_cov(y_true, scores):
    """AUCs [K] and their DeLong covariance matrix [K, K] for K score rows on the same cases."""
    pos, neg = _split(y_true, scores)
    parts = [_placements(p, n) for p, n in zip(pos, neg)]
    v10 = np.stack([a for a, _ in parts])                                   # [K, m]
    v01 = np.stack([b for _, b in parts])                                   # [K, n]
    aucs = v10.mean(axis=1)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros([len(aucs)] * 2)
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros([len(aucs)] * 2)
    return aucs, s10 / m + s01 / n

def delong_ci(y_true, scores, alpha=0.05):
    """AUC with a (1 - alpha) DeLong confidence interval. Returns (auc, low, high), clipped to [0, 1]."""
    aucs, cov = delong_cov(y_true, scores)
    if aucs.size != 1:
        raise StatsError('delong_ci takes one score vector')
    half = scipy.stats.norm.ppf(1 - alpha / 2) * np.sqrt(cov[0, 0])
    return float(aucs[0]), float(max(0.0, aucs[0] - half)), float(min(1.0, aucs[0] + half))

def delong_test(y_true, scores_a, scores_b):
    """DeLong's test of equal AUCs for two score vectors on the same cases. Returns (z, p), two-sided."""
    aucs, cov = delong_cov(y_true, np.stack([np.asarray(scores_a, float), np.asarray(scores_b, float)]))
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = aucs[0] - aucs[1]
    if var <= 0:
        return (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    z = diff / np.sqrt(var)
    return float(z), float(2 * scipy.stats.norm.sf(abs(z)))

#----------------------------------------------------------------------------
