# fundus.turing.study: the design of a study (draw, strata, practice, blocks, orders), its files, and refusals.

import collections
import json
import os
import re
import stat

import numpy as np
import PIL.Image
import pytest

from fundus.turing import store, study

from .support import make_study, write_source, zip_folder

#----------------------------------------------------------------------------

def _tables(out):
    return store.load_tables(os.path.join(out, 'study.sqlite'))

def _sequence(out, reader):
    """The reader's order as source file names (ids are random; names are what the design fixes)."""
    _meta, images, assignments, _trials = _tables(out)
    return [(images[a['image_id']]['source'].split('::')[1], a['practice']) for a in assignments if a['reader'] == reader]

#----------------------------------------------------------------------------

def test_create_draws_half_real_half_synthetic_with_matched_grades(tmp_path):
    out, _ = make_study(tmp_path, count=12, practice=4, n=15, grades=(0, 0, 1, 2, 2))
    meta, images, _, _ = _tables(out)
    test = [im for im in images.values() if im['role'] == 'test']
    practice = [im for im in images.values() if im['role'] == 'practice']
    assert collections.Counter(im['truth'] for im in test) == {'real': 6, 'synthetic': 6}
    assert collections.Counter(im['truth'] for im in practice) == {'real': 2, 'synthetic': 2}
    grades = {t: collections.Counter(im['grade'] for im in test if im['truth'] == t) for t in ('real', 'synthetic')}
    assert grades['real'] == grades['synthetic']                       # Matched stratification.
    assert grades['real'] == {0: 3, 1: 1, 2: 2}                        # 6 x (6, 3, 6)/15, largest remainder.
    assert meta['stratification'] == 'matched'
    assert not {im['source'] for im in test} & {im['source'] for im in practice}   # Practice never tested.

def test_matched_draw_skips_grades_only_one_source_has(tmp_path):
    real = write_source(str(tmp_path / 'real'), 'real', 8, grades=(0, 1))
    synth = write_source(str(tmp_path / 'synth'), 'synth', 8, grades=(0, 1, 4, 4))
    study.create_study(real, synth, ['a'], str(tmp_path / 'out'), count=6, practice=0)
    meta, images, _, _ = _tables(str(tmp_path / 'out'))
    assert meta['stratification'] == 'matched'
    # Common strata {DR0: 2, DR1: 2, DR4: 0}; 3 per source split 1.5/1.5, the tie goes to the first grade.
    assert collections.Counter((im['truth'], im['grade']) for im in images.values()) == {
        ('real', 0): 2, ('real', 1): 1, ('synthetic', 0): 2, ('synthetic', 1): 1}

def test_quotas_follow_the_grade_proportions():
    assert study._quotas({0: 60, 1: 30, 2: 10}, {0: 60, 1: 30, 2: 10}, 10) == {0: 6, 1: 3, 2: 1}
    assert study._quotas({0: 2, 1: 30}, {0: 50, 1: 50}, 10) == {0: 2, 1: 8}          # Capped by availability.
    assert study._quotas({0: 2, 1: 3}, {0: 1, 1: 1}, 10) is None

def test_reader_order_is_reproducible_and_differs_between_readers(tmp_path):
    out_a, _ = make_study(tmp_path / 'a', readers=('alice', 'bob'), count=10, practice=2, seed=7)
    out_b, _ = make_study(tmp_path / 'b', readers=('alice', 'bob'), count=10, practice=2, seed=7)
    out_c, _ = make_study(tmp_path / 'c', readers=('alice', 'bob'), count=10, practice=2, seed=8)
    assert _sequence(out_a, 'alice') == _sequence(out_b, 'alice')
    assert _sequence(out_a, 'alice') != _sequence(out_a, 'bob')
    assert _sequence(out_a, 'alice') != _sequence(out_c, 'alice')
    seq = _sequence(out_a, 'alice')
    assert [p for _, p in seq] == [1, 1] + [0] * 10                    # Practice first.
    assert sorted(n for n, p in seq if not p) == sorted(n for n, p in _sequence(out_a, 'bob') if not p)

def test_images_are_clean_pngs_with_neutral_names(tmp_path):
    out, _ = make_study(tmp_path, count=4, practice=0)
    names = os.listdir(os.path.join(out, 'images'))
    assert len(names) == 4 and all(re.fullmatch(r'[0-9a-f]{16}\.png', n) for n in names)
    assert len({os.stat(os.path.join(out, 'images', n)).st_mtime_ns for n in names}) == 1   # Write order hidden.
    for n in names:
        with PIL.Image.open(os.path.join(out, 'images', n)) as img:
            assert img.format == 'PNG' and img.mode == 'RGB' and img.size == (24, 24)
            assert not img.info.get('Source') and 'exif' not in img.info and 'icc_profile' not in img.info

def test_centre_crop_keeps_the_central_part(tmp_path):
    out, _ = make_study(tmp_path, count=2, practice=0, crop=0.5)
    _meta, images, _, _ = _tables(out)
    im = next(iter(images.values()))
    src_folder, name = im['source'].split('::')
    with PIL.Image.open(os.path.join(src_folder, name)) as src, PIL.Image.open(os.path.join(out, 'images', im['id'] + '.png')) as img:
        assert img.size == (12, 12)
        assert np.array_equal(np.asarray(img), np.asarray(src.convert('RGB'))[6:18, 6:18])

def test_links_are_private_random_and_independent(tmp_path):
    out, links = make_study(tmp_path, readers=('alice', 'bob', 'carol'))
    path = os.path.join(out, 'links.json')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(out, 'study.sqlite')).st_mode) == 0o600
    assert json.load(open(path)) == links
    tokens = list(links['readers'].values()) + [links['coordinator']]
    assert len(set(tokens)) == 4 and all(study.TOKEN.fullmatch(t) for t in tokens)
    db = store.Store(os.path.join(out, 'study.sqlite'))
    assert db.reader_for(links['readers']['bob']) == 'bob' and db.reader_for(links['coordinator']) is None
    assert db.is_coordinator(links['coordinator']) and not db.is_coordinator(links['readers']['alice'])
    with open(os.path.join(out, 'study.sqlite'), 'rb') as f:
        assert all(t.encode() not in f.read() for t in tokens)           # Only hashes are stored.

def test_block_design_anchor_for_all_and_every_block_read(tmp_path):
    out, _ = make_study(tmp_path, readers=('a', 'b', 'c'), count=16, practice=0, n=10, block_size=4)
    _meta, images, assignments, _ = _tables(out)
    groups = collections.Counter(im['grp'] for im in images.values())
    assert groups == {0: 4, 1: 4, 2: 4, 3: 4}
    read = collections.defaultdict(set)
    for a in assignments:
        read[images[a['image_id']]['grp']].add(a['reader'])
    assert read[0] == {'a', 'b', 'c'} and all(len(read[g]) == 1 for g in (1, 2, 3))
    per_reader = collections.Counter(a['reader'] for a in assignments)
    assert per_reader == {'a': 8, 'b': 8, 'c': 8}
    for g in range(4):                                                  # Each group is half real.
        assert sum(im['truth'] == 'real' for im in images.values() if im['grp'] == g) == 2

def test_zip_sources_work(tmp_path):
    real = zip_folder(write_source(str(tmp_path / 'r'), 'r', 5, grades=(1,)), str(tmp_path / 'r.zip'))
    synth = zip_folder(write_source(str(tmp_path / 's'), 's', 5), str(tmp_path / 's.zip'))
    study.create_study(real, synth, ['x'], str(tmp_path / 'out'), count=4, practice=2)
    meta, images, _, _ = _tables(str(tmp_path / 'out'))
    assert meta['stratification'] == 'per-source' and len(images) == 6
    assert {im['grade'] for im in images.values() if im['truth'] == 'real'} == {1}

#----------------------------------------------------------------------------

def test_create_refuses_bad_input(tmp_path):
    real = write_source(str(tmp_path / 'real'), 'real', 6)
    synth = write_source(str(tmp_path / 'synth'), 'synth', 6)
    os.makedirs(tmp_path / 'empty')
    (tmp_path / 'empty' / 'notes.txt').write_text('no images')
    def refuse(pattern, **kw):
        args = dict(real=real, synthetic=synth, readers=['a'], out=str(tmp_path / 'out'), count=4, practice=0)
        args.update(kw)
        with pytest.raises(store.TuringError, match=pattern):
            study.create_study(**args)
        assert not os.path.exists(tmp_path / 'out') or kw.get('out')
    refuse(r'--real=.*empty: no image files', real=str(tmp_path / 'empty'))
    refuse(r'--real=.*: 6 images, but --count and --practice need 7', count=12, practice=2)
    refuse(r'--count=5: must be an even', count=5)
    refuse(r'--block-size=3', block_size=3)
    refuse(r'--readers: names must be unique', readers=['a', 'a'])
    refuse(r"--readers: '../x' is not a valid name", readers=['../x'])
    refuse(r'--crop-center=0.0', crop=0.0)
    refuse(r'--real=.*missing: not found', real=str(tmp_path / 'missing'))
    (tmp_path / 'synth' / 'synth_bad1.png').write_bytes(b'not a png')
    (tmp_path / 'synth' / 'synth_bad2.jpg').write_bytes(b'\xff\xd8 truncated')
    refuse(r'2 unreadable image\(s\): synth_bad1.png, synth_bad2.jpg')

def test_create_refuses_an_existing_study_and_keeps_it(tmp_path):
    out, links = make_study(tmp_path)
    before = open(os.path.join(out, 'links.json')).read()
    with pytest.raises(store.TuringError, match='exists and is not empty'):
        study.create_study(str(tmp_path / 'real'), str(tmp_path / 'synth'), ['a'], out, count=4, practice=0)
    assert open(os.path.join(out, 'links.json')).read() == before

def test_create_refuses_mixed_sizes_and_leaves_nothing(tmp_path):
    real = write_source(str(tmp_path / 'real'), 'real', 3, size=24)
    synth = write_source(str(tmp_path / 'synth'), 'synth', 3, size=32)
    with pytest.raises(store.TuringError, match='differ in size .24x24, 32x32.'):
        study.create_study(real, synth, ['a'], str(tmp_path / 'out'), count=2, practice=0)
    assert not os.path.exists(tmp_path / 'out')

#----------------------------------------------------------------------------
