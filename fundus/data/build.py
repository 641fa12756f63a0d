# The library half of dataset_tool.py: build a training dataset (an uncompressed-PNG zip or folder plus
# dataset.json) from a folder or zip of photographs, optionally cropping each fundus photo to its circular
# field of view and attaching grades from a public dataset's label file; or a labelled zip of procedural
# phantom fundus images.
#
#     result = build.build_dataset('phantom:200', 'phantoms.zip', resolution=(64, 64))
#     result.kept, result.resolution, result.report['skipped']
#
# The output layout is NVIDIA's: 00000/img00000000.png ... (the folder is the first five digits of the
# eight-digit index) and dataset.json = {"labels": [["00000/img00000000.png", label], ...]} or
# {"labels": null}. We add dataset_report.json (what was kept and what was skipped, and why) and, for
# phantoms, phantom_lesions.json (lesion counts per image). Rules for bad input are listed in
# docs/data.md; every stop is a DatasetError whose one-line message names the file or option.

import dataclasses
import functools
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import stat
import sys
import tempfile
import warnings
import zipfile

import numpy as np
import tqdm
from PIL import Image

import dnnlib
from fundus.data import labels as fundus_labels
from fundus.data import phantom as fundus_phantom
from fundus.data import preprocess

#----------------------------------------------------------------------------

class DatasetError(ValueError):
    """A source, destination, option or image that stops the build; the message names it (one line)."""

#----------------------------------------------------------------------------

SOURCE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp')
SKIP_REASONS = ('unreadable', 'too_large', 'too_small', 'no_fov', 'no_label', 'ungradable', 'grade_excluded',
                'duplicate', 'outside_source')
DEFAULT_MAX_PIXELS = 89_478_485     # PIL's decompression-bomb warning level (about 9459 x 9459).
MAX_FILE_BYTES = 1 << 30            # Larger files are not read (too_large).

class _Skip(Exception):
    # This file is left out, for `reason` (one of SKIP_REASONS).
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason, self.detail = reason, detail

class _Stop(Exception):
    # This file stops the whole run; the message is prefixed with the file name.
    pass

@dataclasses.dataclass
class Item:
    name:   str                 # Path inside the source (posix), or 'phantom/<index>'.
    ref:    object = None       # Absolute file path (folder), member name (zip) or phantom index.
    skip:   str = None          # A reason decided before decoding (symlink outside the source).
    detail: str = ''
    label:  object = None       # Label to write to dataset.json, when labels are used.

@dataclasses.dataclass
class Options:
    source_kind:    str             # 'dir', 'zip' or 'phantom'.
    source_path:    str
    width:          int = None      # Output width and height; None = keep the source size.
    height:         int = None
    transform:      str = None      # None, 'center-crop', 'center-crop-wide' or 'fundus-crop'.
    resize_filter:  str = 'lanczos'
    channels:       str = 'rgb'
    min_size:       int = 8
    max_pixels:     int = DEFAULT_MAX_PIXELS
    phantom_seed:   int = 0
    phantom_grades: tuple = (0, 1, 2, 3, 4)

#----------------------------------------------------------------------------
# Open zips, one per process and path (workers inherit nothing; each opens its own).

_open_zips = {}

def _get_zip(path):
    # Keyed by process and by the file's identity, so a replaced zip is never read through a stale handle.
    st = os.stat(path)
    key = (path, os.getpid(), st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _open_zips:
        _open_zips[key] = zipfile.ZipFile(path)
    return _open_zips[key]

def _close_zips():
    for z in _open_zips.values():
        try:
            z.close()
        except Exception:
            pass
    _open_zips.clear()

def reset_for_tests():
    _close_zips()

#----------------------------------------------------------------------------
# Listing sources.

def _is_source_image(name):
    return os.path.splitext(name)[1].lower() in SOURCE_EXTENSIONS

def _within(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

def list_folder(root):
    """Sorted Items of the image files under root; symlinks whose target lies outside root are listed
    with skip='outside_source' and never read."""
    root_real = os.path.realpath(root)
    items, seen_dirs = [], set()

    def walk(folder, rel):
        real = os.path.realpath(folder)
        if real in seen_dirs: # A symlink loop.
            return
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise DatasetError(f'{folder}: cannot list folder ({e.strerror})')
        for entry in entries:
            name = f'{rel}{entry.name}'
            target = os.path.realpath(entry.path)
            if entry.is_symlink() and not _within(target, root_real):
                if entry.is_dir() or _is_source_image(entry.name):
                    items.append(Item(name=name, skip='outside_source', detail=f'symlink to {target}, outside the source folder'))
                continue
            if entry.is_dir():
                walk(entry.path, name + '/')
            elif entry.is_file() and _is_source_image(entry.name):
                items.append(Item(name=name, ref=entry.path))

    walk(root, '')
    return sorted(items, key=lambda it: it.name)

def _unsafe_member(name):
    n = name.replace('\\', '/')
    return n.startswith('/') or re.match(r'^[A-Za-z]:', n) is not None or '..' in n.split('/')

def list_zip(path):
    """Sorted Items of the image members of a zip; refuses zips with absolute or '..' member names."""
    try:
        z = _get_zip(path)
        infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f'{path}: not a readable zip file ({e})')
    items = []
    for info in infos:
        if _unsafe_member(info.filename):
            raise DatasetError(f'{path}: unsafe member name {info.filename!r} (absolute path or ".."); refusing to read this zip')
        if info.is_dir() or not _is_source_image(info.filename):
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            items.append(Item(name=info.filename, skip='outside_source', detail='symlink member'))
            continue
        items.append(Item(name=info.filename, ref=info.filename))
    return sorted(items, key=lambda it: it.name)

def read_source_labels(kind, path):
    """Labels from a dataset.json at the source root (NVIDIA behaviour): {relative path: label} or None."""
    try:
        if kind == 'dir':
            p = os.path.join(path, 'dataset.json')
            if not os.path.isfile(p):
                return None
            with open(p, 'rb') as f:
                meta = json.load(f)
        else:
            z = _get_zip(path)
            if 'dataset.json' not in z.namelist():
                return None
            with z.open('dataset.json') as f:
                meta = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f'{path}: dataset.json: cannot parse ({e})')
    labels = meta.get('labels') if isinstance(meta, dict) else None
    if labels is None:
        return None
    try:
        return {str(k).replace('\\', '/'): v for k, v in labels}
    except (TypeError, ValueError):
        raise DatasetError(f'{path}: dataset.json: "labels" must be a list of [path, label] pairs')

#----------------------------------------------------------------------------
# Decoding: any PIL-readable photo -> uint8 [H, W, 3] RGB, with notes on what was converted.

def _read_bytes(opts, item):
    try:
        if opts.source_kind == 'dir':
            size = os.path.getsize(item.ref)
            if size > MAX_FILE_BYTES:
                raise _Skip('too_large', f'file is {size} bytes')
            with open(item.ref, 'rb') as f:
                return f.read()
        z = _get_zip(opts.source_path)
        info = z.getinfo(item.ref)
        if info.file_size > MAX_FILE_BYTES:
            raise _Skip('too_large', f'member is {info.file_size} bytes uncompressed')
        return z.read(item.ref)
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as e:
        # Permissions, I/O errors, corrupt or encrypted zip members.
        raise _Skip('unreadable', f'cannot read ({getattr(e, "strerror", None) or e})')

def _to_rgb(img, notes):
    # Apply the conversion rules (docs/data.md): 16-bit -> 8-bit, palette/CMYK/YCbCr -> RGB, alpha ->
    # composited over black, grayscale -> replicated to RGB.
    mode = img.mode
    if mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
        arr = np.asarray(img)
        notes.append('16-bit')
        arr = np.clip(np.round(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return preprocess.to_rgb_uint8(arr)
    if mode == 'F':
        raise _Skip('unreadable', 'floating-point image (mode F) is not supported')
    if mode == 'P':
        notes.append('palette')
        img = img.convert('RGBA' if 'transparency' in img.info else 'RGB')
    elif mode == 'CMYK':
        notes.append('cmyk')
        img = img.convert('RGB')
    elif mode == '1':
        img = img.convert('L')
    elif mode not in ('L', 'LA', 'RGB', 'RGBA', 'PA'):
        notes.append(mode.lower())
        img = img.convert('RGB')
    if img.mode == 'PA':
        img = img.convert('RGBA')
    if img.mode in ('LA', 'RGBA'):
        notes.append('alpha')
    if img.mode in ('L', 'LA'):
        notes.append('grayscale')
    return preprocess.to_rgb_uint8(np.asarray(img))

def decode(data, max_pixels):
    """Bytes -> (uint8 [H, W, 3], notes). Raises _Skip('unreadable' | 'too_large', detail)."""
    if len(data) == 0:
        raise _Skip('unreadable', 'empty file (0 bytes)')
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise _Skip('too_large', f'{w}x{h} = {w * h} pixels exceeds --max-pixels={max_pixels}')
                img.load()
                return _to_rgb(img, notes), notes
    except _Skip:
        raise
    except Image.DecompressionBombError as e:
        raise _Skip('too_large', f'decompression-bomb guard: {e}')
    except Exception as e:
        msg = str(e) or type(e).__name__
        raise _Skip('unreadable', f'not a readable image ({msg})')

#----------------------------------------------------------------------------
# Transforms.

def _resample(opts):
    return {'lanczos': Image.LANCZOS, 'box': Image.BOX}[opts.resize_filter]

def _resize(arr, w, h, opts):
    if arr.shape[1] == w and arr.shape[0] == h:
        return arr
    return np.asarray(Image.fromarray(arr).resize((w, h), resample=_resample(opts)))

def transform(arr, opts):
    """Apply the transform of `opts` to uint8 [H, W, 3]; returns uint8 [H', W', 3] or raises _Skip."""
    h, w = arr.shape[:2]
    W, H = opts.width, opts.height
    if opts.transform == 'fundus-crop':
        try:
            fov = preprocess.detect_fov(arr)
        except preprocess.NoFOVError as e:
            raise _Skip('no_fov', str(e))
        if 2 * fov.radius < opts.min_size:
            raise _Skip('too_small', f'FOV diameter {2 * fov.radius:.0f} px is below --min-size={opts.min_size}')
        return preprocess.crop_to_fov(arr, W, fov=fov, resample=_resample(opts))
    if min(w, h) < opts.min_size:
        raise _Skip('too_small', f'{w}x{h} is below --min-size={opts.min_size}')
    if opts.transform == 'center-crop':
        crop = min(w, h)
        arr = arr[(h - crop) // 2:(h - crop) // 2 + crop, (w - crop) // 2:(w - crop) // 2 + crop]
        return _resize(arr, W, H, opts)
    if opts.transform == 'center-crop-wide':
        # Crop the centre band with the W:H aspect, resize to WxH and letterbox into a WxW square.
        ch = int(round(w * H / W))
        if ch > h:
            cw = int(round(h * W / H))
            arr = arr[:, (w - cw) // 2:(w - cw) // 2 + cw]
        else:
            arr = arr[(h - ch) // 2:(h - ch) // 2 + ch]
        arr = _resize(arr, W, H, opts)
        canvas = np.zeros((W, W, 3), dtype=np.uint8)
        canvas[(W - H) // 2:(W - H) // 2 + H] = arr
        return canvas
    if W is not None:
        if w != h:
            raise _Stop(f'image is {w}x{h}, not square; pass --transform=center-crop, '
                        f'--transform=center-crop-wide or --fundus-crop')
        return _resize(arr, W, H, opts)
    return arr

def _encode_png(arr, channels):
    img = Image.fromarray(arr)
    if channels == 'gray':
        img = img.convert('L')
    buf = io.BytesIO()
    img.save(buf, format='png', compress_level=0, optimize=False)
    return buf.getvalue()

def process_item(opts, item):
    """Worker: one Item -> result dict (status 'ok' with the PNG, or 'skip' with a reason)."""
    res = dict(name=item.name, label=item.label)
    try:
        if item.skip:
            raise _Skip(item.skip, item.detail)
        if opts.source_kind == 'phantom':
            grade = fundus_phantom.grade_for_index(item.ref, opts.phantom_seed, opts.phantom_grades)
            arr, info = fundus_phantom.render(opts.width or 256, grade, fundus_phantom.phantom_seed(item.ref, opts.phantom_seed))
            info.pop('lesions')
            res.update(label=grade, phantom=info)
            notes = []
        else:
            arr, notes = decode(_read_bytes(opts, item), opts.max_pixels)
        res['digest'] = hashlib.sha1(np.asarray(arr.shape, dtype=np.int64).tobytes() + arr.tobytes()).hexdigest()
        out = transform(arr, opts)
    except _Skip as e:
        res.update(status='skip', reason=e.reason, detail=e.detail)
        return res
    except _Stop as e:
        res.update(status='error', detail=f'{item.name}: {e}')
        return res
    res.update(status='ok', png=_encode_png(out, opts.channels), size=(out.shape[1], out.shape[0]), notes=notes)
    return res

#----------------------------------------------------------------------------
# Output: a zip through dnnlib.atomic_write, or a folder written under a temp name and swapped in at
# the end; the destination appears only when everything was written.

class _FolderWriter:
    def __init__(self, dest):
        self.dest = dest
        self.tmp = tempfile.mkdtemp(dir=os.path.dirname(dest), prefix=f'.{os.path.basename(dest)}.tmp-')

    def write(self, fname, data):
        path = os.path.join(self.tmp, fname)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)

    def commit(self):
        # A folder cannot be replaced atomically: move the old one aside, rename, then delete the old one.
        old = None
        if os.path.exists(self.dest):
            old = tempfile.mkdtemp(dir=os.path.dirname(self.dest), prefix=f'.{os.path.basename(self.dest)}.old-')
            os.rmdir(old)
            os.rename(self.dest, old)
        os.rename(self.tmp, self.dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self):
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)

def write_output(dest, fill):
    """fill(put) writes every file with put(name_in_dataset, bytes); dest (.zip or folder) appears only if it returns."""
    dest = os.path.abspath(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if dest.lower().endswith('.zip'):
        def write_zip(f):
            with zipfile.ZipFile(f, 'w', compression=zipfile.ZIP_STORED) as z:
                fill(z.writestr)
        dnnlib.atomic_write(dest, write_zip)
        return
    writer = _FolderWriter(dest)
    try:
        fill(writer.write)
        writer.commit()
    except BaseException:
        writer.abort()
        raise

def check_dest(dest, overwrite, source_path):
    d = os.path.abspath(dest)
    if source_path is not None and _within(d, os.path.realpath(source_path)):
        raise DatasetError(f'{dest}: destination lies inside the source {source_path}')
    if source_path is not None and os.path.realpath(d) == os.path.realpath(source_path):
        raise DatasetError(f'{dest}: destination is the source')
    if not os.path.exists(d):
        return
    if not overwrite:
        raise DatasetError(f'{dest}: destination exists; pass --overwrite to replace it')
    if d.lower().endswith('.zip'):
        if not os.path.isfile(d):
            raise DatasetError(f'{dest}: destination exists and is not a file')
        return
    if not os.path.isdir(d):
        raise DatasetError(f'{dest}: destination exists and is not a folder')
    if os.listdir(d) and not os.path.isfile(os.path.join(d, 'dataset.json')):
        raise DatasetError(f'{dest}: refusing to replace a non-empty folder that holds no dataset.json')

#----------------------------------------------------------------------------
# Labels: attach them to Items and decide the label-based skips before any decoding.

def _parse_int_list(text, option):
    parts = text.split(',') if isinstance(text, str) else list(text)
    try:
        values = tuple(int(v) for v in parts if str(v).strip() != '')
    except ValueError:
        raise DatasetError(f'{option}={text}: expected a comma-separated list of integers')
    if not values:
        raise DatasetError(f'{option}={text}: empty list')
    return values

def attach_labels(items, table, grades, include_ungradable):
    """Set Item.label from a LabelTable; returns (items, names of label rows without an image)."""
    by_key = {}
    for it in items:
        if it.skip:
            continue
        key = fundus_labels.image_key(it.name)
        if key in by_key:
            raise DatasetError(f'{table.path}: label {key!r} matches two images, {by_key[key].name} and {it.name}')
        by_key[key] = it
    for key, it in by_key.items():
        if key not in table.labels or key in table.unlabelled:
            it.skip, it.detail = 'no_label', f'no row for {key!r} in {table.path}' if key not in table.labels else f'unlabelled in {table.path}'
        elif key in table.ungradable and not include_ungradable:
            it.skip, it.detail = 'ungradable', f'graded ungradable in {table.path} line {table.lines[key]}'
        elif grades is not None and table.labels[key] not in grades:
            it.skip, it.detail = 'grade_excluded', f'grade {table.labels[key]} is not in --grades'
        else:
            it.label = table.labels[key]
    extra = sorted(k for k in table.labels if k not in by_key)
    return items, extra

def attach_source_labels(items, table, grades):
    for it in items:
        if it.skip:
            continue
        if it.name not in table:
            it.skip, it.detail = 'no_label', 'no entry in the source dataset.json'
        elif grades is not None and table[it.name] not in grades:
            it.skip, it.detail = 'grade_excluded', f'grade {table[it.name]} is not in --grades'
        else:
            it.label = table[it.name]
    return items

#----------------------------------------------------------------------------

def _iter_results(opts, items, workers):
    func = functools.partial(process_item, opts)
    if workers <= 1:
        for it in items:
            yield func(it)
        return
    ctx = multiprocessing.get_context('fork' if sys.platform.startswith('linux') else 'spawn')
    with ctx.Pool(workers) as pool:
        yield from pool.imap(func, items, chunksize=4)

def build(opts, items, dest, overwrite, max_images, workers, label_mode, extra_rows, progress):
    """Process Items in order, write the kept images, dataset.json and dataset_report.json; returns the report."""
    report = dict(source=opts.source_path, dest=os.path.abspath(dest), found=len(items), kept=0,
                  skipped={r: 0 for r in SKIP_REASONS}, converted={}, skipped_files=[],
                  labels_without_image=extra_rows, max_images_reached=False)
    write_output(dest, lambda put: _fill(put, report, opts, items, max_images, workers, label_mode, progress))
    return report

def _fill(put, report, opts, items, max_images, workers, label_mode, progress):
    labels, phantom_rows, digests, size = [], [], {}, None
    with tqdm.tqdm(total=len(items), unit='img', disable=None if progress else True, file=sys.stderr) as bar:
        for res in _iter_results(opts, items, workers):
            bar.update(1)
            if res['status'] == 'error':
                raise DatasetError(res['detail'])
            if res['status'] == 'ok' and res['digest'] in digests:
                res.update(status='skip', reason='duplicate', detail=f'same pixels as {digests[res["digest"]]}')
            if res['status'] == 'skip':
                report['skipped'][res['reason']] += 1
                report['skipped_files'].append(dict(file=res['name'], reason=res['reason'], detail=res['detail']))
                continue
            digests[res['digest']] = res['name']
            size = _check_size(res, size, opts)
            idx = report['kept']
            fname = f'{idx // 1000:05d}/img{idx:08d}.png'
            put(fname, res['png'])
            for note in res['notes']:
                report['converted'][note] = report['converted'].get(note, 0) + 1
            if label_mode:
                labels.append([fname, res['label']])
            if 'phantom' in res:
                phantom_rows.append(dict(file=fname, **res['phantom']))
            report['kept'] += 1
            if max_images is not None and report['kept'] >= max_images:
                report['max_images_reached'] = True
                break
    if report['kept'] == 0:
        raise DatasetError(f'{opts.source_path}: no image was kept ({_summary(report)}); see the reasons above')
    report['resolution'] = list(size)
    put('dataset.json', json.dumps(dict(labels=labels if label_mode else None)).encode())
    if phantom_rows:
        put('phantom_lesions.json', json.dumps(dict(seed=opts.phantom_seed, images=phantom_rows), indent=1).encode())
    put('dataset_report.json', json.dumps(report, indent=1).encode())

def _check_size(res, size, opts):
    w, h = res['size']
    if size is not None and (w, h) != size:
        raise DatasetError(f'{res["name"]}: image is {w}x{h}, but earlier images are {size[0]}x{size[1]}; '
                                   f'pass --resolution=WxH to resize all images')
    if size is None:
        if w != h:
            raise DatasetError(f'{res["name"]}: image is {w}x{h}, not square; pass --transform=center-crop, '
                                       f'--transform=center-crop-wide or --fundus-crop')
        if w < 4 or w & (w - 1):
            raise DatasetError(f'{res["name"]}: image is {w}x{h}; the side must be a power of two; '
                                       f'pass --resolution=WxH')
    return (w, h)

def _summary(report):
    parts = [f'{n} {r}' for r, n in report['skipped'].items() if n]
    return ', '.join(parts) if parts else 'nothing found'

#----------------------------------------------------------------------------
# The entry point.

@dataclasses.dataclass
class BuildResult:
    dest:       str         # The written zip or folder (absolute path).
    found:      int         # Images found in the source (phantoms: N).
    kept:       int         # Images written.
    resolution: tuple       # (W, H) of the written images.
    skipped:    dict        # {reason: count} over SKIP_REASONS.
    extra_rows: list        # Label rows without an image.
    report:     dict        # What dataset_report.json holds.

    def summary(self, dest=None):
        """One line: '<dest>: kept K of N images at WxH[; skipped ...][; R label rows had no image]'."""
        return (f'{dest or self.dest}: kept {self.kept} of {self.found} images at {self.resolution[0]}x{self.resolution[1]}'
                + (f'; skipped {_summary(self.report)}' if any(self.skipped.values()) else '')
                + (f'; {len(self.extra_rows)} label rows had no image' if self.extra_rows else ''))

def parse_resolution(value, option='--resolution'):
    """'512x512' -> (512, 512); the width must be a power of two >= 4. A (W, H) tuple passes through."""
    if value is None or isinstance(value, tuple):
        return value
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', value)
    if not m:
        raise DatasetError(f'{option}: {value!r} is not WxH, e.g. 512x512')
    w, h = int(m.group(1)), int(m.group(2))
    if w < 4 or w & (w - 1):
        raise DatasetError(f'{option}: width {w} must be a power of two (4, 8, ..., 512, 1024)')
    return w, h

def _prepare_items(source, opts, labels, label_format, grades, include_ungradable):
    # Returns (items, label_mode, extra label rows).
    if opts.source_kind == 'phantom':
        return [Item(name=f'phantom/{i:08d}', ref=i) for i in range(int(source.split(':', 1)[1]))], True, []
    items = list_folder(opts.source_path) if opts.source_kind == 'dir' else list_zip(opts.source_path)
    if not items:
        raise DatasetError(f'{opts.source_path}: no image files ({", ".join(SOURCE_EXTENSIONS)}) found')
    if labels is not None:
        try:
            table = fundus_labels.read_labels(labels, label_format)
        except fundus_labels.LabelError as e:
            raise DatasetError(str(e))
        if grades is not None and table.is_vector():
            raise DatasetError(f'--grades: {table.format} labels are vectors, not grades')
        items, extra = attach_labels(items, table, grades, include_ungradable)
        return items, True, extra
    source_table = read_source_labels(opts.source_kind, opts.source_path)
    if source_table is not None:
        return attach_source_labels(items, source_table, grades), True, []
    if grades is not None:
        raise DatasetError('--grades: needs --labels=FILE (or a source with labels in dataset.json)')
    return items, False, []

def _check_options(transform, resolution, fundus_crop):
    if transform and fundus_crop:
        raise DatasetError('--transform and --fundus-crop exclude each other')
    if (transform or fundus_crop) and resolution is None:
        raise DatasetError(f'--{"transform" if transform else "fundus-crop"}: needs --resolution=WxH')
    if resolution is not None and resolution[0] != resolution[1] and transform != 'center-crop-wide':
        raise DatasetError(f'--resolution={resolution[0]}x{resolution[1]}: must be square (only center-crop-wide takes W > H)')
    if transform == 'center-crop-wide' and resolution[1] > resolution[0]:
        raise DatasetError(f'--resolution={resolution[0]}x{resolution[1]}: center-crop-wide needs W >= H')

def _identify_source(source, labels, resolution):
    # Returns (kind, path, resolution).
    m = re.fullmatch(r'phantom:(\d+)', source)
    if m:
        if labels is not None:
            raise DatasetError('--labels: phantom sources carry their own grades')
        if int(m.group(1)) < 1:
            raise DatasetError(f'--source={source}: needs at least one image')
        return 'phantom', source, resolution if resolution is not None else (256, 256)
    if os.path.isdir(source):
        return 'dir', os.path.abspath(source), resolution
    if os.path.isfile(source):
        if not zipfile.is_zipfile(source):
            raise DatasetError(f'{source}: source must be a folder, a zip file or phantom:N')
        return 'zip', os.path.abspath(source), resolution
    raise DatasetError(f'{source}: source not found')

def build_dataset(source, dest, max_images=None, transform=None, resolution=None, resize_filter='lanczos',
                  fundus_crop=False, labels=None, label_format='auto', grades=None, include_ungradable=False,
                  channels='rgb', min_size=None, max_pixels=DEFAULT_MAX_PIXELS, workers=1, overwrite=False,
                  phantom_grades='0,1,2,3,4', seed=0, progress=True):
    """Build a dataset; the arguments are dataset_tool.py's options (see its --help and docs/data.md).

    resolution is 'WxH' or (W, H); grades and phantom_grades are '0,1'-style lists. Returns a BuildResult;
    raises DatasetError naming the file or option. Nothing is written unless the whole build succeeds.
    """
    resolution = parse_resolution(resolution)
    try:
        _check_options(transform, resolution, fundus_crop)
        grades_set = None if grades is None else set(_parse_int_list(grades, '--grades'))
        kind, path, resolution = _identify_source(source, labels, resolution)
        check_dest(dest, overwrite, path if kind != 'phantom' else None)
        W, H = resolution if resolution is not None else (None, None)
        opts = Options(source_kind=kind, source_path=path, width=W, height=H,
                       transform='fundus-crop' if fundus_crop else transform, resize_filter=resize_filter,
                       channels=channels, min_size=min_size if min_size is not None else (W // 2 if W else 8),
                       max_pixels=max_pixels, phantom_seed=seed,
                       phantom_grades=_parse_int_list(phantom_grades, '--phantom-grades'))
        if any(g not in fundus_phantom.LESION_RANGES for g in opts.phantom_grades):
            raise DatasetError(f'--phantom-grades={phantom_grades}: grades must be 0..4')
        items, label_mode, extra = _prepare_items(source, opts, labels, label_format, grades_set, include_ungradable)
        if kind == 'phantom' and grades_set is not None:
            raise DatasetError('--grades: use --phantom-grades for phantom sources')
        report = build(opts, items, dest, overwrite, max_images, workers, label_mode, extra, progress=progress)
    finally:
        _close_zips()
    return BuildResult(dest=report['dest'], found=report['found'], kept=report['kept'], resolution=tuple(report['resolution']),
                       skipped=dict(report['skipped']), extra_rows=list(extra), report=report)

#----------------------------------------------------------------------------
