# Evaluation of a finished study from the stored test-set probabilities.
#
# A condition's estimate of a metric is its mean over seeds. Its 95% CI comes from a patient bootstrap:
# the same resamples of test patients (one seeded draw for the whole study) are scored for every seed and
# every condition, so the difference from `real` is paired and its CI and p-value come from the same draws.
# Tests that need one prediction per image (DeLong, McNemar) use the seed ensemble: the mean probability.

import warnings

import numpy as np

from fundus.classify import stats

#----------------------------------------------------------------------------

CM_METRICS = ('accuracy', 'balanced_accuracy', 'kappa')
AUC_METRICS = ('macro_auc', 'referable_auc')

def _cm_metrics(cms):
    """cms [B, K, K] -> {metric: [B]} plus per-grade sensitivity/specificity [B, K]."""
    sens, spec = stats.sens_spec_cm(cms)
    return dict(accuracy=stats.accuracy_cm(cms), balanced_accuracy=stats.balanced_accuracy_cm(cms),
                kappa=stats.quadratic_kappa_cm(cms), sensitivity=sens, specificity=spec)

def _auc_metrics(y, probs):
    try:
        macro = stats.macro_ovr_auc(y, probs)
    except stats.StatsError:
        macro = float('nan')
    try:
        ref = stats.referable_auc(y, probs)
    except stats.StatsError:
        ref = float('nan')
    return macro, ref

def per_seed(y, probs_by_seed, num_classes):
    """Point metrics of every seed: {metric: [S]} (sensitivity/specificity [S, K])."""
    cms = np.stack([stats.confusion(y, p.argmax(1), num_classes) for p in probs_by_seed])
    out = {k: v for k, v in _cm_metrics(cms).items()}
    aucs = np.array([_auc_metrics(y, p) for p in probs_by_seed])            # [S, 2]
    out['macro_auc'], out['referable_auc'] = aucs[:, 0], aucs[:, 1]
    return out

def _boot_aucs(y, probs, weights):
    # Macro one-vs-rest AUC (over grades present in y) and referable AUC of every resample: [B, 2].
    present = np.unique(y)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        macro = np.nanmean(np.stack([stats.weighted_auc(y == k, probs[:, k], weights) for k in present]), axis=0)
    ref = stats.weighted_auc(y >= 2, stats.referable_scores(probs), weights)
    return np.stack([macro, ref], axis=1)

def bootstrap(y, groups, probs_by_seed, num_classes, n_boot, seed):
    """Bootstrap distributions of the seed-mean metrics: {metric: [B]} (sensitivity/specificity [B, K])."""
    cm_runs = [_cm_metrics(stats.boot_confusions(y, p.argmax(1), groups, num_classes, n_boot, seed)) for p in probs_by_seed]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)                     # A grade absent from a resample: NaN.
        out = {k: np.nanmean(np.stack([r[k] for r in cm_runs]), axis=0) for k in cm_runs[0]}
    counts, inverse = stats.patient_weights(groups, n_boot, seed)
    weights = counts[:, inverse]                                            # [B, N] copies of each image
    auc = np.stack([_boot_aucs(y, p, weights) for p in probs_by_seed], axis=1)  # [B, S, 2]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        mean_auc = np.nanmean(auc, axis=1)
    out['macro_auc'], out['referable_auc'] = mean_auc[:, 0], mean_auc[:, 1]
    return out

#----------------------------------------------------------------------------

def _ci(point, samples, alpha):
    lo, hi = stats.percentile_ci(samples, alpha)
    return dict(value=float(point), ci=[lo, hi])

def summarize(point, boot, alpha, num_classes):
    """{metric: {value, ci, seeds}} from per-seed point metrics and the bootstrap distributions."""
    out = {}
    for m in CM_METRICS + AUC_METRICS:
        out[m] = dict(_ci(np.nanmean(point[m]), boot[m], alpha), seeds=[float(v) for v in point[m]])
    for m in ('sensitivity', 'specificity'):
        out[m] = {f'DR{k}': dict(_ci(np.nanmean(point[m][:, k]), boot[m][:, k], alpha), seeds=[float(v) for v in point[m][:, k]])
                  for k in range(num_classes)}
    return out

def compare(y, real, cond, alpha):
    """Paired comparison of a condition with `real` on the same test images.

    real/cond: dicts with 'probs' [S, N, K], 'point' (per_seed) and 'boot' (bootstrap).
    Returns {metric: {diff, ci, p}}, DeLong, McNemar and Wilcoxon results (p-values before Holm).
    """
    out = {}
    for m in CM_METRICS + AUC_METRICS:
        d = cond['boot'][m] - real['boot'][m]
        lo, hi = stats.percentile_ci(d, alpha)
        out[m] = dict(diff=float(np.nanmean(cond['point'][m]) - np.nanmean(real['point'][m])), ci=[lo, hi],
                      p_bootstrap=stats.paired_boot_p(d))
    ens_r, ens_c = real['probs'].mean(0), cond['probs'].mean(0)
    try:
        z, p = stats.delong_test(y >= 2, stats.referable_scores(ens_c), stats.referable_scores(ens_r))
        out['delong_referable_auc'] = dict(z=z, p=p, auc=stats.referable_auc(y, ens_c), auc_real=stats.referable_auc(y, ens_r))
    except stats.StatsError as e:
        out['delong_referable_auc'] = dict(z=None, p=None, note=str(e))
    b, c, p = stats.mcnemar_exact(ens_c.argmax(1) == y, ens_r.argmax(1) == y)
    out['mcnemar_accuracy'] = dict(only_condition_right=b, only_real_right=c, p=p)
    for m in ('balanced_accuracy', 'kappa'):
        if len(cond['point'][m]) == len(real['point'][m]) and len(real['point'][m]) > 1:
            stat, p = stats.wilcoxon_seeds(cond['point'][m], real['point'][m])
            out[f'wilcoxon_{m}'] = dict(statistic=stat, p=p)
    return out

# The p-values adjusted together across conditions (Holm), one family per test.
FAMILIES = (('delong_referable_auc', 'p'), ('mcnemar_accuracy', 'p'), ('kappa', 'p_bootstrap'),
            ('balanced_accuracy', 'p_bootstrap'), ('wilcoxon_balanced_accuracy', 'p'), ('wilcoxon_kappa', 'p'))

def apply_holm(comparisons):
    """Add 'p_holm' next to each family's p-value, adjusting across the compared conditions."""
    for key, pkey in FAMILIES:
        names = [n for n, c in comparisons.items() if key in c and c[key].get(pkey) is not None and np.isfinite(c[key][pkey])]
        if not names:
            continue
        adjusted = stats.holm([comparisons[n][key][pkey] for n in names])
        for n, q in zip(names, adjusted):
            comparisons[n][key]['p_holm'] = float(q)
    return comparisons

#----------------------------------------------------------------------------

def gan_test(probs_by_seed, grade, alpha, n_boot, seed):
    """Share of synthetic images of `grade` that the real classifier assigns to that grade (seed mean), with
    an image-bootstrap CI (synthetic images have no patients)."""
    hits = np.stack([p.argmax(1) == grade for p in probs_by_seed]).astype(np.float64)  # [S, n]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, hits.shape[1], size=(n_boot, hits.shape[1]))
    boot = hits[:, idx].mean(axis=2).mean(axis=0)                            # [B]
    lo, hi = stats.percentile_ci(boot, alpha)
    return dict(value=float(hits.mean()), ci=[lo, hi], seeds=[float(v) for v in hits.mean(1)], n=int(hits.shape[1]))

#----------------------------------------------------------------------------
