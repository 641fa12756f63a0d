# The paired metrics of the registry (ssim, msssim, lpips, lpips_vgg): the i-th generated image (sorted
# file names of --images) against the i-th real image (--data), summarised as mean, std and count.
# The per-pair maths lives in metrics/ssim.py and metrics/lpips.py (tensor API: metrics/paired.py).

import numpy as np
import torch

from metrics import metric_utils
from metrics import ssim as ssim_lib
from metrics.errors import MetricError

#----------------------------------------------------------------------------

def iterate_pairs(opts, batch_size=16):
    """Yield (generated, real) uint8 [n, 3, H, W] batches of matching images."""
    if opts.gen_dataset_kwargs is None:
        raise MetricError('paired metrics (ssim, msssim, lpips) compare two folders: give --images=DIR and --data=DIR with matching files')
    real = metric_utils.construct_dataset(opts.dataset_kwargs)
    gen = metric_utils.construct_dataset(opts.gen_dataset_kwargs)
    if len(real) != len(gen):
        raise MetricError(f'paired metrics need the same number of images: --data has {len(real)}, --images has {len(gen)}')
    a = metric_utils.iterate_dataset_images(opts, gen, len(gen), batch_size, desc='generated')
    b = metric_utils.iterate_dataset_images(opts, real, len(real), batch_size, desc='real')
    for x, y in zip(a, b):
        if x.shape != y.shape:
            raise MetricError(f'paired metrics need images of one size: generated {list(x.shape[1:])}, real {list(y.shape[1:])}')
        yield x, y

def summarize(name, values):
    """Result keys <name>, <name>_std, <name>_num of per-pair values [N]."""
    return {name: float(np.mean(values)), f'{name}_std': float(np.std(values)), f'{name}_num': int(len(values))}

def compute_ssim(opts, multiscale):
    fn = ssim_lib.ms_ssim if multiscale else ssim_lib.ssim
    values = torch.cat([fn(x, y) for x, y in iterate_pairs(opts)]).numpy()
    return summarize('msssim' if multiscale else 'ssim', values)

def compute_lpips(opts, net, name):
    detector = opts.get_detector(f'lpips-{net}')
    values = torch.cat([detector(x, y).cpu() for x, y in iterate_pairs(opts)]).numpy()
    return summarize(name, values)

#----------------------------------------------------------------------------
