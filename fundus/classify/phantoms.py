# A ready-made phantom study: labelled procedural fundus images (fundus/data/phantom.py) written as the zips and
# folders a real study uses. Real sets are zips of patients with two eyes ('p00012_left.png', 'p00012_right.png',
# same grade); the 'perfect' synthetic source is a folder of further phantoms from the same generator, and the
# negative control a noise source. Used by the tests, docs/classify.md and bench/classify.py.

import io
import json
import os
import zipfile

import numpy as np
import PIL.Image

import dnnlib
from fundus.data import phantom

#----------------------------------------------------------------------------

def _png(arr):
    buf = io.BytesIO()
    PIL.Image.fromarray(arr).save(buf, format='PNG', compress_level=1)
    return buf.getvalue()

def _render(resolution, grade, seed, index):
    img, _info = phantom.render(resolution, grade, np.random.default_rng([seed, grade, index]))
    return img

def write_zip(path, patients_per_grade, resolution, seed, grades=(0, 1, 2, 3, 4), start=0):
    """A zip of `patients_per_grade` two-eyed patients per grade; patient ids start at `start`."""
    labels, files = [], {}
    pid = start
    for g in grades:
        for _ in range(patients_per_grade):
            for e, eye in enumerate(('left', 'right')):
                name = f'p{pid:05d}_{eye}.png'
                files[name] = _png(_render(resolution, g, seed, 2 * pid + e))
                labels.append([name, int(g)])
            pid += 1
    def writer(f):
        with zipfile.ZipFile(f, 'w', compression=zipfile.ZIP_STORED) as z:
            for name, data in files.items():
                z.writestr(name, data)
            z.writestr('dataset.json', json.dumps(dict(labels=labels)))
    dnnlib.atomic_write(path, writer)
    return pid

def write_folder(path, per_grade, resolution, seed, grades=(0, 1, 2, 3, 4)):
    """A folder of `per_grade` phantoms per grade with dataset.json (a folder source)."""
    os.makedirs(path, exist_ok=True)
    labels = []
    for g in grades:
        for i in range(per_grade):
            name = f'syn_g{g}_{i:05d}.png'
            data = _png(_render(resolution, g, seed + 1_000_003, i))
            dnnlib.atomic_write(os.path.join(path, name), lambda f, d=data: f.write(d))
            labels.append([name, int(g)])
    dnnlib.atomic_write(os.path.join(path, 'dataset.json'), lambda f: f.write(json.dumps(dict(labels=labels)).encode()))
    return path

def make_study(outdir, train_patients=3, val_patients=4, test_patients=8, synthetic_per_grade=(40,), resolution=32, seeds=5,
               steps=150, arch='tiny', seed=0, noise=True, oversample=True, classic=True):
    """Write train/val/test zips, a phantom folder source and study.json into `outdir`; returns the study path."""
    os.makedirs(outdir, exist_ok=True)
    nxt = write_zip(os.path.join(outdir, 'train.zip'), train_patients, resolution, seed)
    nxt = write_zip(os.path.join(outdir, 'val.zip'), val_patients, resolution, seed, start=nxt)
    write_zip(os.path.join(outdir, 'test.zip'), test_patients, resolution, seed, start=nxt)
    write_folder(os.path.join(outdir, 'phantom-source'), max(synthetic_per_grade), resolution, seed)
    conditions = ['real'] + ['real+oversample'] * oversample + ['real+classic'] * classic
    conditions = [{'kind': c} for c in conditions] + [{'kind': 'real+synthetic', 'source': 'phantom', 'per_grade': list(synthetic_per_grade)}]
    sources = {'phantom': {'kind': 'folder', 'path': 'phantom-source'}}
    if noise:
        sources['noise'] = {'kind': 'noise', 'seed': seed}
        conditions.append({'kind': 'real+synthetic', 'source': 'noise', 'per_grade': max(synthetic_per_grade)})
    study = dict(name='phantoms', resolution=resolution, seeds=seeds, bootstrap=1000,
                 data=dict(train='train.zip', val='val.zip', test='test.zip'), sources=sources, conditions=conditions,
                 model=dict(arch=arch, steps=steps, batch=32, lr=3e-3, val_every=max(1, steps // 5)))
    path = os.path.join(outdir, 'study.json')
    dnnlib.atomic_write(path, lambda f: f.write(json.dumps(study, indent=1).encode()))
    return path

#----------------------------------------------------------------------------
