# Bootstrap confidence intervals for FID and KID.
#
# What is resampled: the feature vectors. Features are extracted once; replicate b draws N_r real and N_g
# generated feature vectors with replacement (independently) and recomputes the metric on them. We report
# the replicates' mean and 2.5/97.5 percentiles next to the point estimate.
#
# Why the bootstrap mean sits above the point estimate: FID is biased upward at finite N (roughly + c/N),
# and a resample with replacement holds only about 63% distinct items, so its covariance estimates are
# noisier and each replicate behaves like a smaller sample. The percentile interval therefore describes
# the spread (sampling variability) but is shifted up, and can exclude the point estimate. See
# docs/metrics.md, "Bootstrap confidence intervals".

import numpy as np

from metrics import frechet_inception_distance
from metrics import kernel_inception_distance

#----------------------------------------------------------------------------

def bootstrap(metric_fn, feat_gen, feat_real, num_replicates, seed=0):
    """Replicate values of metric_fn(gen, real) on resamples (with replacement) of both feature sets."""
    rng = np.random.default_rng([int(seed), 7])
    values = []
    for _ in range(num_replicates):
        gi = rng.integers(0, feat_gen.shape[0], feat_gen.shape[0])
        ri = rng.integers(0, feat_real.shape[0], feat_real.shape[0])
        values.append(metric_fn(feat_gen[gi], feat_real[ri], rng))
    return np.asarray(values, dtype=np.float64)

# The interval keys: role -> suffix after the value key. summarize() is their only writer and
# metrics.metric_main.split_result_key() their only parser; both read this table.
INTERVAL_SUFFIXES = {
    'mean': '_boot_mean',   # Mean of the replicates.
    'low':  '_boot_p2.5',   # 2.5th percentile: lower end of the 95% interval.
    'high': '_boot_p97.5',  # 97.5th percentile: upper end.
    'n':    '_boot_n',      # Number of replicates.
}

def summarize(values, prefix):
    """Result keys <prefix>_boot_mean, _boot_p2.5, _boot_p97.5 and _boot_n of replicate values."""
    stats = dict(mean=float(np.mean(values)), low=float(np.percentile(values, 2.5)),
                 high=float(np.percentile(values, 97.5)), n=int(len(values)))
    return {f'{prefix}{suffix}': stats[role] for role, suffix in INTERVAL_SUFFIXES.items()}

def bootstrap_fid(feat_gen, feat_real, num_replicates, seed=0):
    fn = lambda g, r, _rng: frechet_inception_distance.fid_from_features(g, r, method='eigh')
    return bootstrap(fn, feat_gen, feat_real, num_replicates, seed)

def bootstrap_kid(feat_gen, feat_real, num_replicates, num_subsets=100, max_subset_size=1000, seed=0):
    fn = lambda g, r, rng: kernel_inception_distance.kid_from_features(g, r, num_subsets, max_subset_size, rng=rng)
    return bootstrap(fn, feat_gen, feat_real, num_replicates, seed)

#----------------------------------------------------------------------------
