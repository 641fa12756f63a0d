# Kernel Inception Distance (Binkowski et al. 2018) with NVIDIA's definition: the unbiased MMD^2 under the
# cubic polynomial kernel k(a, b) = (a.b / d + 1)^3, averaged over subsets drawn without replacement.

import numpy as np

from metrics import metric_utils

#----------------------------------------------------------------------------

def kid_from_features(feat_gen, feat_real, num_subsets=100, max_subset_size=1000, rng=None):
    """KID of two feature arrays [N, d] (raw value; papers often quote x1000).

    Args:
        feat_gen, feat_real: float arrays [N_g, d], [N_r, d].
        num_subsets:         Subsets averaged.
        max_subset_size:     Subset size cap; m = min(N_g, N_r, max_subset_size).
        rng:                 numpy Generator or seed for the subset draws.

    Returns:
        The mean over subsets of the unbiased MMD^2 estimate.
    """
    rng = np.random.default_rng(rng)
    feat_gen = np.asarray(feat_gen)
    feat_real = np.asarray(feat_real)
    d = feat_gen.shape[1]
    m = min(feat_gen.shape[0], feat_real.shape[0], max_subset_size)
    if m < 2:
        raise metric_utils.MetricError(f'KID needs at least 2 images in each set, got {feat_gen.shape[0]} generated and {feat_real.shape[0]} real')
    total = 0.0
    for _ in range(num_subsets):
        x = feat_gen[rng.choice(feat_gen.shape[0], m, replace=False)]
        y = feat_real[rng.choice(feat_real.shape[0], m, replace=False)]
        total += _unbiased_mmd2_term(x, y, d)
    return float(total / num_subsets / m)

def _unbiased_mmd2_term(x, y, d):
    # Within-set kernel sums without the diagonal, minus twice the cross-set mean; scaled by m later.
    m = x.shape[0]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    return within / (m - 1) - k_xy.sum() * 2 / m

#----------------------------------------------------------------------------

def compute_kid(opts, max_real, num_gen, num_subsets, max_subset_size, detector_name='inception'):
    """Returns (kid, real_features, gen_features)."""
    detector = opts.get_detector(detector_name)
    detector_kwargs = dict(return_features=True)
    real = metric_utils.compute_feature_stats_for_dataset(opts, detector, detector_kwargs,
        max_items=max_real, capture_all=True).get_all()
    gen = metric_utils.compute_feature_stats_for_generator(opts, detector, detector_kwargs,
        num_gen=num_gen, capture_all=True).get_all()
    if opts.rank != 0:
        return float('nan'), real, gen
    kid = kid_from_features(gen, real, num_subsets=num_subsets, max_subset_size=max_subset_size, rng=[opts.seed, 1])
    return kid, real, gen

#----------------------------------------------------------------------------
