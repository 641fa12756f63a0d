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
# Classification metrics. Grades are integer class indices 0..K-1; `probs` are [N, K] class probabilities.
# Everything below the confusion matrix is a pure function of it, so a bootstrap only re-weights patients.

def confusion(y_true, y_pred, num_classes):
    """Confusion matrix [K, K]: rows are true grades, columns predicted grades (int64 counts)."""
    y, p = np.asarray(y_true, np.int64).ravel(), np.asarray(y_pred, np.int64).ravel()
    if y.size != p.size:
        raise StatsError(f'{y.size} labels but {p.size} predictions')
    if y.size and (min(y.min(), p.min()) < 0 or max(y.max(), p.max()) >= num_classes):
        raise StatsError(f'grades must lie in 0..{num_classes - 1}')
    return np.bincount(y * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)

def _batch(cm):
    cm = np.asarray(cm, np.float64)
    return cm[None] if cm.ndim == 2 else cm                                # [B, K, K]

def accuracy_cm(cm):
    cm = _batch(cm)
    return np.trace(cm, axis1=1, axis2=2) / cm.sum(axis=(1, 2))

def balanced_accuracy_cm(cm):
    """Mean recall over the grades present in the true labels (scikit-learn's definition)."""
    cm = _batch(cm)
    support = cm.sum(axis=2)                                               # [B, K]
    recall = np.divide(np.diagonal(cm, axis1=1, axis2=2), support, out=np.zeros_like(support), where=support > 0)
    return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)

def quadratic_kappa_cm(cm):
    """Cohen's kappa with quadratic weights (w_ij = (i - j)^2 / (K - 1)^2)."""
    cm = _batch(cm)
    k = cm.shape[1]
    idx = np.arange(k, dtype=np.float64)
    w = (idx[:, None] - idx[None, :]) ** 2                                  # [K, K]
    n = cm.sum(axis=(1, 2), keepdims=True)
    expected = cm.sum(axis=2, keepdims=True) * cm.sum(axis=1, keepdims=True) / n
    num, den = (w * cm).sum(axis=(1, 2)), (w * expected).sum(axis=(1, 2))
    return 1.0 - np.divide(num, den, out=np.zeros_like(num), where=den > 0)

def sens_spec_cm(cm):
    """Per-grade one-vs-rest sensitivity and specificity, each [B, K] (NaN where undefined)."""
    cm = _batch(cm)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    pos = cm.sum(axis=2)
    predicted = cm.sum(axis=1)
    neg = cm.sum(axis=(1, 2))[:, None] - pos
    tn = neg - (predicted - tp)
    with np.errstate(invalid='ignore', divide='ignore'):
        return tp / pos, tn / neg

def quadratic_kappa(y_true, y_pred, num_classes):
    return float(quadratic_kappa_cm(confusion(y_true, y_pred, num_classes))[0])

def balanced_accuracy(y_true, y_pred, num_classes):
    return float(balanced_accuracy_cm(confusion(y_true, y_pred, num_classes))[0])

def auc(y_true, scores):
    """Binary AUC (Mann-Whitney, ties count one half)."""
    pos, neg = _split(y_true, scores)
    return float(_placements(pos[0], neg[0])[0].mean())

def macro_ovr_auc(y_true, probs):
    """Unweighted mean of one-vs-rest AUCs over the grades present in y_true (needs >= 2 of them)."""
    y, probs = np.asarray(y_true, np.int64), np.asarray(probs, np.float64)
    present = np.unique(y)
    if present.size < 2:
        raise StatsError('macro AUC needs at least two grades in the labels')
    return float(np.mean([auc(y == k, probs[:, k]) for k in present]))

def referable_scores(probs, referable_min=2):
    """P(grade >= referable_min) from class probabilities [N, K]."""
    return np.asarray(probs, np.float64)[:, referable_min:].sum(axis=1)

def referable_auc(y_true, probs, referable_min=2):
    return auc(np.asarray(y_true) >= referable_min, referable_scores(probs, referable_min))

#----------------------------------------------------------------------------
# Paired tests and multiplicity.

def mcnemar_exact(correct_a, correct_b):
    """Exact (binomial) McNemar test on paired correct/incorrect calls. Returns (b, c, p): b = only A right,
    c = only B right, p two-sided = min(1, 2 * P(X <= min(b, c))) with X ~ Binomial(b + c, 1/2)."""
    a, b_ = np.asarray(correct_a, bool).ravel(), np.asarray(correct_b, bool).ravel()
    if a.size != b_.size:
        raise StatsError(f'{a.size} paired calls for A but {b_.size} for B')
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    if b + c == 0:
        return b, c, 1.0
    return b, c, float(min(1.0, 2 * scipy.stats.binom.cdf(min(b, c), b + c, 0.5)))

def wilcoxon_seeds(values_a, values_b):
    """Wilcoxon signed-rank test across seeds (paired by seed). Returns (statistic, p) two-sided; (nan, 1.0)
    when all differences are zero. With 5 seeds the smallest exact two-sided p is 2/32 = 0.0625."""
    d = np.asarray(values_a, np.float64) - np.asarray(values_b, np.float64)
    if d.size < 1:
        raise StatsError('Wilcoxon needs at least one pair')
    if np.all(d == 0):
        return float('nan'), 1.0
    res = scipy.stats.wilcoxon(values_a, values_b, zero_method='wilcox', alternative='two-sided')
    return float(res.statistic), float(res.pvalue)

def holm(pvalues):
    """Holm step-down adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, np.float64)
    order = np.argsort(p, kind='stable')
    m = p.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out

#----------------------------------------------------------------------------
# Patient-level (cluster) bootstrap: resample patients with replacement, keep all images of a drawn patient.

def patient_weights(groups, n_boot, seed):
    """Multinomial patient counts [n_boot, P] and the image -> patient index [N]."""
    _, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    num = int(inverse.max()) + 1 if inverse.size else 0
    if num < 2:
        raise StatsError('a patient bootstrap needs at least two patients')
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num, size=(n_boot, num))                         # [B, P] drawn patient ids
    counts = np.zeros((n_boot, num), np.int64)
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1)
    return counts, inverse

def _patient_cms(y_true, y_pred, inverse, num_classes):
    num = int(inverse.max()) + 1
    cell = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    flat = np.zeros((num, num_classes ** 2), np.int64)
    np.add.at(flat, (inverse, cell), 1)
    return flat                                                            # [P, K*K]

def boot_confusions(y_true, y_pred, groups, num_classes, n_boot=1000, seed=0):
    """Confusion matrices of n_boot patient resamples: [B, K, K]."""
    counts, inverse = patient_weights(groups, n_boot, seed)
    return (counts @ _patient_cms(y_true, y_pred, inverse, num_classes)).reshape(n_boot, num_classes, num_classes)

def percentile_ci(samples, alpha=0.05):
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float('nan'), float('nan')
    return float(np.quantile(s, alpha / 2)), float(np.quantile(s, 1 - alpha / 2))

def boot_resamples(groups, n_boot=1000, seed=0):
    """Image index arrays of n_boot patient resamples (for metrics that need the scores, e.g. AUC)."""
    counts, inverse = patient_weights(groups, n_boot, seed)
    members = [np.flatnonzero(inverse == p) for p in range(counts.shape[1])]
    for row in counts:
        yield np.concatenate([np.repeat(members[p], row[p]) for p in np.flatnonzero(row)])

def paired_boot_p(diffs):
    """Two-sided bootstrap p-value of a paired difference at zero: 2 (1 + k) / (1 + B), k the smaller tail count
    (the +1 keeps p above 0 with finitely many resamples), capped at 1."""
    d = np.asarray(diffs, np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float('nan')
    k = min(int((d <= 0).sum()), int((d >= 0).sum()))
    return float(min(1.0, 2 * (1 + k) / (1 + d.size)))

def weighted_auc(y_true, scores, weights):
    """AUCs of B weighted copies of one sample: weights [B, N] (e.g. patient-bootstrap counts per image) -> [B].
    Equals the AUC of the sample in which image i appears weights[b, i] times (ties count one half); NaN where
    a copy has no positive or no negative."""
    y = np.asarray(y_true, bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    w = np.atleast_2d(np.asarray(weights, np.float64))
    order = np.argsort(s, kind='stable')
    s, y, w = s[order], y[order], w[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]                       # First index of each tied block.
    pos = np.add.reduceat(w * y, starts, axis=1)                             # [B, G]
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg                                     # Negative weight strictly below.
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(den > 0, num / den, np.nan)

#----------------------------------------------------------------------------
