# Memorisation audit: did the generator copy training photographs?
#
# For each generated image: its nearest training image in detector feature space (Euclidean distance on
# Inception pool3 features by default) and the pixel SSIM of that pair. Reference distribution: for up to
# 1000 real training images (seeded choice), the distance to their nearest *other* training image
# (leave-one-out), which is how far a genuinely new sample from the data distribution typically sits.
#
# Near-copy threshold (documented in docs/metrics.md): a generated image is a near-copy when its
# nearest-neighbour distance is below the 1st percentile of the real leave-one-out distances, i.e. closer
# to a training image than 99% of real images are to their nearest other training image.
#
# Outputs: result keys, <name>.csv (one row per generated image) and <name>.png (the closest pairs).

import csv
import os

import numpy as np
import scipy.stats
import torch

import dnnlib
from metrics import metric_utils
from metrics import ssim as ssim_lib

NUM_REFERENCE = 1000    # Real images whose leave-one-out distances form the reference distribution.
NEAR_COPY_PERCENTILE = 1
NUM_PAIRS_SHOWN = 8

#----------------------------------------------------------------------------

def nearest_neighbours(queries, base, exclude=None, chunk=1024):
    """(distance, index) of each query's nearest base row; exclude[i] = base index to skip for query i."""
    q = torch.as_tensor(np.asarray(queries), dtype=torch.float32)
    b = torch.as_tensor(np.asarray(base), dtype=torch.float32)
    dists, idxs = [], []
    for lo in range(0, q.shape[0], chunk):
        d = torch.cdist(q[lo:lo + chunk].to(torch.float64), b.to(torch.float64))
        if exclude is not None:
            rows = torch.arange(d.shape[0])
            d[rows, torch.as_tensor(exclude[lo:lo + chunk])] = float('inf')
        v, i = d.min(dim=1)
        dists.append(v)
        idxs.append(i)
    return torch.cat(dists).numpy(), torch.cat(idxs).numpy()

def reference_distances(real_feats, num, seed):
    """Leave-one-out nearest-neighbour distances of `num` seeded real images to the rest of the set."""
    n = real_feats.shape[0]
    if n < 2:
        raise metric_utils.MetricError('memorisation audit needs at least 2 training images')
    chosen = np.sort(np.random.default_rng([seed, 5]).choice(n, min(num, n), replace=False))
    d, _ = nearest_neighbours(real_feats[chosen], real_feats, exclude=chosen)
    return d

# Result keys after the metric name, in written order (declared to the registry in metric_main).
VALUE_SUFFIXES = ('_nn_median', '_ref_nn_median', '_nn_ratio', '_threshold', '_near_copies', '_near_copy_fraction',
                  '_mannwhitney_p', '_ssim_median', '_ssim_max')
COUNT_SUFFIXES = ('_num_gen', '_num_ref')

def summarize(name, gen_d, ref_d, ssims):
    threshold = float(np.percentile(ref_d, NEAR_COPY_PERCENTILE))
    near = int((gen_d < threshold).sum())
    p = float(scipy.stats.mannwhitneyu(gen_d, ref_d, alternative='less').pvalue) if len(ref_d) > 0 else float('nan')
    values = (float(np.median(gen_d)), float(np.median(ref_d)), float(np.median(gen_d) / max(np.median(ref_d), 1e-12)),
              threshold, near, near / len(gen_d), p, float(np.median(ssims)), float(np.max(ssims)))
    counts = (int(len(gen_d)), int(len(ref_d)))
    return {name + suffix: v for suffix, v in zip(VALUE_SUFFIXES + COUNT_SUFFIXES, values + counts)}

#----------------------------------------------------------------------------

def compute_memorization_metric(opts, name, num_gen, detector_name='inception'):
    detector = opts.get_detector(detector_name)
    detector_kwargs = dict(return_features=True)
    dataset = metric_utils.construct_dataset(opts.dataset_kwargs)
    real_feats = metric_utils.compute_feature_stats_for_dataset(opts, detector, detector_kwargs, capture_all=True).get_all()
    ref_d = reference_distances(real_feats, NUM_REFERENCE, opts.seed)

    # One pass over generated images: features, nearest training image, SSIM of the pair; keep the closest.
    gen_d, gen_nn, ssims, closest = [], [], [], []
    offset = 0
    for images in metric_utils.iterate_generated_images(opts, num_gen, opts.batch_size, desc='memorization'):
        d, nn = nearest_neighbours(detector(images.to(opts.device), **detector_kwargs).cpu().numpy(), real_feats)
        neighbours = torch.stack([torch.as_tensor(np.asarray(dataset[int(j)][0])) for j in nn])
        if neighbours.shape[1] == 1:
            neighbours = neighbours.repeat([1, 3, 1, 1])
        s = ssim_lib.ssim(images, neighbours).numpy() if images.shape == neighbours.shape else np.full(len(d), np.nan)
        for k in range(len(d)):
            closest.append((float(d[k]), offset + k, images[k], neighbours[k]))
        closest = sorted(closest, key=lambda item: item[0])[:NUM_PAIRS_SHOWN]
        gen_d.append(d)
        gen_nn.append(nn)
        ssims.append(s)
        offset += len(d)
    if offset == 0:
        raise metric_utils.MetricError('memorisation audit: no generated images')
    gen_d, gen_nn, ssims = np.concatenate(gen_d), np.concatenate(gen_nn), np.concatenate(ssims)
    results = summarize(name, gen_d, ref_d, ssims)
    if opts.out_dir is not None and opts.rank == 0:
        os.makedirs(opts.out_dir, exist_ok=True)
        _write_csv(os.path.join(opts.out_dir, f'{name}.csv'), gen_d, gen_nn, ssims, results[f'{name}_threshold'])
        _save_pairs_png(os.path.join(opts.out_dir, f'{name}.png'), closest, results[f'{name}_threshold'])
    return results

def _write_csv(path, gen_d, gen_nn, ssims, threshold):
    def write(f):
        writer = csv.writer(f)
        writer.writerow(['generated_index', 'nearest_train_index', 'feature_distance', 'pixel_ssim', 'near_copy'])
        for i, (d, j, s) in enumerate(zip(gen_d, gen_nn, ssims)):
            writer.writerow([i, int(j), f'{d:.6g}', f'{s:.6f}', int(d < threshold)])
    dnnlib.atomic_write(path, write, mode='w')

def _save_pairs_png(path, closest, threshold):
    from matplotlib.figure import Figure # Only needed when plotting; a bare Figure needs no backend switch.
    n = len(closest)
    fig = Figure(figsize=(2.2 * n, 4.8))
    axes = fig.subplots(2, n, squeeze=False)
    for col, (d, idx, gen, real) in enumerate(closest):
        for row, (img, label) in enumerate([(gen, f'generated #{idx}\nd={d:.3g}{" COPY?" if d < threshold else ""}'), (real, 'nearest training')]):
            ax = axes[row][col]
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(label, fontsize=8)
            ax.axis('off')
    fig.tight_layout()
    dnnlib.atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=80))

#----------------------------------------------------------------------------
