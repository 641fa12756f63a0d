# Improved precision and recall (Kynkaanniemi et al. 2019) with NVIDIA's definition: VGG16 fc features,
# k-NN radii (k = nhood_size, self excluded), float16 distances in row x column batches.

import numpy as np
import torch

from metrics.metric_utils import MetricError, compute_feature_stats_for_dataset, compute_feature_stats_for_generator

#----------------------------------------------------------------------------

def _pairwise_distances(rows, cols, col_batch_size):
    """Euclidean distances [len(rows), len(cols)] in float16, computed one column batch at a time."""
    return torch.cat([torch.cdist(rows.unsqueeze(0), cols[lo:lo + col_batch_size].unsqueeze(0))[0]
                      for lo in range(0, cols.shape[0], col_batch_size)], dim=1)

def _manifold_radii(manifold, nhood_size, row_batch_size, col_batch_size):
    # Radius of each point: distance to its nhood_size-th nearest neighbour (the point itself is the 1st).
    radii = []
    for lo in range(0, manifold.shape[0], row_batch_size):
        dist = _pairwise_distances(manifold[lo:lo + row_batch_size], manifold, col_batch_size)
        radii.append(dist.to(torch.float32).kthvalue(nhood_size + 1, dim=1).values.to(torch.float16))
    return torch.cat(radii)

def coverage_fraction(manifold, probes, nhood_size=3, row_batch_size=10000, col_batch_size=10000):
    """Fraction of `probes` lying inside at least one k-NN ball of `manifold` (both [N, d] float16 tensors)."""
    if manifold.shape[0] <= nhood_size:
        raise MetricError(f'precision/recall needs more than nhood_size={nhood_size} images per set, got {manifold.shape[0]}')
    radii = _manifold_radii(manifold, nhood_size, row_batch_size, col_batch_size)
    inside = []
    for lo in range(0, probes.shape[0], row_batch_size):
        dist = _pairwise_distances(probes[lo:lo + row_batch_size], manifold, col_batch_size)
        inside.append((dist <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).to(torch.float64).mean())

def pr_from_features(feat_real, feat_gen, nhood_size=3, row_batch_size=10000, col_batch_size=10000, device='cpu'):
    """(precision, recall): precision = generated probes inside the real manifold, recall = the reverse."""
    # float16 distances on GPU as NVIDIA does; CPU cdist lacks float16, so there we use float32.
    dtype = torch.float16 if torch.device(device).type == 'cuda' else torch.float32
    real = torch.as_tensor(np.asarray(feat_real), device=device).to(torch.float16).to(dtype)
    gen = torch.as_tensor(np.asarray(feat_gen), device=device).to(torch.float16).to(dtype)
    precision = coverage_fraction(real, gen, nhood_size, row_batch_size, col_batch_size)
    recall = coverage_fraction(gen, real, nhood_size, row_batch_size, col_batch_size)
    return precision, recall

#----------------------------------------------------------------------------

def compute_pr(opts, max_real, num_gen, nhood_size, row_batch_size, col_batch_size, detector_name='vgg16'):
    detector = opts.get_detector(detector_name)
    as_features = {'return_features': True} # fc-layer embeddings rather than class scores.
    real = compute_feature_stats_for_dataset(opts, detector, as_features, max_items=max_real, capture_all=True)
    gen = compute_feature_stats_for_generator(opts, detector, as_features, num_gen=num_gen, capture_all=True)
    if opts.rank == 0:
        return pr_from_features(real.get_all(), gen.get_all(), nhood_size, row_batch_size, col_batch_size, device=opts.device)
    return (np.nan, np.nan) # Only rank 0 holds all features.

#----------------------------------------------------------------------------
