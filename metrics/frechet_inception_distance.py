# Frechet Inception Distance (Heusel et al. 2017) with NVIDIA's definition: Inception pool3 features,
# biased (divide by N) covariances, and the real part of the final sum.

import numpy as np
import scipy.linalg

from metrics import metric_utils

#----------------------------------------------------------------------------

def fid_from_stats(mu_gen, sigma_gen, mu_real, sigma_real, method='sqrtm'):
    """FID = |mu_g - mu_r|^2 + tr(S_g + S_r - 2 sqrtm(S_g S_r)); the real part of the result.

    method='sqrtm' is NVIDIA's route: scipy.linalg.sqrtm may return tiny imaginary parts when a
    covariance is singular (N < feature size), and like NVIDIA we keep the real part of the total. We
    never pass sqrtm's `disp` argument (deprecated in SciPy 1.16). method='eigh' uses the symmetric
    route tr sqrtm(S_g S_r) = sum sqrt(eig(R S_g R)), R = S_r^(1/2): no complex arithmetic, agrees with
    sqrtm to about 1e-7 (tests), and is what the bootstrap uses.
    """
    mu_gen = np.asarray(mu_gen, dtype=np.float64)
    mu_real = np.asarray(mu_real, dtype=np.float64)
    sigma_gen = np.asarray(sigma_gen, dtype=np.float64)
    sigma_real = np.asarray(sigma_real, dtype=np.float64)
    diff = mu_gen - mu_real
    if method == 'sqrtm':
        trace_covmean = np.trace(scipy.linalg.sqrtm(sigma_gen @ sigma_real))
    elif method == 'eigh':
        trace_covmean = _trace_sqrt_product(sigma_gen, sigma_real)
    else:
        raise ValueError(f'unknown FID method {method!r}')
    total = diff @ diff + np.trace(sigma_gen) + np.trace(sigma_real) - trace_covmean * 2
    return float(np.real(total))

def _trace_sqrt_product(a, b):
    # S_g S_r is similar to R S_g R with R = S_r^(1/2), which is symmetric PSD: its eigenvalues are real.
    w, v = np.linalg.eigh(b)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(r @ a @ r)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())

def fid_from_features(feat_gen, feat_real, method='sqrtm'):
    """FID of two feature arrays [N, D], with biased covariances (NVIDIA's FeatureStats)."""
    return fid_from_stats(*_mean_cov(feat_gen), *_mean_cov(feat_real), method=method)

def _mean_cov(x):
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=0)
    return mu, (x.T @ x) / x.shape[0] - np.outer(mu, mu)

#----------------------------------------------------------------------------

def compute_fid(opts, max_real, num_gen, detector_name='inception'):
    """Returns (fid, real_stats, gen_stats); the stats hold all features when opts.bootstrap > 0."""
    detector = opts.get_detector(detector_name)
    detector_kwargs = dict(return_features=True)
    capture_all = opts.bootstrap > 0
    real = metric_utils.compute_feature_stats_for_dataset(opts, detector, detector_kwargs,
        max_items=max_real, capture_mean_cov=True, capture_all=capture_all)
    gen = metric_utils.compute_feature_stats_for_generator(opts, detector, detector_kwargs,
        num_gen=num_gen, capture_mean_cov=True, capture_all=capture_all)
    if opts.rank != 0:
        return float('nan'), real, gen
    return fid_from_stats(*gen.get_mean_cov(), *real.get_mean_cov()), real, gen

#----------------------------------------------------------------------------
