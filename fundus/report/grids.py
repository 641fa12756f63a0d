# Image rows per DR grade for report pages: synthetic rows rendered from a snapshot (training.generate),
# real rows read from a training dataset. Each row is (label, [H, W, 3] uint8 grid), ready for
# page.ImageRow(label, media.image_data_uri(grid), ...).

import os

import numpy as np
import torch

from fundus import grades
from training import dataset as dataset_lib
from training import generate

GRID_COLS = 8   # Images per row (seeds 0-7 for synthetic rows).

#----------------------------------------------------------------------------

def _label(class_idx):
    return grades.grade_name(class_idx) if class_idx is not None else 'all'

def generate_grade_grids(snapshot, num_per_class=GRID_COLS, device='cpu'):
    """Generate a row of images per class (or one row for unconditional nets). Returns [(label, grid)], G.c_dim."""
    device = torch.device(device)
    G = generate.load_generator(snapshot, device)
    seeds = list(range(num_per_class))
    rows = []
    for idx in list(range(G.c_dim)) if G.c_dim > 0 else [None]:
        images = [arr for _, arr in generate.generate_images(G, seeds, class_idx=idx, batch_size=num_per_class, device=device)]
        rows.append((_label(idx), generate.make_grid(np.stack(images), cols=num_per_class)))
    return rows, G.c_dim

def real_grade_grids(options, num_per_class=GRID_COLS):
    """Rows of real training images per grade from the dataset named in training_options.json; [] if unavailable."""
    kwargs = (options or {}).get('training_set_kwargs')
    if not kwargs or not os.path.exists(str(kwargs.get('path', ''))):
        return []
    data = dataset_lib.ImageFolderDataset(path=kwargs['path'], use_labels=True)
    per_class = dict()
    for i in range(len(data)):
        label = data.get_label(i) if data.has_labels else None
        key = int(np.argmax(label)) if label is not None and np.size(label) > 0 else None
        bucket = per_class.setdefault(key, [])
        if len(bucket) < num_per_class:
            img, _ = data[i]
            bucket.append(np.asarray(img).transpose(1, 2, 0))
        if len(per_class) and all(len(v) >= num_per_class for v in per_class.values()) and i > 50 * num_per_class:
            break
    keys = sorted(per_class, key=lambda k: -1 if k is None else k)
    return [(_label(key), generate.make_grid(np.stack(per_class[key]), cols=num_per_class)) for key in keys]

#----------------------------------------------------------------------------
