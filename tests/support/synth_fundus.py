# Tiny synthetic fundus-like datasets for training tests: a bright disc on black with a brighter "optic
# disc" spot, written as a folder of PNGs (+ dataset.json labels when asked). Deterministic per seed.

import json
import os

import numpy as np
import PIL.Image

#----------------------------------------------------------------------------

def fundus_like(seed, res=16, grade=0):
    """uint8 [res, res, 3] image: orange disc, bright spot whose position depends on the seed, darker
    lesion dots whose number grows with the grade."""
    rnd = np.random.RandomState(seed)
    yy, xx = (np.mgrid[0:res, 0:res] + 0.5) / res - 0.5
    r = np.sqrt(xx ** 2 + yy ** 2)
    img = np.zeros([res, res, 3], dtype=np.float64)
    fov = r < 0.45
    img[fov] = [0.75, 0.35, 0.15]
    cx, cy = rnd.uniform(-0.2, 0.2, size=2)
    img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.005)[..., None] * [0.25, 0.3, 0.2] * fov[..., None]
    for _ in range(grade * 2):
        lx, ly = rnd.uniform(-0.3, 0.3, size=2)
        img -= np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / 0.002)[..., None] * [0.4, 0.2, 0.1] * fov[..., None]
    img += rnd.normal(0, 0.02, size=img.shape) * fov[..., None]
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)

def write_dataset(path, num_images=16, res=16, num_grades=None, seed=0):
    """Folder of PNGs; with num_grades, a dataset.json with integer labels (grade = index % num_grades)."""
    os.makedirs(path, exist_ok=True)
    labels = []
    for i in range(num_images):
        grade = 0 if num_grades is None else i % num_grades
        fname = f'img{i:05d}.png'
        PIL.Image.fromarray(fundus_like(seed * 100003 + i, res=res, grade=grade)).save(os.path.join(path, fname))
        labels.append([fname, grade])
    if num_grades is not None:
        with open(os.path.join(path, 'dataset.json'), 'w') as f:
            json.dump(dict(labels=labels), f)
    return path

#----------------------------------------------------------------------------
