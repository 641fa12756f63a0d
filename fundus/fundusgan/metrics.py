# Reconstruction metrics of an encoder snapshot against a dataset: every real image x is encoded and
# regenerated, x' = G(w_avg + E(x)), and the pairs (x, x') are scored.
#   ssim_recon           mean SSIM (metrics/ssim.py: Gaussian 11x11, sigma 1.5, 8-bit range)
#   lpips_recon          mean LPIPS-AlexNet (the registry's 'lpips-alex' detector; training uses VGG)
#   fid_recon, kid_recon FID / KID between all reconstructions and all reals (Inception features)
#   lesion_recall_recon  share of the phantom lesions (phantom_lesions.json next to the images) still
#                        present in x', overall and per lesion type; rule below and in docs/fundusgan.md.
# register() adds these names to metrics/metric_main.py's registry (metrics never imports fundus);
# calc_metrics.py calls it and hands a Reconstructor (E + G of the snapshot) in place of G.

import json
import os
import re
import zipfile

import numpy as np
import torch

from fundus.data import phantom
from fundus.fundusgan import common
from fundus.fundusgan import generator as generator_lib
from fundus.fundusgan import paired
from metrics import bootstrap
from metrics import frechet_inception_distance
from metrics import kernel_inception_distance
from metrics import metric_main
from metrics import metric_utils
from metrics.errors import MetricError

NAMES = ('ssim_recon', 'lpips_recon', 'fid_recon', 'kid_recon', 'lesion_recall_recon')
LESION_FILE = 'phantom_lesions.json'
MIN_CONTRAST = 6.0      # Lesions whose real contrast (RGB L2, 8-bit levels) is below this are not visible at this size.
MIN_KEPT = 0.5          # Present when the reconstruction keeps at least this share of the real contrast.

#----------------------------------------------------------------------------

class Reconstructor(torch.nn.Module):
    """E + G of an encoder snapshot, in the place calc_metrics gives a generator."""

    def __init__(self, E, G):
        super().__init__()
        self.E, self.G = E.eval(), G.eval()
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels
        self.z_dim, self.c_dim, self.w_dim = G.z_dim, 0, G.w_dim

    def reconstruct(self, real_uint8):
        img, _ws = generator_lib.reconstruct(self.E, self.G, real_uint8.to(torch.float32) / 127.5 - 1)
        return paired.to_uint8(img)

    def forward(self, z, c, **kwargs):
        if generator_lib.takes_pyramid(self.G):
            raise MetricError('a fundusgan encoder snapshot supports only the *_recon metrics (its generator needs a photo)')
        return self.G(z, c, **kwargs)

def _reconstructor(opts):
    if not isinstance(opts.G, Reconstructor):
        raise MetricError('*_recon metrics need an encoder snapshot: --network=encoder-snapshot-*.pkl')
    return opts.G

@torch.no_grad()
def iterate_recon_pairs(opts, batch_size=16):
    """(real uint8 [n, 3, R, R], reconstruction uint8, dataset indices) over the whole dataset."""
    R = _reconstructor(opts).to(opts.device)
    ds = metric_utils.construct_dataset(opts.with_dataset_overrides(max_size=None, xflip=False).dataset_kwargs)
    for k in range(0, len(ds), batch_size):
        idx = list(range(k, min(k + batch_size, len(ds))))
        real = metric_utils.to_rgb_uint8(torch.from_numpy(np.stack([ds[i][0] for i in idx]))).to(opts.device)
        yield real, R.reconstruct(real), idx, ds

def _mean_with_ci(opts, name, values):
    values = np.asarray(values, dtype=np.float64)
    out = {name: float(values.mean()), f'{name}_std': float(values.std()), f'{name}_num': int(len(values))}
    if opts.bootstrap > 0:
        rng = np.random.default_rng([opts.seed, 31])
        reps = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(opts.bootstrap)]
        out.update(bootstrap.summarize(np.asarray(reps), name))
    return out

#----------------------------------------------------------------------------

def ssim_recon(opts):
    values = [paired.ssim(real.cpu(), fake.cpu()).numpy() for real, fake, _i, _d in iterate_recon_pairs(opts)]
    return _mean_with_ci(opts, 'ssim_recon', np.concatenate(values))

def lpips_recon(opts):
    detector = opts.get_detector('lpips-alex')
    values = [detector(real, fake).cpu().numpy() for real, fake, _i, _d in iterate_recon_pairs(opts)]
    return _mean_with_ci(opts, 'lpips_recon', np.concatenate(values))

def _features(opts):
    detector = opts.get_detector('inception')
    real, fake = [], []
    for r, f, _i, _d in iterate_recon_pairs(opts):
        real.append(detector(r, return_features=True).cpu().numpy().astype(np.float64))
        fake.append(detector(f, return_features=True).cpu().numpy().astype(np.float64))
    return np.concatenate(fake), np.concatenate(real)

def fid_recon(opts):
    fake, real = _features(opts)
    out = {'fid_recon': float(frechet_inception_distance.fid_from_features(fake, real))}
    if opts.bootstrap > 0:
        out.update(bootstrap.summarize(bootstrap.bootstrap_fid(fake, real, opts.bootstrap, seed=opts.seed), 'fid_recon'))
    return out

def kid_recon(opts):
    fake, real = _features(opts)
    rng = np.random.default_rng([opts.seed, 37])
    out = {'kid_recon': float(kernel_inception_distance.kid_from_features(fake, real, 100, 1000, rng=rng))}
    if opts.bootstrap > 0:
        out.update(bootstrap.summarize(bootstrap.bootstrap_kid(fake, real, opts.bootstrap, seed=opts.seed), 'kid_recon'))
    return out

#----------------------------------------------------------------------------
# Lesion recall. For a lesion at layout (u, v) with radius r (phantom units: [-1, 1] across the image),
# centre (cx, cy) = ((u + 1) / 2 * R, (v + 1) / 2 * R) px and radius rp = max(r * R / 2, 0.75) px:
#   contrast(img) = mean RGB over the disc d <= rp + 0.5  minus  mean RGB over the ring rp + 1.5 < d <= 2 rp + 3.5
# A lesion is visible when |contrast(real)| >= MIN_CONTRAST and present in the reconstruction when
# contrast(recon) . contrast(real) / |contrast(real)|^2 >= MIN_KEPT (same colour direction, at least half
# the strength). Recall = present / visible, overall and per type.

def lesion_contrast(img, u, v, r):
    """RGB contrast [3] of the lesion disc against its ring; img float [3, R, R]."""
    res = img.shape[-1]
    cx, cy, rp = (u + 1) / 2 * res, (v + 1) / 2 * res, max(r * res / 2, 0.75)
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    d = np.hypot(xx - cx, yy - cy)
    inner, ring = d <= rp + 0.5, (d > rp + 1.5) & (d <= 2 * rp + 3.5)
    if not inner.any() or not ring.any():
        return np.zeros(3)
    return img[:, inner].mean(axis=1) - img[:, ring].mean(axis=1)

def lesion_present(real, recon, lesion):
    """(visible, present) for one lesion dict (u, v, r); real, recon float [3, R, R] in 0..255."""
    c_real = lesion_contrast(real, lesion['u'], lesion['v'], lesion['r'])
    norm2 = float(c_real @ c_real)
    if np.sqrt(norm2) < MIN_CONTRAST:
        return False, False
    return True, float(lesion_contrast(recon, lesion['u'], lesion['v'], lesion['r']) @ c_real) / norm2 >= MIN_KEPT

def read_lesions(path):
    """{image file inside the dataset: [lesion dicts]} from phantom_lesions.json in a zip or folder."""
    try:
        if os.path.isdir(path):
            with open(os.path.join(path, LESION_FILE), encoding='utf-8') as f:
                meta = json.load(f)
        else:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read(LESION_FILE))
    except (OSError, KeyError, ValueError):
        raise MetricError(f'lesion_recall_recon: {path} has no readable {LESION_FILE} '
                                       '(datasets from dataset_tool.py --source=phantom:N have one)') from None
    return {row['file']: row['lesions'] if 'lesions' in row else _regenerate_lesions(row, meta.get('seed', 0), path)
            for row in meta.get('images', [])}

def _regenerate_lesions(row, seed, path):
    # dataset_tool.py keeps only the counts; phantom layouts are resolution-free functions of (index, seed),
    # so the positions are re-drawn at a small size and checked against the recorded counts.
    match = re.search(r'img(\d+)\.png$', row['file'])
    if match is None:
        raise MetricError(f'lesion_recall_recon: {path}: {LESION_FILE} names {row["file"]}, not a dataset_tool phantom file')
    _img, info = phantom.render(32, row['grade'], phantom.phantom_seed(int(match.group(1)), seed))
    if info['counts'] != row['counts']:
        raise MetricError(f'lesion_recall_recon: {path}: lesions of {row["file"]} cannot be re-drawn (counts differ)')
    return info['lesions']

def lesion_recall_recon(opts):
    table = read_lesions(opts.dataset_kwargs.path)
    counts = {}
    for real, fake, idx, ds in iterate_recon_pairs(opts):
        for k, i in enumerate(idx):
            for lesion in table.get(common.dataset_file(ds, i), []):
                visible, present = lesion_present(real[k].cpu().numpy().astype(np.float64), fake[k].cpu().numpy().astype(np.float64), lesion)
                c = counts.setdefault(lesion['type'], [0, 0, 0]) # visible, present, invisible
                c[0] += visible
                c[1] += present
                c[2] += not visible
    out = {'lesion_recall_recon': float(sum(c[1] for c in counts.values()) / max(1, sum(c[0] for c in counts.values())))}
    for kind, (vis, pres, invis) in sorted(counts.items()):
        out[f'lesion_recall_recon_{kind}'] = float(pres / vis) if vis else float('nan')
        out[f'lesion_recall_recon_{kind}_visible'] = int(vis)
        out[f'lesion_recall_recon_{kind}_invisible'] = int(invis)
    return out

#----------------------------------------------------------------------------

def register():
    """Add the *_recon metrics, with the result keys each writes, to metrics.metric_main's registry (idempotent)."""
    mean = dict(values=('', '_std'), counts=('_num',), interval=True)
    lesion = dict(values=('',) + tuple(f'_{k}' for k in phantom.LESION_KINDS),
                  counts=tuple(f'_{k}_{s}' for k in phantom.LESION_KINDS for s in ('visible', 'invisible')))
    declared = dict(ssim_recon=mean, lpips_recon=mean, fid_recon=dict(interval=True), kid_recon=dict(interval=True),
                    lesion_recall_recon=lesion)
    for fn in (ssim_recon, lpips_recon, fid_recon, kid_recon, lesion_recall_recon):
        if not metric_main.is_valid_metric(fn.__name__):
            metric_main.register_metric(fn.__name__, **declared[fn.__name__])(fn)

def metric_network(data):
    """What calc_metrics hands the metrics for a loaded snapshot dict: a Reconstructor for encoder snapshots."""
    return Reconstructor(data['E'], data['G']) if data.get('E') is not None else None

#----------------------------------------------------------------------------
