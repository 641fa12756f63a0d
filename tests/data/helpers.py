# Small builders for data tests: image files, zips and retina-derived photos.

import io
import json
import os
import zipfile

import numpy as np
from PIL import Image

#----------------------------------------------------------------------------

def random_image(rng, h, w, c=3):
    return rng.integers(0, 256, size=(h, w, c) if c > 1 else (h, w), dtype=np.uint8)

def png_bytes(arr, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='png', **kwargs)
    return buf.getvalue()

def write_image_folder(root, images, labels=None):
    # images: {relative name: uint8 array}; labels: {relative name: label} or None (no dataset.json).
    os.makedirs(root, exist_ok=True)
    for name, arr in images.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(arr).save(path)
    if labels is not None:
        with open(os.path.join(root, 'dataset.json'), 'w') as f:
            json.dump(dict(labels=[[k, v] for k, v in labels.items()]), f)
    return root

def write_image_zip(path, images, labels=None):
    with zipfile.ZipFile(path, 'w') as z:
        for name, arr in images.items():
            z.writestr(name, png_bytes(arr))
        if labels is not None:
            z.writestr('dataset.json', json.dumps(dict(labels=[[k, v] for k, v in labels.items()])))
    return path

def small_retina(size=353):
    # The scikit-image fundus photo (1411x1411), box-reduced for speed.
    import skimage.data
    img = Image.fromarray(skimage.data.retina())
    return np.asarray(img.resize((size, size), Image.BOX))

def snapshot(folder):
    # Names, sizes and mtimes of everything in a folder (to prove nothing changed).
    out = {}
    for root, dirs, files in os.walk(folder):
        for f in dirs + files:
            p = os.path.join(root, f)
            st = os.lstat(p)
            out[os.path.relpath(p, folder)] = (st.st_size, st.st_mtime_ns)
    return out

#----------------------------------------------------------------------------
