# Reader-study statistics: exact binomial inference, agreement, and the Obuchowski-Rockette-Hillis (ORH)
# MRMC analysis of one test (the AUC of "this image is synthetic" ratings, averaged over readers).
#
# - Clopper & Pearson, Biometrika 26 (1934): exact interval from beta quantiles.
# - Two-sided exact binomial test: sum of the probabilities of all outcomes no more likely than the observed one.
# - Fleiss, Psychol Bull 76 (1971); Cohen, Educ Psychol Meas 20 (1960).
# - ORH: Obuchowski & Rockette, Commun Stat Simul 24 (1995); Hillis, Stat Med 26 (2007) for the single-test
#   interval and its degrees of freedom: var = (MS_R + J max(Cov2, 0)) / J, df = (MS_R + J max(Cov2, 0))^2 /
#   (MS_R^2 / (J - 1)); the error covariances come from jackknifing cases.
# DeLong's AUC interval lives in fundus/classify/stats.py (shared with the classifier study).

import numpy as np
import scipy.stats

from fundus.classify.stats import StatsError

#----------------------------------------------------------------------------

def clopper_pearson(k, n, alpha=0.05):
    """Exact (1 - alpha) interval for a binomial proportion k/n."""
    if n <= 0 or not 0 <= k <= n:
        raise StatsError(f'clopper_pearson needs 0 <= k <= n and n > 0 (got k={k}, n={n})')
    lo = 0.0 if k == 0 else float(scipy.stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(scipy.stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi

def binomial_test(k, n, p=0.5):
    """Two-sided exact binomial p-value of k successes in n trials against success probability p."""
    if n <= 0 or not 0 <= k <= n:
        raise StatsError(f'binomial_test needs 0 <= k <= n and n > 0 (got k={k}, n={n})')
    pmf = scipy.stats.binom.pmf(np.arange(n + 1), n, p)
    observed = pmf[k]
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-7)].sum()))

def proportion(k, n, alpha=0.05, null=0.5):
    """dict(k, n, value, lo, hi, p) with the Clopper-Pearson interval and the exact test against `null`;
    None when n == 0."""
    if n == 0:
        return None
    lo, hi = clopper_pearson(k, n, alpha)
    return dict(k=int(k), n=int(n), value=k / n, lo=lo, hi=hi, p=binomial_test(k, n, null))

#----------------------------------------------------------------------------

def fleiss_kappa(counts):
    """Fleiss' kappa from a [cases, categories] table of how many raters put each case in each category
    (the same number of raters per case). NaN when agreement by chance is 1."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    if counts.ndim != 2 or counts.shape[0] < 1 or not np.all(n == n[0]) or n[0] < 2:
        raise StatsError('fleiss_kappa needs a [cases, categories] table with the same number (>= 2) of raters per case')
    p_cat = counts.sum(axis=0) / counts.sum()
    p_case = ((counts * counts).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = p_case.mean(), (p_cat ** 2).sum()
    return float('nan') if p_e == 1 else float((p_bar - p_e) / (1 - p_e))

def cohen_kappa(a, b):
    """Cohen's (unweighted) kappa between two raters' labels on the same cases. NaN when chance agreement is 1."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.size == 0:
        raise StatsError('cohen_kappa needs two label vectors of the same, non-zero length')
    cats = np.union1d(a, b)
    p_o = float(np.mean(a == b))
    p_e = float(sum(np.mean(a == c) * np.mean(b == c) for c in cats))
    return float('nan') if p_e == 1 else (p_o - p_e) / (1 - p_e)

#----------------------------------------------------------------------------
# ORH, one test.

def _kernel(pos, neg):
    """Mann-Whitney kernel [m, n]: 1 if the positive scores higher, 1/2 on ties."""
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])

def jackknife_aucs(truth, scores):
    """AUC of each reader [J] and leave-one-case-out AUCs [J, N] (exact, from the kernel's row and column sums).
    truth: [N] bool (positive = synthetic); scores: [J, N], higher = more likely positive."""
    truth = np.asarray(truth, bool)
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    m, n = int(truth.sum()), int((~truth).sum())
    if m < 2 or n < 2:
        raise StatsError('the jackknife AUC needs at least two positive and two negative cases')
    aucs, jack = np.zeros(len(scores)), np.zeros(scores.shape)
    for j, s in enumerate(scores):
        psi = _kernel(s[truth], s[~truth])
        total = psi.sum()
        aucs[j] = total / (m * n)
        jack[j, truth] = (total - psi.sum(axis=1)) / ((m - 1) * n)        # Without positive case k.
        jack[j, ~truth] = (total - psi.sum(axis=0)) / (m * (n - 1))       # Without negative case k.
    return aucs, jack

def jackknife_cov(jack):
    """[J, J] jackknife covariance of reader AUCs over cases: (N - 1)/N * sum_k (d_jk)(d_j'k)."""
    n_cases = jack.shape[1]
    d = jack - jack.mean(axis=1, keepdims=True)
    return (n_cases - 1) / n_cases * (d @ d.T)

def orh_single_test(truth, scores, alpha=0.05, null=0.5):
    """Reader-averaged AUC with the ORH/Hillis interval and a t test against `null` (two-sided).
    Needs a fully crossed design: every reader rated every case. scores: [J, N], J >= 2."""
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    n_readers = scores.shape[0]
    if n_readers < 2:
        raise StatsError('the ORH analysis needs at least two readers')
    aucs, jack = jackknife_aucs(truth, scores)
    cov = jackknife_cov(jack)
    var_e = float(np.mean(np.diag(cov)))
    cov2 = float((cov.sum() - np.trace(cov)) / (n_readers * (n_readers - 1)))
    auc = float(aucs.mean())
    ms_r = float(np.var(aucs, ddof=1))
    spread = ms_r + n_readers * max(cov2, 0.0)
    se = float(np.sqrt(spread / n_readers))
    df = float('inf') if ms_r == 0 else spread ** 2 / (ms_r ** 2 / (n_readers - 1))
    t_crit = float(scipy.stats.t.ppf(1 - alpha / 2, df)) if np.isfinite(df) else float(scipy.stats.norm.ppf(1 - alpha / 2))
    t = (auc - null) / se if se > 0 else float('nan')
    p = float(2 * scipy.stats.t.sf(abs(t), df)) if se > 0 else float('nan')
    return dict(auc=auc, reader_aucs=aucs.tolist(), lo=auc - t_crit * se, hi=auc + t_crit * se, se=se, df=df,
                t=float(t), p=p, ms_r=ms_r, var_e=var_e, cov2=cov2, n_readers=n_readers, n_cases=scores.shape[1])

#----------------------------------------------------------------------------
