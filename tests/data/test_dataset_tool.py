# dataset_tool.py: layout, labels, fundus crop, duplicates, workers, phantoms, and every bad input of
# the issue: each is handled by a documented rule (docs/data.md) or stops with one line naming the file
# and the problem, a non-zero exit code and an untouched destination.

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import dataset_tool
from fundus.data import build, phantom
from tests.data import helpers
from training.dataset import ImageFolderDataset

#----------------------------------------------------------------------------

def run(*args):
    return CliRunner().invoke(dataset_tool.main, [str(a) for a in args], prog_name='dataset_tool.py')

def assert_one_line_error(result, *needles):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith('Error: ')
    for n in needles:
        assert n in lines[0], (n, lines[0])

def assert_untouched(parent, before):
    # The destination's folder holds exactly what it held before: no output, no temp files.
    assert helpers.snapshot(parent) == before

def read_zip(path):
    with zipfile.ZipFile(path) as z:
        names = sorted(z.namelist())
        meta = json.loads(z.read('dataset.json'))
        report = json.loads(z.read('dataset_report.json'))
        imgs = {n: np.asarray(Image.open(io.BytesIO(z.read(n)))) for n in names if n.endswith('.png')}
    return names, meta, report, imgs

@pytest.fixture
def rng():
    return np.random.default_rng(0)

@pytest.fixture
def out(tmp_path):
    d = tmp_path / 'out'
    d.mkdir()
    return d

#----------------------------------------------------------------------------
# Layout and basics.

def test_folder_to_zip_layout_and_pixels(tmp_path, out, rng):
    images = {f'b/{i}.png': helpers.random_image(rng, 16, 16) for i in range(3)}
    images['a.png'] = helpers.random_image(rng, 16, 16)
    src = helpers.write_image_folder(tmp_path / 'src', images)
    r = run('--source', src, '--dest', out / 'd.zip')
    assert r.exit_code == 0, r.output
    assert 'kept 4 of 4 images at 16x16' in r.output
    names, meta, report, imgs = read_zip(out / 'd.zip')
    assert names == ['00000/img00000000.png', '00000/img00000001.png', '00000/img00000002.png',
                     '00000/img00000003.png', 'dataset.json', 'dataset_report.json']
    assert meta == {'labels': None}
    assert report['kept'] == 4 and sum(report['skipped'].values()) == 0
    for i, name in enumerate(sorted(images)): # Sorted source order.
        np.testing.assert_array_equal(imgs[f'00000/img{i:08d}.png'], images[name])
    with zipfile.ZipFile(out / 'd.zip') as z:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())

def test_index_folders_follow_nvidia_layout():
    # 5-digit folder = first five digits of the 8-digit index.
    idx = 12345
    assert f'{idx // 1000:05d}/img{idx:08d}.png' == '00012/img00012345.png'

def test_zip_to_folder_with_source_labels(tmp_path, out, rng):
    images = {f'x{i}.png': helpers.random_image(rng, 8, 8) for i in range(4)}
    src = helpers.write_image_zip(tmp_path / 's.zip', images, {f'x{i}.png': i % 2 for i in range(3)})
    r = run('--source', src, '--dest', out / 'folder', '--grades', '1')
    assert r.exit_code == 0, r.output
    meta = json.loads((out / 'folder' / 'dataset.json').read_text())
    assert meta['labels'] == [['00000/img00000000.png', 1]]
    report = json.loads((out / 'folder' / 'dataset_report.json').read_text())
    assert report['skipped']['grade_excluded'] == 2 and report['skipped']['no_label'] == 1
    assert {s['file'] for s in report['skipped_files']} == {'x0.png', 'x2.png', 'x3.png'}

def test_resolution_and_center_crop(tmp_path, out, rng):
    wide = helpers.random_image(rng, 20, 40)
    src = helpers.write_image_folder(tmp_path / 'src', {'w.png': wide})
    r = run('--source', src, '--dest', out / 'c.zip', '--transform', 'center-crop', '--resolution', '16x16', '--min-size', '4')
    assert r.exit_code == 0, r.output
    _, _, _, imgs = read_zip(out / 'c.zip')
    expect = np.asarray(Image.fromarray(wide[:, 10:30]).resize((16, 16), Image.LANCZOS))
    np.testing.assert_array_equal(imgs['00000/img00000000.png'], expect)
    r = run('--source', src, '--dest', out / 'box.zip', '--transform', 'center-crop', '--resolution', '16x16',
            '--min-size', '4', '--resize-filter', 'box')
    assert r.exit_code == 0, r.output
    expect = np.asarray(Image.fromarray(wide[:, 10:30]).resize((16, 16), Image.BOX))
    np.testing.assert_array_equal(read_zip(out / 'box.zip')[3]['00000/img00000000.png'], expect)
    r = run('--source', src, '--dest', out / 'cw.zip', '--transform', 'center-crop-wide', '--resolution', '32x16', '--min-size', '4')
    assert r.exit_code == 0, r.output
    img = read_zip(out / 'cw.zip')[3]['00000/img00000000.png']
    assert img.shape == (32, 32, 3) and img[:8].max() == 0 and img[24:].max() == 0 and img[8:24].max() > 0

def test_max_images_and_workers_keep_order(tmp_path, out, rng):
    images = {f'{i:02d}.png': helpers.random_image(rng, 8, 8) for i in range(10)}
    src = helpers.write_image_folder(tmp_path / 'src', images)
    assert run('--source', src, '--dest', out / 'one.zip', '--max-images', 4).exit_code == 0
    assert run('--source', src, '--dest', out / 'two.zip', '--max-images', 4, '--workers', 2).exit_code == 0
    a, b = read_zip(out / 'one.zip'), read_zip(out / 'two.zip')
    assert len(a[3]) == 4 and a[2]['max_images_reached']
    for n in a[3]:
        np.testing.assert_array_equal(a[3][n], b[3][n])
    np.testing.assert_array_equal(a[3]['00000/img00000003.png'], images['03.png'])

#----------------------------------------------------------------------------
# Fundus crop and labels.

def _fundus_source(tmp_path):
    # Four perturbed copies of the retina photo (JPEG), one black photo, one grade-file.
    base = helpers.small_retina(181)
    src = tmp_path / 'photos'
    src.mkdir()
    for i, name in enumerate(['10_left', '10_right', '13_left', '15_left']):
        img = np.clip(base.astype(int) + 6 * i, 0, 255).astype(np.uint8)
        Image.fromarray(np.roll(img, 3 * i, axis=1)).save(src / f'{name}.jpeg', quality=90)
    Image.fromarray(np.zeros((181, 181, 3), np.uint8)).save(src / '16_left.jpeg')
    labels = tmp_path / 'trainLabels.csv'
    labels.write_text('image,level\n10_left,0\n10_right,2\n13_left,4\n16_left,1\n99_right,3\n')
    return src, labels

def test_fundus_crop_with_eyepacs_labels(tmp_path, out):
    src, labels = _fundus_source(tmp_path)
    r = run('--source', src, '--dest', out / 'f.zip', '--fundus-crop', '--resolution', '64x64',
            '--labels', labels) # The format is detected from the header.
    assert r.exit_code == 0, r.output
    assert '1 label rows had no image' in r.output
    names, meta, report, imgs = read_zip(out / 'f.zip')
    assert meta['labels'] == [['00000/img00000000.png', 0], ['00000/img00000001.png', 2], ['00000/img00000002.png', 4]]
    assert report['skipped']['no_label'] == 1 and report['skipped']['no_fov'] == 1
    assert report['labels_without_image'] == ['99_right']
    reasons = {s['file']: s['reason'] for s in report['skipped_files']}
    assert reasons == {'15_left.jpeg': 'no_label', '16_left.jpeg': 'no_fov'}
    img = imgs['00000/img00000000.png']
    assert img.shape == (64, 64, 3) and img[0, 0].max() == 0 and img[32, 32, 0] > 100
    d = ImageFolderDataset(str(out / 'f.zip'), use_labels=True)
    assert d.label_shape == [5] and len(d) == 3

def test_grades_filter_and_ddr_ungradable(tmp_path, out, rng):
    images = {f'{i}.jpg': helpers.random_image(rng, 8, 8) for i in range(4)}
    src = helpers.write_image_folder(tmp_path / 'src', {k.replace('.jpg', '.png'): v for k, v in images.items()})
    ddr = tmp_path / 'train.txt'
    ddr.write_text('0.jpg 0\n1.jpg 1\n2.jpg 5\n3.jpg 1\n')
    r = run('--source', src, '--dest', out / 'g.zip', '--labels', ddr, '--label-format', 'ddr', '--grades', '0,1')
    assert r.exit_code == 0, r.output
    _, meta, report, _ = read_zip(out / 'g.zip')
    assert [l for _, l in meta['labels']] == [0, 1, 1]
    assert report['skipped']['ungradable'] == 1
    r = run('--source', src, '--dest', out / 'u.zip', '--labels', ddr, '--label-format', 'ddr', '--include-ungradable')
    assert r.exit_code == 0, r.output
    assert [l for _, l in read_zip(out / 'u.zip')[1]['labels']] == [0, 1, 5, 1]

def test_odir_vector_labels(tmp_path, out, rng):
    src = helpers.write_image_folder(tmp_path / 'src', {'0_left.png': helpers.random_image(rng, 8, 8),
                                                         '0_right.png': helpers.random_image(rng, 8, 8)})
    csv = tmp_path / 'odir.csv'
    csv.write_text('ID,Left-Fundus,Right-Fundus,N,D,G,C,A,H,M,O\n0,0_left.jpg,0_right.jpg,0,1,0,0,0,1,0,0\n')
    r = run('--source', src, '--dest', out / 'o.zip', '--labels', csv, '--label-format', 'odir')
    assert r.exit_code == 0, r.output
    labels = read_zip(out / 'o.zip')[1]['labels']
    assert labels[0][1] == [0, 1, 0, 0, 0, 1, 0, 0] and len(labels) == 2
    d = ImageFolderDataset(str(out / 'o.zip'), use_labels=True)
    assert d.label_shape == [8] and not d.has_onehot_labels

def test_duplicates_same_pixels_any_format(tmp_path, out, rng):
    img = helpers.random_image(rng, 8, 8)
    src = tmp_path / 'src'
    src.mkdir()
    Image.fromarray(img).save(src / 'a.png')
    Image.fromarray(img).save(src / 'b.bmp')
    Image.fromarray(helpers.random_image(rng, 8, 8)).save(src / 'c.png')
    r = run('--source', src, '--dest', out / 'd.zip')
    assert r.exit_code == 0, r.output
    report = read_zip(out / 'd.zip')[2]
    assert report['kept'] == 2
    assert report['skipped_files'] == [dict(file='b.bmp', reason='duplicate', detail='same pixels as a.png')]

#----------------------------------------------------------------------------
# Phantoms.

def test_phantom_zip_with_grades_and_lesion_sidecar(out):
    r = run('--source', 'phantom:6', '--dest', out / 'p.zip', '--resolution', '32x32', '--seed', 3)
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(out / 'p.zip') as z:
        meta = json.loads(z.read('dataset.json'))
        side = json.loads(z.read('phantom_lesions.json'))
        first = np.asarray(Image.open(io.BytesIO(z.read('00000/img00000000.png'))))
    grades = [phantom.grade_for_index(i, 3) for i in range(6)]
    assert [l for _, l in meta['labels']] == grades
    img, info = phantom.render(32, grades[0], phantom.phantom_seed(0, 3))
    np.testing.assert_array_equal(first, img)
    assert side['images'][0]['counts'] == info['counts'] and side['images'][0]['file'] == '00000/img00000000.png'
    assert [row['grade'] for row in side['images']] == grades

def test_phantom_workers_give_identical_bytes(out):
    assert run('--source', 'phantom:5', '--dest', out / 'a.zip', '--resolution', '16x16').exit_code == 0
    assert run('--source', 'phantom:5', '--dest', out / 'b.zip', '--resolution', '16x16', '--workers', 2).exit_code == 0
    with zipfile.ZipFile(out / 'a.zip') as a, zipfile.ZipFile(out / 'b.zip') as b:
        for n in a.namelist():
            if n != 'dataset_report.json':
                assert a.read(n) == b.read(n), n

#----------------------------------------------------------------------------
# Bad input handled by a rule: converted or skipped, and listed in the report.

def _png_header_only(w, h):
    # A PNG whose header claims w x h pixels (a decompression bomb), with no real data.
    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))
    ihdr = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\0' * 16)) + chunk(b'IEND', b'')

def test_unreadable_tiny_and_huge_are_skipped_and_listed(tmp_path, out, rng):
    src = tmp_path / 'src'
    src.mkdir()
    Image.fromarray(helpers.random_image(rng, 16, 16)).save(src / 'good.png')
    (src / 'zero.png').write_bytes(b'')
    (src / 'text.jpg').write_text('not an image at all')
    good = helpers.png_bytes(helpers.random_image(rng, 16, 16))
    (src / 'trunc.png').write_bytes(good[:len(good) // 2])
    Image.fromarray(helpers.random_image(rng, 4, 4)).save(src / 'tiny.png')
    (src / 'bomb.png').write_bytes(_png_header_only(100000, 100000))
    Image.fromarray(helpers.random_image(rng, 64, 64)).save(src / 'big.png')
    r = run('--source', src, '--dest', out / 'd.zip', '--max-pixels', 1000)
    assert r.exit_code == 0, r.output
    report = read_zip(out / 'd.zip')[2]
    reasons = {s['file']: s['reason'] for s in report['skipped_files']}
    assert reasons == {'zero.png': 'unreadable', 'text.jpg': 'unreadable', 'trunc.png': 'unreadable',
                       'tiny.png': 'too_small', 'bomb.png': 'too_large', 'big.png': 'too_large'}
    details = {s['file']: s['detail'] for s in report['skipped_files']}
    assert 'empty file' in details['zero.png'] and 'decompression-bomb guard' in details['bomb.png']
    assert '64x64 = 4096 pixels exceeds --max-pixels=1000' in details['big.png']
    assert report['kept'] == 1 and report['skipped']['unreadable'] == 3

def test_bomb_is_skipped_at_the_default_limit(tmp_path, out, rng):
    src = tmp_path / 'src'
    src.mkdir()
    Image.fromarray(helpers.random_image(rng, 16, 16)).save(src / 'good.png')
    (src / 'bomb.png').write_bytes(_png_header_only(20000, 20000))
    r = run('--source', src, '--dest', out / 'd.zip')
    assert r.exit_code == 0, r.output
    assert read_zip(out / 'd.zip')[2]['skipped_files'][0]['reason'] == 'too_large'

def test_modes_are_converted_by_rule(tmp_path, out):
    src = tmp_path / 'src'
    src.mkdir()
    g16 = np.full((8, 8), 40000, np.uint16)
    Image.fromarray(g16).save(src / 'a16.png')                                       # 16-bit -> /257.
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(src / 'b_gray.png')           # L -> replicated.
    Image.fromarray(np.full((8, 8, 4), (200, 100, 50, 128), np.uint8)).save(src / 'c_rgba.png')  # Over black.
    Image.new('CMYK', (8, 8), (0, 255, 255, 0)).save(src / 'd_cmyk.jpg', quality=100)  # CMYK red.
    Image.fromarray(np.full((8, 8, 3), (10, 20, 30), np.uint8)).convert('P', palette=Image.ADAPTIVE).save(src / 'e_pal.png')
    r = run('--source', src, '--dest', out / 'm.zip')
    assert r.exit_code == 0, r.output
    _, _, report, imgs = read_zip(out / 'm.zip')
    assert report['converted'] == {'16-bit': 1, 'grayscale': 1, 'alpha': 1, 'cmyk': 1, 'palette': 1}
    px = [imgs[f'00000/img{i:08d}.png'][4, 4].tolist() for i in range(5)]
    assert px[0] == [156] * 3 and px[1] == [77] * 3 and px[2] == [100, 50, 25]
    assert px[3][0] > 200 and px[3][1] < 40 and px[4] == [10, 20, 30]

def test_grayscale_output_channels(tmp_path, out, rng):
    src = helpers.write_image_folder(tmp_path / 'src', {'a.png': helpers.random_image(rng, 8, 8)})
    assert run('--source', src, '--dest', out / 'g.zip', '--channels', 'gray').exit_code == 0
    assert ImageFolderDataset(str(out / 'g.zip')).num_channels == 1

def test_symlink_out_of_source_is_skipped_and_not_read(tmp_path, out, rng):
    outside = tmp_path / 'secret.png'
    Image.fromarray(helpers.random_image(rng, 8, 8)).save(outside)
    src = helpers.write_image_folder(tmp_path / 'src', {'a.png': helpers.random_image(rng, 8, 8)})
    os.symlink(outside, os.path.join(src, 'link.png'))
    os.symlink(tmp_path, os.path.join(src, 'loopdir'))
    os.symlink(os.path.join(src, 'a.png'), os.path.join(src, 'inside.png')) # Inside: followed.
    r = run('--source', src, '--dest', out / 's.zip')
    assert r.exit_code == 0, r.output
    report = read_zip(out / 's.zip')[2]
    reasons = {s['file']: s['reason'] for s in report['skipped_files']}
    assert reasons == {'link.png': 'outside_source', 'loopdir': 'outside_source', 'inside.png': 'duplicate'}

#----------------------------------------------------------------------------
# Bad input that stops: one line, the file and the problem, non-zero exit, destination untouched.

def test_zip_slip_members_are_refused(tmp_path, out, rng):
    for bad in ['../evil.png', '/abs.png', 'a/../../b.png']:
        src = tmp_path / 'slip.zip'
        with zipfile.ZipFile(src, 'w') as z:
            z.writestr('ok.png', helpers.png_bytes(helpers.random_image(rng, 8, 8)))
            z.writestr(bad, helpers.png_bytes(helpers.random_image(rng, 8, 8)))
        before = helpers.snapshot(out)
        r = run('--source', src, '--dest', out / 'd.zip')
        assert_one_line_error(r, 'slip.zip', repr(bad), 'unsafe member name')
        assert_untouched(out, before)

def test_destination_exists_needs_overwrite(tmp_path, out, rng):
    src = helpers.write_image_folder(tmp_path / 'src', {'a.png': helpers.random_image(rng, 8, 8)})
    (out / 'd.zip').write_bytes(b'old')
    before = helpers.snapshot(out)
    assert_one_line_error(run('--source', src, '--dest', out / 'd.zip'), 'd.zip', 'destination exists', '--overwrite')
    assert_untouched(out, before)
    assert run('--source', src, '--dest', out / 'd.zip', '--overwrite').exit_code == 0
    assert read_zip(out / 'd.zip')[2]['kept'] == 1
    # A folder is replaced only when it is a dataset.
    (out / 'docs').mkdir()
    (out / 'docs' / 'thesis.tex').write_text('precious')
    before = helpers.snapshot(out)
    assert_one_line_error(run('--source', src, '--dest', out / 'docs', '--overwrite'), 'docs', 'no dataset.json')
    assert_untouched(out, before)
    assert run('--source', src, '--dest', out / 'ds').exit_code == 0
    assert run('--source', src, '--dest', out / 'ds', '--overwrite').exit_code == 0
    assert sorted(os.listdir(out / 'ds')) == ['00000', 'dataset.json', 'dataset_report.json']

@pytest.mark.parametrize('rows,needle', [
    ('image,level\na,0\na,1\n', 'labels.csv:3: duplicate row for image \'a\''),
    ('image,level\na,zero\n', 'labels.csv:2: grade \'zero\' is not an integer'),
    ('image,level\na\n', 'labels.csv:2: missing field'),
    ('image,level\na,1,extra\n', 'labels.csv:2: more fields than the header'),
])
def test_bad_label_rows_stop(tmp_path, out, rng, rows, needle):
    src = helpers.write_image_folder(tmp_path / 'src', {'a.png': helpers.random_image(rng, 8, 8)})
    (tmp_path / 'labels.csv').write_text(rows)
    before = helpers.snapshot(out)
    r = run('--source', src, '--dest', out / 'd.zip', '--labels', tmp_path / 'labels.csv', '--label-format', 'eyepacs')
    assert_one_line_error(r, needle)
    assert_untouched(out, before)

def test_non_square_without_transform_stops(tmp_path, out, rng):
    src = helpers.write_image_folder(tmp_path / 'src', {'wide.png': helpers.random_image(rng, 8, 16)})
    before = helpers.snapshot(out)
    assert_one_line_error(run('--source', src, '--dest', out / 'd.zip'), 'wide.png', '16x8, not square', '--transform')
    assert_one_line_error(run('--source', src, '--dest', out / 'd.zip', '--resolution', '8x8'), 'wide.png', 'not square')
    assert_untouched(out, before)

def test_mixed_sizes_stop_midway_without_half_written_output(tmp_path, out, rng):
    images = {'a.png': helpers.random_image(rng, 8, 8), 'b.png': helpers.random_image(rng, 8, 8),
              'c.png': helpers.random_image(rng, 16, 16)}
    src = helpers.write_image_folder(tmp_path / 'src', images)
    for dest in ['d.zip', 'folder']:
        before = helpers.snapshot(out)
        assert_one_line_error(run('--source', src, '--dest', out / dest), 'c.png', '16x16', 'earlier images are 8x8')
        assert_untouched(out, before)

def test_not_power_of_two_stops(tmp_path, out, rng):
    src = helpers.write_image_folder(tmp_path / 'src', {'a.png': helpers.random_image(rng, 12, 12)})
    assert_one_line_error(run('--source', src, '--dest', out / 'd.zip'), 'a.png', 'power of two')

def test_nothing_kept_stops(tmp_path, out):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'zero.png').write_bytes(b'')
    before = helpers.snapshot(out)
    assert_one_line_error(run('--source', src, '--dest', out / 'd.zip'), 'no image was kept', '1 unreadable')
    assert_untouched(out, before)

@pytest.mark.parametrize('args,needles', [
    (['--fundus-crop'], ['--fundus-crop', 'needs --resolution']),
    (['--fundus-crop', '--transform', 'center-crop', '--resolution', '8x8'], ['exclude each other']),
    (['--labels', '{labels}'], ['l.csv:1: cannot tell the label format', '--label-format']),
    (['--grades', '1'], ['--grades', 'needs --labels']),
    (['--grades', 'x', '--labels', '{labels}', '--label-format', 'csv'], ['--grades=x', 'integers']),
    (['--resolution', '16x8'], ['--resolution=16x8', 'must be square']),
])
def test_option_errors(tmp_path, out, rng, args, needles):
    src = helpers.write_image_folder(tmp_path / 'src', {'a.png': helpers.random_image(rng, 8, 8)})
    (tmp_path / 'l.csv').write_text('image,label\na,1\n')
    args = [a.replace('{labels}', str(tmp_path / 'l.csv')) for a in args]
    before = helpers.snapshot(out)
    assert_one_line_error(run('--source', src, '--dest', out / 'd.zip', *args), *needles)
    assert_untouched(out, before)

def test_missing_and_invalid_sources(tmp_path, out):
    assert_one_line_error(run('--source', tmp_path / 'nope', '--dest', out / 'd.zip'), 'nope', 'source not found')
    (tmp_path / 'notzip.zip').write_text('garbage')
    assert_one_line_error(run('--source', tmp_path / 'notzip.zip', '--dest', out / 'd.zip'), 'notzip.zip', 'must be a folder, a zip')
    (tmp_path / 'empty').mkdir()
    assert_one_line_error(run('--source', tmp_path / 'empty', '--dest', out / 'd.zip'), 'empty', 'no image files')
    assert_one_line_error(run('--source', tmp_path / 'empty', '--dest', tmp_path / 'empty' / 'x.zip'), 'inside the source')

def test_cli_process_prints_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, 'dataset_tool.py', '--source', str(tmp_path / 'missing'), '--dest', str(tmp_path / 'd.zip')],
                       capture_output=True, text=True, cwd=os.path.dirname(dataset_tool.__file__))
    assert r.returncode == 1
    assert r.stdout == '' and r.stderr.strip().splitlines() == [f'Error: {tmp_path / "missing"}: source not found']

#----------------------------------------------------------------------------

def test_help_matches_docs():
    from tests.support import write_help_docs
    with open(os.path.join(os.path.dirname(dataset_tool.__file__), 'docs', 'dataset-tool-help.txt')) as f:
        assert write_help_docs.help_text('dataset_tool.py') == f.read()

#----------------------------------------------------------------------------

def test_file_vanishing_before_read_is_unreadable(tmp_path):
    opts = build.Options(source_kind='dir', source_path=str(tmp_path))
    res = build.process_item(opts, build.Item(name='gone.png', ref=str(tmp_path / 'gone.png')))
    assert res['status'] == 'skip' and res['reason'] == 'unreadable' and 'No such file' in res['detail']

def test_corrupt_zip_member_is_unreadable(tmp_path, out, rng):
    good = helpers.png_bytes(helpers.random_image(rng, 8, 8))
    bad = helpers.png_bytes(helpers.random_image(rng, 8, 8))
    src = tmp_path / 'c.zip'
    with zipfile.ZipFile(src, 'w') as z:
        z.writestr('a.png', good)
        z.writestr('b.png', bad)
    data = bytearray(src.read_bytes())
    i = data.find(bad[-40:-20]) # Flip bytes inside b.png's stored data: its CRC check fails.
    data[i:i + 4] = b'\0\0\0\0' if data[i:i + 4] != b'\0\0\0\0' else b'\1\1\1\1'
    src.write_bytes(bytes(data))
    r = run('--source', src, '--dest', out / 'c_out.zip')
    assert r.exit_code == 0, r.output
    s = read_zip(out / 'c_out.zip')[2]['skipped_files']
    assert s == [dict(file='b.png', reason='unreadable', detail=s[0]['detail'])] and 'CRC' in s[0]['detail']
