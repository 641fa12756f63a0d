# Inception Score (Salimans et al. 2016) with NVIDIA's definition: softmax of the 1008 Inception logits
# computed without the output bias, ten consecutive splits (no shuffling), population std of the scores.

import numpy as np

from metrics.metric_utils import MetricError, compute_feature_stats_for_generator

# What ranks other than 0 return: only rank 0 holds every image's class probabilities.
_NO_RESULT = (np.nan, np.nan)

#----------------------------------------------------------------------------

def is_from_probs(probs, num_splits=10):
    """(mean, std) of exp(E_x KL(p(y|x) || p(y))) over consecutive splits of the rows of `probs` [N, K]."""
    probs = np.asarray(probs, dtype=np.float64)                                # [N, K]
    n = probs.shape[0]
    if n < num_splits:
        raise MetricError(f'Inception Score needs at least {num_splits} images, got {n}')
    bounds = [k * n // num_splits for k in range(num_splits + 1)]               # Split k is rows bounds[k]:bounds[k+1].
    scores = np.array([_split_score(probs[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])])
    return float(scores.mean()), float(scores.std())

def _split_score(p_yx):
    # exp of the mean KL divergence between each conditional p(y|x) and the split's marginal p(y).
    p_y = p_yx.mean(axis=0, keepdims=True)                                    # [1, K]
    return np.exp((p_yx * (np.log(p_yx) - np.log(p_y))).sum(axis=1).mean())

#----------------------------------------------------------------------------

def compute_is(opts, num_gen, num_splits, detector_name='inception-full'):
    detector = opts.get_detector(detector_name)
    # The published IS numbers drop the bias of the final Inception layer; so do we, to stay comparable.
    stats = compute_feature_stats_for_generator(opts, detector, {'no_output_bias': True}, num_gen=num_gen, capture_all=True)
    return is_from_probs(stats.get_all(), num_splits) if opts.rank == 0 else _NO_RESULT

#----------------------------------------------------------------------------
