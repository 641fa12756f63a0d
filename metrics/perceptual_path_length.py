# Perceptual path length (Karras et al. 2019, StyleGAN, Section 3) with NVIDIA's definition: LPIPS
# distances between images at t and t + epsilon along lerp (W) or slerp (Z) paths, divided by epsilon^2,
# averaged after dropping values outside the 1st-99th percentile range. The LPIPS embedding comes from
# the 'vgg16' detector (return_lpips=True), as in NVIDIA's metric.

import numpy as np
import torch

from metrics.metric_utils import (MetricError, dataset_labels, gather_array, make_generator_inputs, randomize_noise_const,
                                  require_process_group, restored_noise_const)

#----------------------------------------------------------------------------

def _unit(v):
    return v / v.norm(dim=-1, keepdim=True)

def slerp(a, b, t):
    """Unit vector a fraction t of the way along the great-circle arc from direction a to direction b."""
    a, b = _unit(a), _unit(b)
    cos_omega = (a * b).sum(dim=-1, keepdim=True)                    # [..., 1]
    angle = t * torch.acos(cos_omega)
    ortho = _unit(b - cos_omega * a) # In the a-b plane, perpendicular to a: rotate a towards it by `angle`.
    return _unit(a * torch.cos(angle) + ortho * torch.sin(angle))

def trimmed_mean(dist):
    """Mean of the values between the 1st and 99th percentiles (inclusive), as NVIDIA does."""
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())

def _prepare(img, crop):
    # Optional face crop, box downsampling to 256, then [-1, 1] -> [0, 255] floats (not quantised).
    if crop:
        c = img.shape[2] // 8
        img = img[:, :, c * 3 : c * 7, c * 2 : c * 6]
    factor = img.shape[2] // 256
    if factor > 1:
        img = torch.nn.functional.avg_pool2d(img, factor)
    return (img + 1) * (255 / 2)

def ppl_distances(G, detector, z, c, t, epsilon, space, crop, G_kwargs):
    """Scaled squared LPIPS distances [N] for latent pairs z [2N, z_dim] and positions t [N]."""
    tt = t.unsqueeze(1).unsqueeze(2) if space == 'w' else t.unsqueeze(1)
    if space == 'w':
        w = G.mapping(z, c)
        w0, w1 = w[0::2], w[1::2]
        lerp = lambda a, b, s: a + (b - a) * s
        wt = torch.cat([lerp(w0, w1, tt), lerp(w0, w1, tt + epsilon)])
    else:
        z0, z1 = z[0::2], z[1::2]
        zt = torch.cat([slerp(z0, z1, tt), slerp(z0, z1, tt + epsilon)])
        wt = G.mapping(zt, torch.cat([c[0::2], c[0::2]]))
    img = _prepare(G.synthesis(wt, noise_mode='const', force_fp32=True, **G_kwargs), crop)
    lpips_t0, lpips_t1 = detector(img, resize_images=False, return_lpips=True).chunk(2)
    return ((lpips_t0 - lpips_t1).square().sum(dim=1) / epsilon ** 2).cpu().numpy()

def compute_ppl(opts, num_samples, epsilon, space, sampling, crop, batch_size, detector_name='vgg16'):
    assert space in ('z', 'w') and sampling in ('full', 'end')
    G = opts.G
    if G is None or not hasattr(G, 'mapping'):
        raise MetricError('PPL needs a generator with mapping and synthesis networks (not a folder of images)')
    detector = opts.get_detector(detector_name)
    labels = dataset_labels(opts, G.c_dim)
    G_kwargs = {k: v for k, v in opts.G_kwargs.items() if k not in ('truncation_psi', 'truncation_cutoff', 'force_fp32', 'noise_mode')}
    dist = dict() # first sample index of a batch -> its distances
    with torch.no_grad(), restored_noise_const(G):
        for lo in range(opts.rank * batch_size, num_samples, batch_size * opts.num_gpus):
            n = min(batch_size, num_samples - lo)
            rng = np.random.default_rng([opts.seed, 11, lo]) # Per batch: the same draws for any number of processes.
            randomize_noise_const(G, rng)
            z, c = make_generator_inputs(range(2 * lo, 2 * (lo + n)), opts.seed, G.z_dim, G.c_dim, labels, opts.device)
            t = torch.from_numpy(rng.random(n).astype(np.float32) * (sampling == 'full')).to(opts.device)
            dist[lo] = ppl_distances(G, detector, z, c, t, epsilon, space, crop, G_kwargs)
    return trimmed_mean(_gather_in_sample_order(opts, dist))

def _gather_in_sample_order(opts, batches):
    # Every rank computed every num_gpus-th batch; all ranks need all distances, in sample order, for the
    # trimmed mean. batches: {first sample index of a batch: distances [n]}.
    order = sorted(batches)
    values = np.concatenate([batches[lo] for lo in order]) if order else np.zeros([0], np.float32)
    if opts.num_gpus == 1:
        return values
    require_process_group(opts)
    index = np.concatenate([lo + np.arange(len(batches[lo])) for lo in order]) if order else np.zeros([0], np.int64)
    all_values, all_index = gather_array(opts, values), gather_array(opts, index.astype(np.int64))
    return all_values[np.argsort(all_index, kind='stable')]

#----------------------------------------------------------------------------
