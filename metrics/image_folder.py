# A minimal read-only image folder (or zip) for images made by any tool: calc_metrics --images=DIR and the
# paired metrics. Same item interface as training.dataset.ImageFolderDataset: (uint8 [C, H, W], label).

import io
import os
import zipfile

import numpy as np
import PIL.Image

from metrics.metric_utils import MetricError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')

#----------------------------------------------------------------------------

class ImageFolder:
    def __init__(self,
        path,                   # Folder (searched recursively) or .zip of images.
        resolution  = None,     # Expected width and height; None = whatever the first image has.
        max_size    = None,     # Use a seeded random subset of at most this many images; None = all.
        xflip       = False,    # Append horizontally flipped copies (doubles the length).
        random_seed = 0,        # Seed of the max_size subset.
        use_labels  = False,    # Accepted for compatibility; folders of generated images have no labels.
        name        = None,     # Dataset name; default: the basename without extension.
    ):
        self._path = os.fspath(path)
        self._zip = None
        if os.path.isdir(self._path):
            names = [os.path.relpath(os.path.join(root, f), self._path) for root, _dirs, files in os.walk(self._path) for f in files]
        elif os.path.isfile(self._path) and zipfile.is_zipfile(self._path):
            names = self._open_zip().namelist()
        else:
            raise MetricError(f'{self._path}: not a folder or zip of images')
        self._fnames = sorted(n for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
        if not self._fnames:
            raise MetricError(f'{self._path}: contains no images ({", ".join(IMAGE_EXTENSIONS)})')
        self.name = name or os.path.splitext(os.path.basename(self._path.rstrip('/')))[0]

        # Select items.
        self._raw_idx = np.arange(len(self._fnames), dtype=np.int64)
        if max_size is not None and len(self._raw_idx) > max_size:
            rng = np.random.RandomState(random_seed)
            self._raw_idx = np.sort(rng.permutation(self._raw_idx)[:max_size])
        self._xflip = np.zeros(len(self._raw_idx), dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

        # Check the first image's shape against the requested resolution; the others are checked on load.
        first = self._load_raw(0)
        self.image_shape = list(first.shape)
        if resolution is not None and (first.shape[1] != resolution or first.shape[2] != resolution):
            raise MetricError(f'{self._path}: {self._fnames[0]} is {first.shape[2]}x{first.shape[1]}, expected {resolution}x{resolution}')

    def _open_zip(self):
        if self._zip is None:
            self._zip = zipfile.ZipFile(self._path)
        return self._zip

    def _read_bytes(self, fname):
        if os.path.isdir(self._path):
            with open(os.path.join(self._path, fname), 'rb') as f:
                return f.read()
        return self._open_zip().read(fname)

    def _load_raw(self, raw_idx):
        fname = self._fnames[raw_idx]
        try:
            img = PIL.Image.open(io.BytesIO(self._read_bytes(fname)))
            img.load()
        except Exception as e:
            raise MetricError(f'{os.path.join(self._path, fname)}: cannot read image ({e})') from None
        if img.mode in ('L', 'I;16', 'I', 'F'):
            # Grey images are repeated to three channels, as NVIDIA does for 1-channel datasets.
            img = img.convert('L') if img.mode != 'L' else img
            arr = np.repeat(np.asarray(img)[np.newaxis], 3, axis=0)
        else:
            arr = np.asarray(img.convert('RGB')).transpose(2, 0, 1)
        return np.ascontiguousarray(arr, dtype=np.uint8)

    def __len__(self):
        return len(self._raw_idx)

    def __getitem__(self, idx):
        image = self._load_raw(self._raw_idx[idx])
        if list(image.shape[1:]) != self.image_shape[1:]:
            raise MetricError(f'{self._path}: {self._fnames[self._raw_idx[idx]]} is {image.shape[2]}x{image.shape[1]}, '
                              f'but {self._fnames[0]} is {self.image_shape[2]}x{self.image_shape[1]}; all images must have one size')
        if self._xflip[idx]:
            image = image[:, :, ::-1].copy()
        return image, self.get_label(idx)

    def fname(self, idx):
        return self._fnames[self._raw_idx[idx]]

    def get_label(self, idx):
        return np.zeros([0], dtype=np.float32)

    @property
    def resolution(self):
        return self.image_shape[1]

    @property
    def num_channels(self):
        return self.image_shape[0]

    @property
    def has_labels(self):
        return False

    @property
    def label_dim(self):
        return 0

    @property
    def label_shape(self):
        return [0]

#----------------------------------------------------------------------------
