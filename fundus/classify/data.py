# Real image sets of the study: zips (or folders) written by dataset_tool.py with integer grades in
# dataset.json, split by patient, hashed by content, and the leakage guard that keeps the generator's
# training images (and any synthetic image) away from the validation and test sets.
#
# Patient ids: a CSV with columns (image, patient) wins; otherwise they follow from the image names:
# '<patient>_left' / '<patient>_right' (EyePACS '10_left', ODIR '0_left'); any other name is its own patient
# (IDRiD and DDR publish no patient id in their names; dataset_tool.py renames images to img00000000.png, so
# a zip built by it needs the CSV to keep both eyes of a patient together).

import csv
import dataclasses
import hashlib
import os
import re

import numpy as np
import PIL.Image

from training import dataset as training_dataset
from fundus.data import labels as fundus_labels
from fundus.classify.config import ClassifyError

#----------------------------------------------------------------------------

_EYE = re.compile(r'^(.+?)[_-](left|right|l|r|od|os)$', re.IGNORECASE)

@dataclasses.dataclass
class ImageSet:
    path:       str             # The zip or folder the images came from ('' for split parts: see origin).
    names:      list            # Member names inside the zip, one per image.
    grades:     np.ndarray      # int64 [N]
    patients:   np.ndarray      # str [N]
    hashes:     list            # sha256 of the decoded pixels (at the file's own resolution), one per image.
    images:     np.ndarray      # uint8 [N, 3, R, R] at the study resolution.

    def __len__(self):
        return len(self.names)

    def subset(self, idx):
        idx = np.asarray(idx, np.int64)
        return ImageSet(self.path, [self.names[i] for i in idx], self.grades[idx], self.patients[idx],
                        [self.hashes[i] for i in idx], self.images[idx])

    def counts(self, num_classes):
        return np.bincount(self.grades, minlength=num_classes).tolist()

#----------------------------------------------------------------------------

def patient_of(name):
    """Patient id from an image name: '10_left' -> '10'; names without an eye suffix are their own patient."""
    key = fundus_labels.image_key(name)
    m = _EYE.match(key)
    return m.group(1) if m else key

def read_patient_csv(path):
    """CSV with a header naming an image column ('image', 'file', 'filename', 'name') and 'patient'."""
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise ClassifyError(f'{path}: cannot read patient file ({e.strerror or e})') from None
    if not rows:
        raise ClassifyError(f'{path}: patient file is empty')
    header = [h.strip().lower() for h in rows[0]]
    ci = next((header.index(h) for h in ('image', 'file', 'filename', 'name') if h in header), None)
    if ci is None or 'patient' not in header:
        raise ClassifyError(f'{path}:1: expected columns "image" and "patient" (found: {", ".join(rows[0])})')
    cp = header.index('patient')
    table = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(ci, cp) or not row[ci].strip() or not row[cp].strip():
            raise ClassifyError(f'{path}:{line}: missing image or patient')
        table[row[ci].strip().replace('\\', '/')] = row[cp].strip()
        table.setdefault(fundus_labels.image_key(row[ci]), row[cp].strip())
    return table

def _patients(names, table, path):
    if table is None:
        return np.array([patient_of(n) for n in names])
    out = []
    for n in names:
        p = table.get(n, table.get(fundus_labels.image_key(n)))
        if p is None:
            raise ClassifyError(f'{path}: {n} has no row in the patient file')
        out.append(p)
    return np.array(out)

#----------------------------------------------------------------------------

def pixel_hash(arr):
    """sha256 over the shape and the uint8 pixels [C, H, W]."""
    h = hashlib.sha256(repr(tuple(arr.shape)).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()

def to_rgb_resized(arr, resolution):
    """uint8 [C, H, W] (C = 1 or 3) -> uint8 [3, R, R] (Lanczos when the size differs)."""
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    if arr.shape[1] != resolution or arr.shape[2] != resolution:
        img = PIL.Image.fromarray(arr.transpose(1, 2, 0)).resize((resolution, resolution), PIL.Image.LANCZOS)
        arr = np.asarray(img).transpose(2, 0, 1)
    return np.ascontiguousarray(arr)

def open_labelled(path, what):
    """An ImageFolderDataset with integer grades; a missing or unusable label set is one ClassifyError line."""
    try:
        ds = training_dataset.ImageFolderDataset(path, use_labels=True)
        has_file = ds.has_label_file()
        labels = ds._raw_labels()
    except training_dataset.DatasetError as e:
        raise ClassifyError(f'{what}: {e}') from None
    if not has_file:
        raise ClassifyError(f'{what}: {path}: dataset.json has no labels; build the zip with dataset_tool.py --labels=FILE')
    if labels.dtype != np.int64:
        raise ClassifyError(f'{what}: {path}: labels are vectors; the study needs one integer grade per image')
    return ds, labels

def load_set(path, what, resolution, num_classes, patient_table=None, progress=None):
    """Read every image of a labelled zip/folder into memory at `resolution`."""
    ds, labels = open_labelled(path, what)
    if labels.size and labels.max() >= num_classes:
        bad = ds._image_fnames[int(np.argmax(labels))]
        raise ClassifyError(f'{what}: {path}: {bad} has grade {int(labels.max())}; the study has {num_classes} grades (0..{num_classes - 1})')
    names = list(ds._image_fnames)
    images, hashes = [], []
    for i in range(len(names)):
        raw = ds._load_raw_image(i)
        hashes.append(pixel_hash(raw))
        images.append(to_rgb_resized(raw, resolution))
        if progress is not None:
            progress.update(1)
    ds.close()
    return ImageSet(os.path.abspath(path), names, labels.astype(np.int64), _patients(names, patient_table, path),
                    hashes, np.stack(images))

#----------------------------------------------------------------------------

def split_by_patient(full, val, test, seed, num_classes):
    """Split one set into (train, val, test) by patient, stratified by each patient's highest grade."""
    patients = np.unique(full.patients)
    worst = {p: 0 for p in patients}
    for p, g in zip(full.patients, full.grades):
        worst[p] = max(worst[p], int(g))
    rng = np.random.default_rng(seed)
    side = {}
    for g in range(num_classes):
        group = np.array(sorted(p for p in patients if worst[p] == g))
        rng.shuffle(group)
        n_test, n_val = int(round(test * len(group))), int(round(val * len(group)))
        for i, p in enumerate(group):
            side[p] = 'test' if i < n_test else 'val' if i < n_test + n_val else 'train'
    parts = [np.flatnonzero([side[p] == s for p in full.patients]) for s in ('train', 'val', 'test')]
    return tuple(full.subset(idx) for idx in parts)

#----------------------------------------------------------------------------
# Leakage guard.

def overlaps(a, b):
    """Pairs of member names of set-like records a and b that share pixels, and the patients they share."""
    by_hash = {}
    for n, h in zip(a['names'], a['hashes']):
        by_hash.setdefault(h, n)
    same = [(by_hash[h], n) for n, h in zip(b['names'], b['hashes']) if h in by_hash]
    shared = sorted(set(map(str, a['patients'])) & set(map(str, b['patients'])))
    return same, shared

def _fmt_pairs(pairs, limit=3):
    shown = ', '.join(f'{x} = {y}' for x, y in pairs[:limit])
    return shown + (f' and {len(pairs) - limit} more' if len(pairs) > limit else '')

def check_leakage(protected, others, patients_too=True):
    """Refuse when any record of `others` shares an image (by content) or a patient with a protected set.

    Args:
        protected: {label: record} with names, hashes, patients (the validation and test sets).
        others:    {label: (record, patients_too)}: training images, the GAN's training set, synthetic pools.

    Returns:
        A list of lines describing the checks that passed (for --dry-run and study.json).
    """
    lines = []
    for olabel, (other, check_patients) in others.items():
        for plabel, prot in protected.items():
            same, shared = overlaps(other, prot)
            if same:
                raise ClassifyError(f'leakage: {len(same)} image(s) of {olabel} are also in {plabel}: {_fmt_pairs(same)}')
            if patients_too and check_patients and shared:
                names = [n for n, p in zip(prot['names'], prot['patients']) if str(p) in set(shared)]
                raise ClassifyError(f'leakage: {len(shared)} patient(s) of {olabel} are also in {plabel}: patient '
                                    f'{", ".join(shared[:3])}{" ..." if len(shared) > 3 else ""} ({", ".join(names[:3])})')
            lines.append(f'{olabel} vs {plabel}: no shared image' + (', no shared patient' if check_patients else ''))
    return lines

def record(s):
    return dict(names=s.names, hashes=s.hashes, patients=s.patients)

def scan_record(path, what, patient_table=None, progress=None):
    """Names, pixel hashes and patients of a zip (labels not needed): for the GAN's training set."""
    try:
        ds = training_dataset.ImageFolderDataset(path, use_labels=False)
    except training_dataset.DatasetError as e:
        raise ClassifyError(f'{what}: {e}') from None
    names = list(ds._image_fnames)
    hashes = []
    for i in range(len(names)):
        hashes.append(pixel_hash(ds._load_raw_image(i)))
        if progress is not None:
            progress.update(1)
    ds.close()
    return dict(names=names, hashes=hashes, patients=_patients(names, patient_table, path))

def file_sha256(path):
    """sha256 of a file, or of every file of a folder (sorted relative names and contents)."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for root, _dirs, files in sorted(os.walk(path)):
            for f in sorted(files):
                full = os.path.join(root, f)
                h.update(os.path.relpath(full, path).encode())
                with open(full, 'rb') as fh:
                    h.update(hashlib.file_digest(fh, 'sha256').digest())
        return h.hexdigest()
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()

#----------------------------------------------------------------------------

def file_sha256_list(hashes):
    """One sha256 over a list of per-image hashes (in order): a fingerprint of a whole image set."""
    return hashlib.sha256('\n'.join(hashes).encode()).hexdigest()

#----------------------------------------------------------------------------
