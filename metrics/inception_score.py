# Inception Score (Salimans et al. 2016) with NVIDIA's definition: softmax of the 1008 Inception logits
# computed without the output bias, ten consecutive splits (no shuffling), population std of the scores.

import numpy as np

from metrics import metric_utils

#----------------------------------------------------------------------------

def is_from_probs(probs, num_splits=10):
    """(mean, std) of exp(E_x KL(p(y|x) || p(y))) over consecutive splits of the rows of `probs` [N, K]."""
    probs = np.asarray(probs, dtype=np.float64)
    n = probs.shape[0]
    if n < num_splits:
        raise metric_utils.MetricError(f'Inception Score needs at least {num_splits} images, got {n}')
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits : (i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part) - np.log(marginal))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))

#----------------------------------------------------------------------------

def compute_is(opts, num_gen, num_splits, detector_name='inception-full'):
    detector = opts.get_detector(detector_name)
    detector_kwargs = dict(no_output_bias=True) # Match the original TensorFlow implementation.
    probs = metric_utils.compute_feature_stats_for_generator(opts, detector, detector_kwargs,
        num_gen=num_gen, capture_all=True).get_all()
    if opts.rank != 0:
        return float('nan'), float('nan')
    return is_from_probs(probs, num_splits)

#----------------------------------------------------------------------------
