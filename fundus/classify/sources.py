# Synthetic image sources: a folder/zip with graded images (e.g. FundusGAN `vary` output or phantoms written by
# dataset_tool.py), a conditional snapshot (class = grade), one unconditional snapshot per grade, or pure
# noise (a negative control). A source yields, per grade, the first n images of a fixed sequence, so a
# sweep's smaller sets are prefixes of its larger ones, and every image is recorded by name or seed.

import dataclasses
import os

import numpy as np

from training import generate
from torch_utils import persistence
from fundus.classify import data as cdata
from fundus.classify.config import ClassifyError

#----------------------------------------------------------------------------

SEED_STRIDE = 1_000_000     # Seed of image i of grade g: source seed + g * SEED_STRIDE + i.

@dataclasses.dataclass
class Pool:
    images:     dict        # grade -> uint8 [n, 3, R, R]
    ids:        dict        # grade -> [str] (member names or 'seed<k>')
    hashes:     dict        # grade -> [sha256 of pixels]

    def take(self, grade, n):
        return self.images[grade][:n]

    def record(self):
        names = [i for g in sorted(self.ids) for i in self.ids[g]]
        hashes = [h for g in sorted(self.hashes) for h in self.hashes[g]]
        return dict(names=names, hashes=hashes, patients=np.array([], dtype=str))

#----------------------------------------------------------------------------

def build_pool(name, src, need, resolution, num_classes, device, progress=None):
    """Images for grades -> counts in `need` from source `src` (a resolved source dict)."""
    kind = src['kind']
    if kind == 'folder':
        return _folder_pool(name, src['path'], need, resolution, num_classes)
    if kind == 'noise':
        return _noise_pool(src['seed'], need, resolution)
    if kind == 'snapshot':
        G = _load(name, src['path'], device)
        if G.c_dim == 0:
            raise ClassifyError(f'sources.{name}: {src["path"]} is an unconditional snapshot (c_dim=0); per-grade images '
                                f'need a conditional one, or kind "snapshots" with one snapshot per grade')
        if G.c_dim < num_classes:
            raise ClassifyError(f'sources.{name}: {src["path"]} has {G.c_dim} classes; the study has {num_classes} grades')
        return _gan_pool({g: G for g in need}, src, need, resolution, device, conditional=True, progress=progress)
    if kind == 'snapshots':
        missing = [g for g in need if g not in src['paths']]
        if missing:
            raise ClassifyError(f'sources.{name}: no snapshot for grade {missing[0]} in "paths"')
        nets = {g: _load(name, src['paths'][g], device) for g in need}
        return _gan_pool(nets, src, need, resolution, device, conditional=False, progress=progress)
    raise ClassifyError(f'sources.{name}: unknown kind {kind!r}')

def _load(name, path, device):
    try:
        return generate.load_generator(path, device=device)
    except generate.GenerateError as e:
        raise ClassifyError(f'sources.{name}: {e}') from None

def _folder_pool(name, path, need, resolution, num_classes):
    if os.path.isdir(path) and not any(files for _r, _d, files in os.walk(path)):
        raise ClassifyError(f'sources.{name}: {path} is an empty folder')
    full = cdata.load_set(path, f'sources.{name}', resolution, num_classes)
    images, ids, hashes = {}, {}, {}
    for g, n in need.items():
        idx = np.flatnonzero(full.grades == g)
        if idx.size < n:
            raise ClassifyError(f'sources.{name}: {path} has {idx.size} images of grade {g}, but {n} are needed')
        idx = idx[:n]
        images[g], ids[g], hashes[g] = full.images[idx], [full.names[i] for i in idx], [full.hashes[i] for i in idx]
    return Pool(images, ids, hashes)

def _noise_pool(seed, need, resolution):
    images, ids, hashes = {}, {}, {}
    for g, n in need.items():
        rng = np.random.default_rng([seed, g])
        arr = rng.integers(0, 256, size=(n, 3, resolution, resolution), dtype=np.uint8)
        images[g], ids[g], hashes[g] = arr, [f'noise{g}-{i}' for i in range(n)], [cdata.pixel_hash(a) for a in arr]
    return Pool(images, ids, hashes)

def _gan_pool(nets, src, need, resolution, device, conditional, progress):
    images, ids, hashes = {}, {}, {}
    for g, n in need.items():
        seeds = [src['seed'] + g * SEED_STRIDE + i for i in range(n)]
        rendered = generate.generate_images(nets[g], seeds, class_idx=g if conditional else None, truncation_psi=src['trunc'],
                                            batch_size=src['batch'], device=device)
        arrs = []
        for _seed, arr in rendered:
            chw = arr.transpose(2, 0, 1)
            hashes.setdefault(g, []).append(cdata.pixel_hash(chw))
            arrs.append(cdata.to_rgb_resized(chw, resolution))
            if progress is not None:
                progress.update(1)
        images[g], ids[g] = np.stack(arrs), [f'seed{s}' for s in seeds]
    return Pool(images, ids, hashes)

#----------------------------------------------------------------------------

def snapshot_training_paths(src):
    """Paths of the training sets recorded in a snapshot source's pickles (training_set_kwargs['path'])."""
    paths = [src['path']] if src['kind'] == 'snapshot' else list(src.get('paths', {}).values()) if src['kind'] == 'snapshots' else []
    out = []
    for p in paths:
        if not os.path.isfile(p):
            raise ClassifyError(f'snapshot {p}: no such file')
        try:
            with open(p, 'rb') as f:
                kw = persistence.load_network_pkl(f).get('training_set_kwargs') or {}
        except Exception as e:
            raise ClassifyError(f'snapshot {p}: cannot read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})') from None
        if kw.get('path'):
            out.append((p, kw['path']))
        else:
            out.append((p, None))
    return out

#----------------------------------------------------------------------------
