# Shared machinery of every metric: options, streaming feature statistics, the real-statistics cache,
# seeded generator sampling and the feature-extraction loops. Detectors live in metrics/detectors.py and
# reach the metrics as arguments (through MetricOptions), never as module-level URLs.

import contextlib
import copy
import hashlib
import json
import os
import zipfile

import numpy as np
import torch
import tqdm

import dnnlib
from metrics import detectors as detector_lib
from torch_utils import distributed
from metrics.errors import MetricError

#----------------------------------------------------------------------------

class MetricOptions:
    """Everything a metric needs, bundled once per `calc_metric` call."""

    def __init__(self,
        G                   = None,     # Generator module, or None when generated images come from a folder.
        G_kwargs            = None,     # Extra keyword arguments for G(z, c, ...); None = {}.
        dataset_kwargs      = None,     # Real (training) dataset: kwargs for dnnlib.construct_class_by_name.
        gen_dataset_kwargs  = None,     # Generated images from a folder (calc_metrics --images); None = use G.
        models              = None,     # {name: module}: further networks a family needs, e.g. {'encoder': E}.
        num_gpus            = 1,        # Number of processes taking part (each handles every num_gpus-th item).
        rank                = 0,        # Rank of this process.
        device              = None,     # torch.device or string; None = CPU.
        progress            = False,    # Show tqdm progress bars on rank 0.
        cache               = True,     # Reuse cached real-image statistics.
        seed                = 0,        # Seed of latents, labels and every random choice inside the metrics.
        detectors           = None,     # {name: detector object}: injected detectors (tests, custom models).
        detector_paths      = None,     # {name: local file or URL}: where to load a named detector from.
        out_dir             = None,     # Folder for plots and other files some metrics write; None = no files.
        bootstrap           = 0,        # Bootstrap replicates for FID/KID confidence intervals (0 = off).
        batch_size          = 64,       # Images per detector call.
    ):
        assert 0 <= rank < num_gpus
        self.G                  = G
        self.G_kwargs           = dnnlib.EasyDict(G_kwargs or {})
        self.dataset_kwargs     = dnnlib.EasyDict(dataset_kwargs or {})
        self.gen_dataset_kwargs = None if gen_dataset_kwargs is None else dnnlib.EasyDict(gen_dataset_kwargs)
        self.models             = dict(models or {})
        self.num_gpus           = num_gpus
        self.rank               = rank
        self.device             = torch.device(device if device is not None else 'cpu')
        self.progress           = bool(progress) and rank == 0
        self.cache              = cache
        self.seed               = int(seed)
        self.detectors          = dict(detectors or {})
        self.detector_paths     = dict(detector_paths or {})
        self.out_dir            = out_dir
        self.bootstrap          = int(bootstrap)
        self.batch_size         = int(batch_size)

    def get_detector(self, name):
        """The named detector: an injected one, else loaded once (from detector_paths or its default source)."""
        if name not in self.detectors:
            self.detectors[name] = detector_lib.load_detector(name, path=self.detector_paths.get(name), device=self.device)
        return self.detectors[name]

    def get_model(self, name, metric):
        """The network `name` that `metric` needs (e.g. the encoder of the *_recon metrics); MetricError when absent."""
        if self.models.get(name) is None:
            raise MetricError(f'{metric} needs the "{name}" network: pass models={{"{name}": ...}} to calc_metric')
        return self.models[name]

    def with_dataset_overrides(self, **overrides):
        """A shallow copy whose real-dataset kwargs have `overrides` applied (e.g. max_size=None, xflip=False)."""
        opts = copy.copy(self)
        opts.dataset_kwargs = dnnlib.EasyDict(self.dataset_kwargs, **overrides)
        return opts

#----------------------------------------------------------------------------
# Streaming statistics. Moments accumulate in float64; the covariance is the biased (divide by N) one that
# NVIDIA's FID uses, so our numbers match theirs rather than pytorch-fid's np.cov (divide by N-1).

class FeatureStats:
    def __init__(self,
        capture_all         = False,    # Keep every feature vector (KID, PR, IS, bootstrap need them).
        capture_mean_cov    = False,    # Accumulate first and second moments (FID needs them).
        max_items           = None,     # Stop accepting items after this many; None = unlimited.
    ):
        self.capture_all, self.capture_mean_cov, self.max_items = capture_all, capture_mean_cov, max_items
        self.num_items = 0
        self.num_features = None    # Fixed by the first batch.
        self.all_features = None    # float32 [n, num_features] arrays, in arrival order (capture_all).
        self.raw_mean = None        # float64 [num_features]: running sum of x (capture_mean_cov).
        self.raw_cov = None         # float64 [num_features, num_features]: running sum of x x^T.

    def set_num_features(self, num_features):
        """Allocate the accumulators on the first batch; every later batch must have the same width."""
        if self.num_features is None:
            self.num_features = num_features
            self.all_features = []
            self.raw_mean = np.zeros(num_features, dtype=np.float64)
            self.raw_cov = np.zeros((num_features, num_features), dtype=np.float64)
        elif num_features != self.num_features:
            raise MetricError(f'feature size changed from {self.num_features} to {num_features}')

    def _room(self):
        # Items still accepted; None = no limit.
        return None if self.max_items is None else max(self.max_items - self.num_items, 0)

    def is_full(self):
        return self._room() == 0

    def append(self, x):
        batch = np.asarray(x, dtype=np.float32)                            # [n, num_features]
        assert batch.ndim == 2
        room = self._room()
        if room is not None and len(batch) > room:
            if room == 0:
                return
            batch = batch[:room] # Keep the first items, drop the overflow.
        self.set_num_features(batch.shape[1])
        self.num_items += len(batch)
        if self.capture_all:
            self.all_features.append(batch)
        if self.capture_mean_cov:
            # float64 sums: 50k items lose nothing to rounding.
            wide = batch.astype(np.float64)
            self.raw_mean += wide.sum(0)
            self.raw_cov += wide.T @ wide

    def append_torch(self, x):
        self.append(x.detach().to(torch.float32).cpu().numpy())

    def get_all(self):
        assert self.capture_all
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features)

    def get_mean_cov(self):
        assert self.capture_mean_cov
        if self.num_items == 0:
            raise MetricError('no feature vectors were collected')
        n = self.num_items
        mu = self.raw_mean / n
        return mu, self.raw_cov / n - np.outer(mu, mu) # E[x x^T] - mu mu^T.

    def merge(self, other):
        """Add another FeatureStats' items (results from other ranks)."""
        if other.num_items == 0:
            return
        self.set_num_features(other.num_features)
        self.num_items += other.num_items
        if self.capture_all:
            self.all_features.extend(other.all_features)
        if self.capture_mean_cov:
            self.raw_mean += other.raw_mean
            self.raw_cov += other.raw_cov

    # Cache files are .npz written with allow_pickle=False: reading a cache can never run code.
    def save(self, path):
        arrays = dict(
            meta=np.frombuffer(json.dumps(dict(capture_all=self.capture_all, capture_mean_cov=self.capture_mean_cov,
                max_items=self.max_items, num_items=self.num_items, num_features=self.num_features)).encode(), dtype=np.uint8),
        )
        if self.capture_all:
            arrays['all_features'] = self.get_all()
        if self.capture_mean_cov:
            arrays['raw_mean'] = self.raw_mean
            arrays['raw_cov'] = self.raw_cov
        dnnlib.atomic_write(path, lambda f: np.savez(f, **arrays))

    @staticmethod
    def load(path):
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data['meta']).decode())
            stats = FeatureStats(capture_all=meta['capture_all'], capture_mean_cov=meta['capture_mean_cov'], max_items=meta['max_items'])
            stats.num_items = meta['num_items']
            stats.num_features = meta['num_features']
            stats.all_features = [data['all_features']] if stats.capture_all else []
            if stats.capture_mean_cov:
                stats.raw_mean = data['raw_mean']
                stats.raw_cov = data['raw_cov']
        return stats

#----------------------------------------------------------------------------
# Dataset content fingerprint. NVIDIA keys its cache on options only, so a dataset rebuilt at the same path
# silently reuses stale statistics (NVlabs/stylegan3#174). Ours also hashes the content: for a zip, every
# member's name, size and CRC-32 from the central directory (cheap, and the CRC covers the bytes); for a
# folder, every file's relative path, size and MD5 of its bytes.

def dataset_fingerprint(path):
    path = os.fspath(path)
    h = hashlib.md5()
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                h.update(f'{info.filename}\0{info.file_size}\0{info.CRC}\n'.encode())
    elif os.path.isdir(path):
        for root, _dirs, files in sorted(os.walk(path)):
            for fname in sorted(files):
                full = os.path.join(root, fname)
                h.update(f'{os.path.relpath(full, path)}\0{os.path.getsize(full)}\0'.encode())
                h.update(_file_md5(full).encode())
    elif os.path.isfile(path):
        h.update(_file_md5(path).encode())
    else:
        raise MetricError(f'{path}: no such dataset file or folder')
    return h.hexdigest()

def _file_md5(path):
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'md5').hexdigest()

def stats_cache_path(dataset, dataset_kwargs, detector, detector_kwargs, stats_kwargs):
    """Cache file of a real dataset's statistics, keyed by options, detector identity and dataset content."""
    key = dict(
        dataset_kwargs  = dict(dataset_kwargs),
        content         = dataset_fingerprint(dataset_kwargs['path']),
        detector        = detector.cache_key,
        detector_kwargs = dict(detector_kwargs),
        stats_kwargs    = dict(stats_kwargs),
    )
    md5 = hashlib.md5(repr(sorted(key.items())).encode()).hexdigest()
    return dnnlib.make_cache_dir_path('gan-metrics', f'{dataset.name}-{detector.name}-{md5}.npz')

#----------------------------------------------------------------------------
# Images to detector input.

def to_rgb_uint8(images):
    """uint8 [N, 1 or 3, H, W] tensor -> uint8 [N, 3, H, W] (grey repeated to three channels)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise MetricError(f'expected images shaped [N, 1 or 3, H, W], got {list(images.shape)}')
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images

def quantize_images(img):
    """Generator output in [-1, 1] -> uint8, as NVIDIA does: floor(127.5 x + 128) clamped to [0, 255]."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)

def _progress(opts, total, desc):
    return tqdm.tqdm(total=total, desc=desc, unit='img', disable=not opts.progress, leave=False, dynamic_ncols=True)

#----------------------------------------------------------------------------
# Real images.

def construct_dataset(dataset_kwargs):
    if not dataset_kwargs:
        raise MetricError('no reference dataset given: use --data (or train with a dataset)')
    return dnnlib.construct_class_by_name(**dataset_kwargs)

def iterate_dataset_images(opts, dataset, num_items, batch_size, desc='real'):
    """Yield uint8 [n, 3, H, W] batches of this rank's share of the first `num_items` dataset items."""
    indices = list(range(opts.rank, num_items, opts.num_gpus))
    with _progress(opts, len(indices), desc) as bar:
        for lo in range(0, len(indices), batch_size):
            batch = [torch.as_tensor(np.asarray(dataset[i][0])) for i in indices[lo:lo + batch_size]]
            images = to_rgb_uint8(torch.stack(batch))
            bar.update(images.shape[0])
            yield images

def compute_feature_stats_for_dataset(opts, detector, detector_kwargs=None, max_items=None, batch_size=None, **stats_kwargs):
    """Feature statistics of the real dataset, cached by options and content."""
    detector_kwargs = dict(detector_kwargs or {})
    batch_size = batch_size or opts.batch_size
    dataset = construct_dataset(opts.dataset_kwargs)
    num_items = len(dataset) if max_items is None else min(max_items, len(dataset))
    if num_items == 0:
        raise MetricError(f'{opts.dataset_kwargs.get("path")}: the reference dataset has no images')

    # A dataset given by path can be cached; reuse an earlier result when its key matches.
    cached = None
    if opts.cache and 'path' in opts.dataset_kwargs:
        cached = stats_cache_path(dataset, opts.dataset_kwargs, detector, detector_kwargs,
            dict(stats_kwargs, max_items=max_items, num_gpus=opts.num_gpus))
    if cached is not None and os.path.isfile(cached):
        return FeatureStats.load(cached)

    # Run the detector over this rank's share, then combine the ranks.
    stats = FeatureStats(**stats_kwargs, max_items=num_items)
    for images in iterate_dataset_images(opts, dataset, num_items, batch_size, desc=f'{detector.name} real'):
        stats.append_torch(detector(images.to(opts.device), **detector_kwargs))
    stats = _gather_stats(opts, stats)
    if opts.rank == 0 and cached is not None: # One writer; FeatureStats.save is atomic.
        stats.save(cached)
    return stats

#----------------------------------------------------------------------------
# Generated images. Latent i comes from numpy's default_rng([seed, i]) alone, so an image depends only on
# (seed, index): results repeat exactly for a seed, whatever the batch size or number of processes.

def sample_latent_and_label(index, seed, z_dim, labels):
    rng = np.random.default_rng([int(seed), int(index)])
    z = rng.standard_normal(z_dim).astype(np.float32)
    if labels is None or len(labels) == 0:
        return z, None
    return z, np.asarray(labels[rng.integers(len(labels))], dtype=np.float32)

def dataset_labels(opts, c_dim):
    """All labels of the real dataset, [N, c_dim] float32, or None for unconditional generators."""
    if c_dim == 0:
        return None
    dataset = construct_dataset(dnnlib.EasyDict(opts.dataset_kwargs, use_labels=True))
    labels = np.stack([np.asarray(dataset.get_label(i), dtype=np.float32) for i in range(len(dataset))])
    if labels.shape[1] != c_dim:
        raise MetricError(f'the generator expects {c_dim} label values, the dataset has {labels.shape[1]}')
    return labels

def make_generator_inputs(indices, seed, z_dim, c_dim, labels, device):
    """Latents [n, z_dim] and labels [n, c_dim] for the given sample indices."""
    zs, cs = [], []
    for idx in indices:
        z, c = sample_latent_and_label(idx, seed, z_dim, labels)
        zs.append(z)
        cs.append(np.zeros([c_dim], dtype=np.float32) if c is None else c)
    z = torch.from_numpy(np.stack(zs)).to(device)
    c = torch.from_numpy(np.stack(cs)).to(device) if c_dim > 0 else torch.zeros([len(zs), 0], device=device)
    return z, c

# Generators with noise inputs (StyleGAN2, noise_mode='random') draw their noise from torch's global RNG.
# Each batch runs with that RNG seeded from (seed, first index of the batch) and restored afterwards, so
# results repeat for a seed (and number of processes) whatever ran before, and a metric evaluated during
# training leaves the training's random streams untouched.

def noise_seed(seed, index):
    return int(np.random.default_rng([int(seed), int(index), 1]).integers(1 << 62))

@contextlib.contextmanager
def seeded_torch_rng(seed, device):
    """Run a block with torch's global RNG (CPU, and `device` when it is a GPU) seeded; restore it afterwards."""
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for idx in cuda:
            torch.cuda.default_generators[idx].manual_seed(seed)
        yield

@contextlib.contextmanager
def restored_noise_const(G):
    """Run a block that may overwrite G's `noise_const` buffers (PPL and EQ redraw them per batch, as NVIDIA
    does); put the original values back afterwards so the caller's generator (e.g. G_ema in training) is
    unchanged."""
    saved = {name: buf.detach().clone() for name, buf in _noise_const_buffers(G)}
    try:
        yield
    finally:
        buffers = dict(G.named_buffers())
        with torch.no_grad():
            for name, value in saved.items():
                buffers[name].copy_(value)

def randomize_noise_const(G, rng):
    """Redraw every `noise_const` buffer of G from numpy Generator `rng` (standard normal)."""
    with torch.no_grad():
        for _name, buf in _noise_const_buffers(G):
            buf.copy_(torch.from_numpy(rng.standard_normal(tuple(buf.shape)).astype(np.float32)))

def _noise_const_buffers(G):
    # (name, buffer) of every fixed noise input, in registration order (the order of the random draws).
    return [(name, buf) for name, buf in G.named_buffers() if name.endswith('noise_const')]

def iterate_generated_images(opts, num_gen, batch_size, desc='generated'):
    """Yield uint8 [n, 3, H, W] batches of this rank's share of `num_gen` generated images.

    Images come from `opts.gen_dataset_kwargs` (a folder of images) when given, else from `opts.G`.
    """
    if opts.gen_dataset_kwargs is not None:
        folder = construct_dataset(opts.gen_dataset_kwargs)
        num_gen = min(num_gen, len(folder))
        yield from iterate_dataset_images(opts, folder, num_gen, batch_size, desc=desc)
        return
    G = opts.G
    if G is None:
        raise MetricError('no generator: give a network pickle or a folder of generated images')
    labels = dataset_labels(opts, G.c_dim)
    indices = list(range(opts.rank, num_gen, opts.num_gpus))
    with _progress(opts, len(indices), desc) as bar, torch.no_grad():
        for lo in range(0, len(indices), batch_size):
            batch = indices[lo:lo + batch_size]
            z, c = make_generator_inputs(batch, opts.seed, G.z_dim, G.c_dim, labels, opts.device)
            with seeded_torch_rng(noise_seed(opts.seed, batch[0]), opts.device):
                img = G(z, c, **opts.G_kwargs)
            images = to_rgb_uint8(quantize_images(img))
            bar.update(images.shape[0])
            yield images

def num_generated_available(opts, num_gen):
    """How many generated images a metric will actually see (a folder may hold fewer than asked)."""
    if opts.gen_dataset_kwargs is None:
        return num_gen
    return min(num_gen, len(construct_dataset(opts.gen_dataset_kwargs)))

def compute_feature_stats_for_generator(opts, detector, detector_kwargs=None, num_gen=50000, batch_size=None, batch_gen=4, **stats_kwargs):
    """Feature statistics of `num_gen` generated images; never cached."""
    detector_kwargs = dict(detector_kwargs or {})
    batch_size = batch_size or opts.batch_size
    num_gen = num_generated_available(opts, num_gen)
    if num_gen == 0:
        raise MetricError(f'{opts.gen_dataset_kwargs.get("path")}: the folder of generated images is empty')
    stats = FeatureStats(max_items=num_gen, **stats_kwargs)
    gen_batch = batch_gen if opts.gen_dataset_kwargs is None else batch_size
    pending = []
    for images in iterate_generated_images(opts, num_gen, gen_batch, desc=f'{detector.name} generated'):
        pending.append(images)
        if sum(x.shape[0] for x in pending) >= batch_size:
            stats.append_torch(detector(torch.cat(pending).to(opts.device), **detector_kwargs))
            pending = []
    if pending:
        stats.append_torch(detector(torch.cat(pending).to(opts.device), **detector_kwargs))
    return _gather_stats(opts, stats)

#----------------------------------------------------------------------------
# Multi-process runs: each rank saw every num_gpus-th item; every rank ends with the union, with the
# feature vectors back in item order, so metrics that draw random subsets (KID, PR, memorisation) see the
# same vectors in the same order as a single process. Arrays travel through torch_utils.distributed.
# all_gather on opts.device (CUDA tensors for NCCL); moments are summed in rank order as before.

def require_process_group(opts):
    """MetricError unless a multi-process metric (num_gpus > 1) runs inside an initialised process group."""
    if opts.num_gpus > 1 and not distributed.is_initialized():
        raise MetricError(f'num_gpus={opts.num_gpus} needs an initialised torch.distributed process group')

def gather_array(opts, array):
    """numpy [n_r, ...] of every rank, concatenated in rank order (torch_utils.distributed.all_gather on opts.device)."""
    return distributed.all_gather(torch.from_numpy(np.ascontiguousarray(array)).to(opts.device)).cpu().numpy()

def _gather_stats(opts, stats):
    if opts.num_gpus == 1:
        return stats
    require_process_group(opts)
    return merge_rank_stats(_gather_rank_stats(opts, stats))

def _gather_rank_stats(opts, stats):
    # Every rank's FeatureStats, rebuilt from tensors gathered with torch_utils.distributed.all_gather.
    gather = lambda array: gather_array(opts, array)
    counts = gather(np.array([[stats.num_items, stats.num_features or 0]], dtype=np.int64)) # [ranks, 2]
    width = int(counts[:, 1].max())
    empty = stats.num_items == 0 # A rank with no items has no accumulators yet: send zeros (they add nothing).
    features = gather(np.zeros([0, width], np.float32) if empty else stats.get_all()) if stats.capture_all else None
    means = gather(np.zeros([1, width]) if empty else stats.raw_mean[None]) if stats.capture_mean_cov else None
    covs = gather(np.zeros([1, width, width]) if empty else stats.raw_cov[None]) if stats.capture_mean_cov else None
    parts, offset = [], 0
    for rank, (num, _width) in enumerate(counts.tolist()):
        part = FeatureStats(capture_all=stats.capture_all, capture_mean_cov=stats.capture_mean_cov, max_items=stats.max_items)
        if num > 0:
            part.set_num_features(width)
            part.num_items = num
            part.all_features = [features[offset:offset + num]] if stats.capture_all else []
            part.raw_mean, part.raw_cov = (means[rank], covs[rank]) if stats.capture_mean_cov else (None, None)
        offset += num
        parts.append(part)
    return parts

def merge_rank_stats(parts):
    """One FeatureStats from per-rank ones, rank r holding items r, r + n, r + 2n, ... (n = len(parts))."""
    first = parts[0]
    merged = FeatureStats(capture_all=first.capture_all, capture_mean_cov=first.capture_mean_cov, max_items=first.max_items)
    for part in parts:
        merged.merge(part)
    if merged.capture_all and merged.num_items > 0:
        ordered = np.empty([merged.num_items, merged.num_features], dtype=np.float32)
        for rank, part in enumerate(parts):
            features = part.get_all()
            if len(ordered[rank::len(parts)]) != len(features):
                raise MetricError(f'rank {rank} returned {len(features)} feature vectors, expected every {len(parts)}-th of {merged.num_items}')
            ordered[rank::len(parts)] = features
        merged.all_features = [ordered]
    return merged

#----------------------------------------------------------------------------
