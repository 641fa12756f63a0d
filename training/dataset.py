# Training datasets: images in a folder or an uncompressed zip (as written by dataset_tool.py), with
# optional labels from dataset.json, x-flip doubling and a seeded max_size subset.
#
# Items are (image, label): uint8 [C, H, W] numpy arrays and float32 label vectors (one-hot for integer
# labels). Files are listed once, in sorted order; the zip is opened lazily in each process, so the
# dataset pickles cheaply and works inside DataLoader workers.

import io
import json
import os
import warnings
import zipfile

import numpy as np
import torch
from PIL import Image

import dnnlib

try:
    import pyspng # Fast PNG decoding; optional.
except ImportError:
    pyspng = None

#----------------------------------------------------------------------------

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp')

class DatasetError(ValueError):
    """A dataset that cannot be used as asked; the message names the dataset or file and the problem."""

class LabelsIgnoredWarning(UserWarning):
    """The dataset has labels, but training runs unconditionally (--cond=False)."""

#----------------------------------------------------------------------------

class Dataset(torch.utils.data.Dataset):
    """Base class: subclasses provide _load_raw_image(raw_idx) -> uint8 [C, H, W] and _load_raw_labels().

    Item i of the dataset is raw image `self._items[i].raw` (flipped along x when `.flip`). The item table
    is fixed at construction: first the max_size subset (the first max_size positions of a seeded
    permutation, in sorted order, as NVIDIA's loader chooses them, so FID reference sets agree), then,
    with xflip, the same list again marked as flipped.
    """

    def __init__(self,
        name,                   # Name of the dataset (the file or folder name without extension).
        raw_shape,              # Shape of the raw image data: [N, C, H, W].
        max_size    = None,     # Keep at most this many images: a seeded random subset, then sorted; None = all.
        use_labels  = False,    # Return labels from dataset.json? False = zero-length label vectors.
        xflip       = False,    # Append an x-flipped copy of every image (doubles the length)?
        random_seed = 0,        # Seed of the max_size subset.
    ):
        self._name = name
        self._raw_shape = [int(n) for n in raw_shape]
        self._use_labels = use_labels
        self._labels_cache = None
        self._items = _item_table(self._raw_shape[0], max_size, xflip, random_seed)

    # Subclass hooks.
    def _load_raw_image(self, raw_idx):
        raise NotImplementedError

    def _load_raw_labels(self):
        raise NotImplementedError

    def close(self):
        pass

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _describe(self, raw_idx):
        return f'{self._name}[{raw_idx}]'

    # Labels: loaded on first use, validated once.
    def _raw_labels(self):
        if self._labels_cache is None:
            labels = self._load_raw_labels() if self._use_labels else None
            if labels is None:
                labels = np.zeros([self._raw_shape[0], 0], dtype=np.float32)
            _validate_raw_labels(labels, self._raw_shape[0], self._name)
            self._labels_cache = labels
        return self._labels_cache

    def __len__(self):
        return len(self._items)

    def __getitem__(self, idx):
        raw, flip = self._items[idx]
        image = self._load_raw_image(raw)
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8):
            raise DatasetError(f'{self._describe(raw)}: the loader must return uint8 arrays')
        if list(image.shape) != self.image_shape:
            raise DatasetError(f'{self._describe(raw)}: image has shape {list(image.shape)} (C, H, W), '
                               f'but the dataset\'s first image has {self.image_shape}; rebuild it with dataset_tool.py')
        if flip:
            image = np.flip(image, axis=2)                              # Mirror along x (the W axis).
        return np.ascontiguousarray(image), self.get_label(idx)

    def get_label(self, idx):
        raw_label = self._raw_labels()[self._items[idx].raw]
        if self.has_onehot_labels:
            return np.eye(self.label_dim, dtype=np.float32)[raw_label]  # Class index -> one-hot row.
        return np.array(raw_label, dtype=np.float32)

    def get_details(self, idx):
        raw, flip = self._items[idx]
        return dnnlib.EasyDict(raw_idx=int(raw), xflip=bool(flip), raw_label=np.array(self._raw_labels()[raw]))

    @property
    def name(self):
        return self._name

    @property
    def image_shape(self):
        return self._raw_shape[1:]                                      # [C, H, W]

    @property
    def num_channels(self):
        return self.image_shape[0]

    @property
    def resolution(self):
        _channels, height, width = self.image_shape
        if height != width:
            raise DatasetError(f'{self._name}: images are {width}x{height}, not square')
        return height

    @property
    def label_shape(self):
        labels = self._raw_labels()
        if labels.dtype == np.int64:
            return [int(labels.max()) + 1 if labels.size else 0]       # Number of classes.
        return list(labels.shape[1:])

    @property
    def label_dim(self):
        shape = self.label_shape
        if len(shape) != 1:
            raise DatasetError(f'{self._name}: labels have shape {shape}; expected vectors')
        return shape[0]

    @property
    def has_labels(self):
        return all(n != 0 for n in self.label_shape) and len(self.label_shape) > 0

    @property
    def has_onehot_labels(self):
        return self._raw_labels().dtype == np.int64

#----------------------------------------------------------------------------

class _Item(tuple):
    """(raw index, flipped?) with names."""
    raw = property(lambda self: self[0])
    flip = property(lambda self: self[1])

def _item_table(num_raw, max_size, xflip, seed):
    chosen = np.arange(num_raw, dtype=np.int64)
    if max_size is not None and num_raw > max_size:
        permuted = chosen.copy()
        np.random.RandomState(seed % (1 << 31)).shuffle(permuted)
        chosen = np.sort(permuted[:max_size])
    items = [_Item((int(r), False)) for r in chosen]
    if xflip:
        items += [_Item((int(r), True)) for r in chosen]
    return items

def _validate_raw_labels(labels, num_raw, name):
    if not isinstance(labels, np.ndarray) or labels.shape[:1] != (num_raw,):
        raise DatasetError(f'{name}: expected one label per image ({num_raw})')
    if labels.dtype not in (np.float32, np.int64):
        raise DatasetError(f'{name}: labels must be float32 vectors or int64 class indices, got {labels.dtype}')
    if labels.dtype == np.int64 and (labels.ndim != 1 or (labels.size and labels.min() < 0)):
        raise DatasetError(f'{name}: class labels must be non-negative integers, one per image')

#----------------------------------------------------------------------------

def _is_image_name(fname):
    return os.path.splitext(fname)[1].lower() in IMAGE_EXTENSIONS

def _decode_image(data, fname):
    # Decode PNG with pyspng when available, everything else (and PNG fallback) with PIL.
    # Returns [H, W, C] uint8 with C in {1, 3}.
    image = None
    if pyspng is not None and fname.lower().endswith('.png'):
        try:
            image = pyspng.load(data)
        except Exception:
            image = None
    if image is None:
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                if img.mode not in ('L', 'RGB'):
                    raise DatasetError(f'{fname}: image mode {img.mode}; expected L (grayscale) or RGB; '
                                       f'convert the images with dataset_tool.py')
                image = np.array(img)
        except DatasetError:
            raise
        except Exception as e:
            raise DatasetError(f'{fname}: cannot decode image ({e})') from None
    if image.dtype != np.uint8:
        raise DatasetError(f'{fname}: {image.dtype.itemsize * 8}-bit image; expected 8 bits per channel; '
                           f'convert the images with dataset_tool.py')
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.shape[2] not in (1, 3):
        raise DatasetError(f'{fname}: image has {image.shape[2]} channels; expected 1 or 3; '
                           f'convert the images with dataset_tool.py')
    return image

class ImageFolderDataset(Dataset):
    def __init__(self,
        path,                   # Path to a folder or zip of images (PNG, JPEG, WebP).
        resolution  = None,     # Expected resolution; None = take it from the data.
        name        = None,     # Dataset name; None = the file or folder name without extension.
        **super_kwargs,         # Arguments of Dataset (max_size, use_labels, xflip, random_seed).
    ):
        self._path = os.fspath(path)
        self._zipfile = None
        self._zipfile_pid = None

        # List the image files.
        if os.path.isdir(self._path):
            self._type = 'dir'
            self._all_fnames = self._list_folder(self._path)
        elif os.path.isfile(self._path) and zipfile.is_zipfile(self._path):
            self._type = 'zip'
            self._all_fnames = sorted(self._get_zipfile().namelist())
        elif not os.path.exists(self._path):
            raise DatasetError(f'{self._path}: dataset not found')
        else:
            raise DatasetError(f'{self._path}: dataset must be a folder or a zip file')
        self._image_fnames = sorted(f for f in self._all_fnames if _is_image_name(f))
        if len(self._image_fnames) == 0:
            raise DatasetError(f'{self._path}: no image files (PNG, JPEG, WebP) found')

        # Take the shape from the first image and check the resolution.
        if name is None:
            name = os.path.splitext(os.path.basename(os.path.normpath(self._path)))[0]
        first = self._load_raw_image(0)
        raw_shape = [len(self._image_fnames)] + list(first.shape)
        if raw_shape[2] != raw_shape[3]:
            raise DatasetError(f'{self._path}: images must be square, but {self._image_fnames[0]} is '
                               f'{raw_shape[3]}x{raw_shape[2]}; rebuild with dataset_tool.py --resolution')
        if resolution is not None and raw_shape[2] != resolution:
            raise DatasetError(f'{self._path}: images are {raw_shape[3]}x{raw_shape[2]}, but resolution={resolution} '
                               f'was requested')
        super().__init__(name=name, raw_shape=raw_shape, **super_kwargs)
        if self._use_labels:
            self._raw_labels() # A malformed dataset.json fails now, not in a DataLoader worker.

    @staticmethod
    def _list_folder(root):
        fnames = []
        for folder, _dirs, files in os.walk(root):
            for f in files:
                fnames.append(os.path.relpath(os.path.join(folder, f), start=root).replace(os.sep, '/'))
        return sorted(fnames)

    def _get_zipfile(self):
        # One open zip per process; a forked or unpickled copy reopens it.
        assert self._type == 'zip'
        if self._zipfile is None or self._zipfile_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)
            self._zipfile_pid = os.getpid()
        return self._zipfile

    def _open_file(self, fname):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname, 'r')

    def close(self):
        try:
            if self._zipfile is not None and self._zipfile_pid == os.getpid():
                self._zipfile.close()
        finally:
            self._zipfile = None
            self._zipfile_pid = None

    def __getstate__(self):
        return dict(super().__getstate__(), _zipfile=None, _zipfile_pid=None)

    def _describe(self, raw_idx):
        return f'{self._path}: {self._image_fnames[raw_idx]}'

    def _load_raw_image(self, raw_idx):
        fname = self._image_fnames[raw_idx]
        try:
            with self._open_file(fname) as f:
                data = f.read()
        except OSError as e:
            raise DatasetError(f'{self._path}: {fname}: cannot read ({e})') from None
        try:
            image = _decode_image(data, fname)
        except DatasetError as e:
            raise DatasetError(f'{self._path}: {e}') from None
        return image.transpose(2, 0, 1) # HWC => CHW

    def _read_dataset_json(self):
        # None when there is no dataset.json; raises on a malformed one.
        if 'dataset.json' not in self._all_fnames:
            return None
        try:
            with self._open_file('dataset.json') as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise DatasetError(f'{self._path}: dataset.json: cannot parse ({e})') from None

    def has_label_file(self):
        """True when dataset.json lists labels (whether or not use_labels is on)."""
        meta = self._read_dataset_json()
        return isinstance(meta, dict) and meta.get('labels') is not None

    def _load_raw_labels(self):
        meta = self._read_dataset_json()
        labels = meta.get('labels') if isinstance(meta, dict) else None
        if labels is None:
            return None # No labels: zero-length label vectors, as upstream; check_labels() turns --cond into an error.
        if not isinstance(labels, list):
            raise DatasetError(f'{self._path}: dataset.json: "labels" must be a list of [path, label] pairs')
        table = {}
        for entry in labels:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise DatasetError(f'{self._path}: dataset.json: bad entry {entry!r}; expected ["path", label]')
            table[entry[0].replace('\\', '/')] = entry[1]
        missing = [f for f in self._image_fnames if f not in table]
        if missing:
            raise DatasetError(f'{self._path}: dataset.json: no label for {missing[0]}'
                               + (f' (and {len(missing) - 1} more images)' if len(missing) > 1 else ''))
        values = [table[f] for f in self._image_fnames]
        return self._labels_to_array(values)

    def _labels_to_array(self, values):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            arr = np.array(values, dtype=np.int64)
            if arr.size and arr.min() < 0:
                bad = self._image_fnames[int(np.argmin(arr))]
                raise DatasetError(f'{self._path}: dataset.json: negative label {int(arr.min())} for {bad}')
            return arr
        if all(isinstance(v, list) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                raise DatasetError(f'{self._path}: dataset.json: label vectors have different lengths {sorted(lengths)}')
            try:
                return np.array(values, dtype=np.float32).reshape(len(values), -1)
            except (TypeError, ValueError):
                raise DatasetError(f'{self._path}: dataset.json: label vectors must hold numbers') from None
        for f, v in zip(self._image_fnames, values):
            if not (isinstance(v, int) and not isinstance(v, bool)) and not isinstance(v, list):
                raise DatasetError(f'{self._path}: dataset.json: label {v!r} of {f} is neither an integer nor a list')
        raise DatasetError(f'{self._path}: dataset.json: labels mix integers and lists')

#----------------------------------------------------------------------------

def check_labels(dataset, cond, warn=True):
    """Check a dataset against the --cond option of train.py.

    Args:
        dataset: an ImageFolderDataset (use_labels as the training set will be built).
        cond:    the --cond option: True = conditional training.
        warn:    also emit the message as a LabelsIgnoredWarning.

    Returns:
        None, or a one-line message when the dataset has labels that cond=False ignores.

    Raises:
        DatasetError: cond=True but the dataset has no labels.
    """
    has_file = dataset.has_label_file() if hasattr(dataset, 'has_label_file') else dataset.has_labels
    if cond:
        if not has_file or not dataset.has_labels:
            raise DatasetError(f'{getattr(dataset, "_path", dataset.name)}: --cond=True needs labels, but the dataset has '
                               f'none; build it with dataset_tool.py --labels=FILE or train with --cond=False')
        return None
    if has_file:
        msg = (f'{getattr(dataset, "_path", dataset.name)}: the dataset has labels in dataset.json, but --cond=False '
               f'ignores them; pass --cond=True for a class-conditional model')
        if warn:
            warnings.warn(msg, LabelsIgnoredWarning, stacklevel=2)
        return msg
    return None

#----------------------------------------------------------------------------
