# Study design: which images a reader study shows, to whom, in what order, and the tokens that open it.
#
# - Test images: `count` images, half real and half synthetic. When grades are known (dataset.json labels)
#   the draw is stratified: with labels on both sides the synthetic half matches the real half grade by grade
#   ('matched'); with labels on one side that side is drawn in proportion to its grades ('per-source').
# - Practice images: extra images (never among the test images) shown first, with feedback, never analysed.
# - Block design (--block-size=B > 0): the test images are dealt into count/B groups of B; group 0 is the
#   anchor set every reader reads, the others are blocks handed out in rotation so every block has a reader.
# - Each reader's order is a shuffle seeded by (study seed, reader name): the same inputs give the same study.
# - Images are re-encoded as PNG without metadata under opaque random names; tokens are 128-bit random strings.

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import time
import zipfile

import numpy as np
import PIL.Image
from tqdm import tqdm

import dnnlib
from fundus.turing import store

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff')
READER_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
IMAGE_ID = re.compile(r'^[0-9a-f]{16}$')
TOKEN = re.compile(r'^[A-Za-z0-9_-]{22}$')

#----------------------------------------------------------------------------

def new_token():
    """128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)

def new_image_id():
    return secrets.token_hex(8)

def reader_rng(seed, reader):
    """The reader's own generator: a function of the study seed and the reader name only."""
    digest = hashlib.sha256(f'{int(seed)}\0{reader}'.encode('utf-8')).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], 'little'))

#----------------------------------------------------------------------------
# Reading a source (folder or zip, optional dataset.json grades).

class Source:
    """Image files of a folder or zip and their grades (None when unlabelled)."""

    def __init__(self, path, option):
        self.path, self.option = os.fspath(path), option
        if os.path.isdir(self.path):
            self.kind = 'dir'
            names = [os.path.relpath(os.path.join(d, f), self.path).replace(os.sep, '/')
                     for d, _, files in os.walk(self.path) for f in files]
        elif os.path.isfile(self.path) and zipfile.is_zipfile(self.path):
            self.kind = 'zip'
            with zipfile.ZipFile(self.path) as z:
                names = z.namelist()
        elif not os.path.exists(self.path):
            raise store.TuringError(f'{option}={self.path}: not found')
        else:
            raise store.TuringError(f'{option}={self.path}: must be a folder or a zip file')
        self.names = sorted(n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
        if not self.names:
            raise store.TuringError(f'{option}={self.path}: no image files (PNG, JPEG, WebP, BMP, TIFF) found')
        self.grades = self._read_grades(names)

    def read(self, name):
        if self.kind == 'dir':
            with open(os.path.join(self.path, name), 'rb') as f:
                return f.read()
        with zipfile.ZipFile(self.path) as z:
            return z.read(name)

    def _read_grades(self, names):
        if 'dataset.json' not in names:
            return {n: None for n in self.names}
        try:
            labels = json.loads(self.read('dataset.json')).get('labels')
        except (OSError, ValueError, AttributeError) as e:
            raise store.TuringError(f'{self.option}={self.path}: dataset.json: cannot parse ({e})') from None
        table = {}
        for entry in labels or []:
            if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], int) and 0 <= entry[1] <= 4:
                table[entry[0]] = entry[1]
        return {n: table.get(n) for n in self.names}

    def labelled(self):
        return all(g is not None for g in self.grades.values())

    def check_readable(self):
        """Decode every image once (and drop it); all unreadable files are listed in one error."""
        bad = []
        for name in tqdm(self.names, desc=f'checking {self.option}', leave=False):
            try:
                self.load(name)
            except (OSError, ValueError, PIL.Image.DecompressionBombError):
                bad.append(name)
        if bad:
            raise store.TuringError(f'{self.option}={self.path}: {len(bad)} unreadable image(s): {", ".join(bad)}')

    def load(self, name, crop=1.0):
        with PIL.Image.open(io.BytesIO(self.read(name))) as img:
            img.load()
            return center_crop(img.convert('RGB'), crop)

def center_crop(img, fraction):
    """The central `fraction` of the width and height (1.0 = unchanged)."""
    if fraction >= 1.0:
        return img
    w, h = img.size
    cw, ch = max(1, round(w * fraction)), max(1, round(h * fraction))
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))

#----------------------------------------------------------------------------
# Sampling.

def _quotas(available, weights, total):
    """Largest-remainder allocation of `total` over strata, proportional to `weights`, capped by `available`."""
    keys = sorted(available, key=str)
    quota = {k: 0 for k in keys}
    left = total
    while left > 0:
        open_keys = [k for k in keys if quota[k] < available[k] and weights.get(k, 0) > 0]
        if not open_keys:
            open_keys = [k for k in keys if quota[k] < available[k]]
        if not open_keys:
            return None
        w = np.array([max(weights.get(k, 0), 1e-9) for k in open_keys], dtype=np.float64)
        ideal = left * w / w.sum()
        take = {k: min(int(np.floor(x)), available[k] - quota[k]) for k, x in zip(open_keys, ideal)}
        if sum(take.values()) == 0: # Hand out one at a time by largest fractional part.
            k = open_keys[int(np.argmax(ideal - np.floor(ideal)))]
            take = {k: 1}
        for k, n in take.items():
            quota[k] += n
            left -= n
    return quota

def _by_grade(source):
    groups = {}
    for name in source.names:
        groups.setdefault(source.grades[name], []).append(name)
    return groups

def _draw(groups, quota, rng):
    picked = []
    for g in sorted(quota, key=str):
        if quota[g] == 0:
            continue
        names = groups[g]
        picked += [names[i] for i in sorted(rng.choice(len(names), size=quota[g], replace=False))]
    return picked

def sample_test(real, synthetic, half, rng):
    """`half` real and `half` synthetic names, stratified by grade when possible. Returns (real, synth, scheme)."""
    rg, sg = _by_grade(real), _by_grade(synthetic)
    if real.labelled() and synthetic.labelled():
        common = {g: min(len(rg.get(g, [])), len(sg.get(g, []))) for g in set(rg) | set(sg)}
        quota = _quotas(common, {g: len(v) for g, v in rg.items()}, half)
        if quota is not None:
            return _draw(rg, quota, rng), _draw(sg, quota, rng), 'matched'
    picks, schemes = [], []
    for src, groups in ((real, rg), (synthetic, sg)):
        sizes = {g: len(v) for g, v in groups.items()}
        picks.append(_draw(groups, _quotas(sizes, sizes, half), rng))
        schemes.append('grade' if src.labelled() else 'random')
    scheme = 'none' if schemes == ['random', 'random'] else 'per-source'
    return picks[0], picks[1], scheme

def sample_practice(source, exclude, n, rng):
    exclude = set(exclude)
    rest = [name for name in source.names if name not in exclude]
    return [rest[i] for i in sorted(rng.choice(len(rest), size=n, replace=False))]

#----------------------------------------------------------------------------
# Block design and reading order.

def deal_groups(test_items, block_size, rng):
    """Group index per test item: 0 for everyone when block_size == 0, else stratified round-robin dealing."""
    if block_size == 0:
        return [0] * len(test_items)
    n_groups = len(test_items) // block_size
    order = sorted(range(len(test_items)), key=lambda i: (test_items[i]['truth'], str(test_items[i]['grade']), rng.random()))
    groups = [0] * len(test_items)
    for k, i in enumerate(order):
        groups[i] = k % n_groups
    return groups

def reader_groups(readers, n_groups):
    """{reader: set of group indices}: the anchor (0) for all, blocks 1..n-1 in rotation, each with >= 1 reader."""
    sets = {r: {0} for r in readers}
    blocks = list(range(1, n_groups))
    for k in range(max(len(readers), len(blocks)) if blocks else 0):
        sets[readers[k % len(readers)]].add(blocks[k % len(blocks)])
    return sets

def reading_order(seed, reader, practice_ids, test_ids):
    """Practice first, then the test images, each part shuffled by the reader's own generator."""
    rng = reader_rng(seed, reader)
    practice = [practice_ids[i] for i in rng.permutation(len(practice_ids))]
    test = [test_ids[i] for i in rng.permutation(len(test_ids))]
    return [(p, True) for p in practice] + [(t, False) for t in test]

#----------------------------------------------------------------------------
# create: the whole study folder.

def check_options(readers, count, practice, crop, block_size, out):
    if not readers:
        raise store.TuringError('--readers: give at least one reader name (comma-separated)')
    for r in readers:
        if not READER_NAME.match(r):
            raise store.TuringError(f'--readers: {r!r} is not a valid name (letters, digits, _ . -; at most 64)')
    if len(set(readers)) != len(readers):
        raise store.TuringError('--readers: names must be unique')
    if count < 2 or count % 2:
        raise store.TuringError(f'--count={count}: must be an even number >= 2 (half real, half synthetic)')
    if practice < 0:
        raise store.TuringError(f'--practice={practice}: must be >= 0')
    if not 0.1 <= crop <= 1.0:
        raise store.TuringError(f'--crop-center={crop}: must be in [0.1, 1.0]')
    if block_size < 0 or (block_size and (count % block_size or count // block_size < 2)):
        raise store.TuringError(f'--block-size={block_size}: must be 0 or divide --count={count} into >= 2 groups')
    if os.path.exists(out) and os.listdir(out):
        raise store.TuringError(f'--out={out}: exists and is not empty; refusing to overwrite a study')

def _check_counts(real, synthetic, half, practice):
    for src, n in ((real, half + (practice + 1) // 2), (synthetic, half + practice // 2)):
        if len(src.names) < n:
            raise store.TuringError(f'{src.option}={src.path}: {len(src.names)} images, but --count and --practice '
                                    f'need {n}')

def _select(real, synthetic, count, practice, seed):
    """[(source, name, truth, role)] in a fixed order; and the stratification scheme."""
    rng = np.random.default_rng([int(seed), 0x7e57])
    half = count // 2
    _check_counts(real, synthetic, half, practice)
    r_test, s_test, scheme = sample_test(real, synthetic, half, rng)
    r_prac = sample_practice(real, r_test, (practice + 1) // 2, rng)
    s_prac = sample_practice(synthetic, s_test, practice // 2, rng)
    picks = [(real, n, 'real', 'test') for n in r_test] + [(synthetic, n, 'synthetic', 'test') for n in s_test]
    picks += [(real, n, 'real', 'practice') for n in r_prac] + [(synthetic, n, 'synthetic', 'practice') for n in s_prac]
    return picks, scheme

def _write_images(picks, crop, image_dir):
    decoded = [src.load(name, crop) for src, name, _, _ in tqdm(picks, desc='decoding', leave=False)]
    sizes = {img.size for img in decoded}
    if len(sizes) > 1:
        shown = ', '.join(f'{w}x{h}' for w, h in sorted(sizes))
        raise store.TuringError(f'images differ in size ({shown}); sizes would reveal the source: '
                                'resize them first (dataset_tool.py --resolution)')
    os.makedirs(image_dir, exist_ok=True)
    rows = []
    for idx, ((src, name, truth, role), img) in enumerate(zip(picks, decoded)):
        image_id = new_image_id()
        clean = PIL.Image.fromarray(np.asarray(img)) # Pixels only: no text chunks, EXIF or ICC.
        dnnlib.atomic_write(os.path.join(image_dir, f'{image_id}.png'), lambda f: clean.save(f, format='PNG'))
        rows.append(dict(id=image_id, truth=truth, grade=src.grades[name], source=f'{src.path}::{name}',
                         role=role, grp=0, idx=idx))
    stamp = time.time()
    for row in rows: # One modification time for all: the write order (real first) must not show on disk.
        os.utime(os.path.join(image_dir, f'{row["id"]}.png'), (stamp, stamp))
    return rows

def _write_links(path, links):
    def writer(f):
        os.fchmod(f.fileno(), 0o600) # Before any byte is written: tokens are never readable by others.
        f.write(json.dumps(links, indent=2).encode('utf-8'))
    dnnlib.atomic_write(path, writer)

def _remove_partial(out, existed):
    """Undo a failed create: the folder was empty (checked) or absent before it started."""
    if not os.path.isdir(out):
        return
    if not existed:
        shutil.rmtree(out, ignore_errors=True)
        return
    for name in os.listdir(out):
        path = os.path.join(out, name)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)

def create_study(
    real,               # Folder or zip of real photographs (dataset.json grades optional).
    synthetic,          # Folder or zip of synthetic images.
    readers,            # [name, ...]; each gets a token and an order of their own.
    out,                # Study folder; must be absent or empty.
    count       = 100,  # Test images, half real and half synthetic.
    seed        = 0,    # Study seed: draw, blocks, orders.
    practice    = 10,   # Practice images (feedback, never analysed); 0 = none.
    crop        = 1.0,  # Central fraction kept of width and height.
    block_size  = 0,    # 0 = everyone reads everything; B = anchor set of B + rotating blocks of B.
):
    """Build STUDY_DIR (images/, study.sqlite, links.json). Returns the links dict. A failed create removes
    what it wrote (the folder was empty or absent before)."""
    check_options(readers, count, practice, crop, block_size, out)
    existed = os.path.isdir(out)
    try:
        return _create(real, synthetic, readers, out, count, seed, practice, crop, block_size)
    except BaseException:
        _remove_partial(out, existed)
        raise

def _create(real, synthetic, readers, out, count, seed, practice, crop, block_size):
    real, synthetic = Source(real, '--real'), Source(synthetic, '--synthetic')
    picks, scheme = _select(real, synthetic, count, practice, seed)
    real.check_readable()
    synthetic.check_readable()
    images = _write_images(picks, crop, os.path.join(out, 'images'))
    test = [im for im in images if im['role'] == 'test']
    for im, g in zip(test, deal_groups(test, block_size, np.random.default_rng([int(seed), 0xb10c]))):
        im['grp'] = g
    groups = reader_groups(readers, max(im['grp'] for im in test) + 1)
    practice_ids = [im['id'] for im in images if im['role'] == 'practice']
    orders = {r: reading_order(seed, r, practice_ids, [im['id'] for im in test if im['grp'] in groups[r]])
              for r in readers}
    links = dict(readers={r: new_token() for r in readers}, coordinator=new_token())
    meta = dict(seed=seed, count=count, practice=practice, crop_center=crop, block_size=block_size,
                stratification=scheme, real=real.path, synthetic=synthetic.path, readers=readers,
                created_at=time.time(), closed_at=None, coordinator_hash=store.token_hash(links['coordinator']))
    store.create(os.path.join(out, 'study.sqlite'), meta, images,
                 {r: store.token_hash(t) for r, t in links['readers'].items()}, orders)
    _write_links(os.path.join(out, 'links.json'), links)
    return links

#----------------------------------------------------------------------------
