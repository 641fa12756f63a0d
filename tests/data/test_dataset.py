# training.dataset: zip and folder datasets, labels, max_size, xflip, resolution and channel checks,
# pickling, DataLoader workers and the --cond helper.

import pickle
import warnings

import numpy as np
import pytest
import torch

from tests.data import helpers
from training import dataset as ds

#----------------------------------------------------------------------------

def _images(n=6, res=16, seed=0):
    rng = np.random.default_rng(seed)
    return {f'sub/img{i:02d}.png': helpers.random_image(rng, res, res) for i in range(n)}

@pytest.fixture(params=['zip', 'dir'])
def labelled(request, tmp_path):
    images = _images()
    labels = {name: i % 3 for i, name in enumerate(images)}
    if request.param == 'zip':
        path = helpers.write_image_zip(tmp_path / 'set.zip', images, labels)
    else:
        path = helpers.write_image_folder(tmp_path / 'set', images, labels)
    return str(path), images, labels

#----------------------------------------------------------------------------

def test_items_match_files_in_sorted_order_with_onehot_labels(labelled):
    path, images, labels = labelled
    d = ds.ImageFolderDataset(path, use_labels=True)
    assert len(d) == 6 and d.name == 'set'
    assert d.image_shape == [3, 16, 16] and d.resolution == 16 and d.num_channels == 3
    assert d.label_shape == [3] and d.label_dim == 3 and d.has_labels and d.has_onehot_labels
    for i, name in enumerate(sorted(images)):
        img, label = d[i]
        assert img.dtype == np.uint8
        np.testing.assert_array_equal(img, images[name].transpose(2, 0, 1))
        np.testing.assert_array_equal(label, np.eye(3, dtype=np.float32)[labels[name]])

def test_without_use_labels_labels_are_empty(labelled):
    path, _, _ = labelled
    d = ds.ImageFolderDataset(path)
    assert d.label_shape == [0] and not d.has_labels
    assert d[0][1].shape == (0,)

def test_vector_labels_are_float(tmp_path):
    images = _images(3)
    labels = {n: [i, 0.5, 1] for i, n in enumerate(images)}
    d = ds.ImageFolderDataset(str(helpers.write_image_zip(tmp_path / 'v.zip', images, labels)), use_labels=True)
    assert d.label_shape == [3] and not d.has_onehot_labels
    np.testing.assert_array_equal(d[2][1], np.array([2, 0.5, 1], np.float32))

def test_xflip_doubles_with_mirrored_second_half(labelled):
    path, images, _ = labelled
    d = ds.ImageFolderDataset(path, xflip=True)
    assert len(d) == 12
    first = sorted(images)[0]
    np.testing.assert_array_equal(d[6][0], images[first].transpose(2, 0, 1)[:, :, ::-1])
    det = d.get_details(6)
    assert det.raw_idx == 0 and det.xflip is True
    assert d.get_details(0).xflip is False

def test_max_size_is_a_seeded_sorted_subset(labelled):
    path, _, _ = labelled
    a = ds.ImageFolderDataset(path, max_size=3, random_seed=1)
    b = ds.ImageFolderDataset(path, max_size=3, random_seed=1)
    idx = [a.get_details(i).raw_idx for i in range(len(a))]
    # Oracle: NVIDIA's rule, shuffle arange with RandomState(seed), take the first max_size, sort.
    ref = np.arange(6)
    np.random.RandomState(1).shuffle(ref)
    assert idx == sorted(ref[:3].tolist())
    assert idx == [b.get_details(i).raw_idx for i in range(len(b))]
    both = ds.ImageFolderDataset(path, max_size=3, random_seed=1, xflip=True)
    assert len(both) == 6 and [both.get_details(i).raw_idx for i in range(6)] == idx + idx

def test_raw_label_in_details(labelled):
    path, images, labels = labelled
    d = ds.ImageFolderDataset(path, use_labels=True)
    assert int(d.get_details(4).raw_label) == labels[sorted(images)[4]]

def test_resolution_mismatch_names_dataset(labelled):
    path, _, _ = labelled
    with pytest.raises(ds.DatasetError, match=r'images are 16x16, but resolution=32'):
        ds.ImageFolderDataset(path, resolution=32)

def test_non_square_and_mixed_sizes_are_rejected(tmp_path):
    rng = np.random.default_rng(0)
    path = helpers.write_image_zip(tmp_path / 'ns.zip', {'a.png': helpers.random_image(rng, 8, 16)})
    with pytest.raises(ds.DatasetError, match=r'must be square, but a.png is 16x8'):
        ds.ImageFolderDataset(str(path))
    path = helpers.write_image_zip(tmp_path / 'mixed.zip', {'a.png': helpers.random_image(rng, 8, 8),
                                                             'b.png': helpers.random_image(rng, 16, 16)})
    d = ds.ImageFolderDataset(str(path))
    with pytest.raises(ds.DatasetError, match=r'mixed.zip: b.png: image has shape \[3, 16, 16\]'):
        d[1]

def test_rgba_and_16bit_images_are_rejected_with_file_name(tmp_path):
    rng = np.random.default_rng(0)
    path = helpers.write_image_zip(tmp_path / 'rgba.zip', {'x.png': helpers.random_image(rng, 8, 8, 4)})
    with pytest.raises(ds.DatasetError, match=r'x.png: image has 4 channels'):
        ds.ImageFolderDataset(str(path))
    deep = (rng.integers(0, 65535, size=(8, 8))).astype(np.uint16)
    path = helpers.write_image_zip(tmp_path / 'deep.zip', {'y.png': deep})
    with pytest.raises(ds.DatasetError, match=r'y.png: 16-bit image'):
        ds.ImageFolderDataset(str(path))

def test_grayscale_dataset_has_one_channel(tmp_path):
    rng = np.random.default_rng(0)
    gray = helpers.random_image(rng, 8, 8, 1)
    d = ds.ImageFolderDataset(str(helpers.write_image_zip(tmp_path / 'g.zip', {'g.png': gray})))
    assert d.num_channels == 1
    np.testing.assert_array_equal(d[0][0][0], gray)

def test_jpeg_and_webp_are_read(tmp_path):
    rng = np.random.default_rng(0)
    flat = np.full((8, 8, 3), 120, np.uint8)
    root = tmp_path / 'mix'
    root.mkdir()
    from PIL import Image
    Image.fromarray(flat).save(root / 'a.jpg', quality=95)
    Image.fromarray(flat).save(root / 'b.webp', lossless=True)
    d = ds.ImageFolderDataset(str(root))
    assert len(d) == 2
    assert np.abs(d[0][0].astype(int) - 120).max() <= 2
    np.testing.assert_array_equal(d[1][0], flat.transpose(2, 0, 1))

def test_missing_paths_and_empty_sets(tmp_path):
    with pytest.raises(ds.DatasetError, match='not found'):
        ds.ImageFolderDataset(str(tmp_path / 'nope.zip'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ds.DatasetError, match='no image files'):
        ds.ImageFolderDataset(str(tmp_path / 'empty'))
    (tmp_path / 'f.txt').write_text('hi')
    with pytest.raises(ds.DatasetError, match='must be a folder or a zip'):
        ds.ImageFolderDataset(str(tmp_path / 'f.txt'))

def test_label_file_problems_name_the_image(tmp_path):
    images = _images(3)
    names = sorted(images)
    path = helpers.write_image_zip(tmp_path / 'm.zip', images, {names[0]: 0, names[1]: 1})
    with pytest.raises(ds.DatasetError, match=f'no label for {names[2]}'):
        ds.ImageFolderDataset(str(path), use_labels=True)
    path = helpers.write_image_zip(tmp_path / 'f.zip', images, {n: 1.5 for n in names})
    with pytest.raises(ds.DatasetError, match='neither an integer nor a list'):
        ds.ImageFolderDataset(str(path), use_labels=True)
    path = helpers.write_image_zip(tmp_path / 'n.zip', images, {n: -1 for n in names})
    with pytest.raises(ds.DatasetError, match='negative label -1'):
        ds.ImageFolderDataset(str(path), use_labels=True)

#----------------------------------------------------------------------------
# --cond semantics.

def test_cond_on_unlabelled_dataset_is_an_error(tmp_path):
    path = str(helpers.write_image_zip(tmp_path / 'u.zip', _images(2)))
    # The constructor keeps upstream's behaviour (empty labels); check_labels() is where --cond fails.
    unlabelled = ds.ImageFolderDataset(path, use_labels=True)
    assert unlabelled.label_shape == [0] and not unlabelled.has_labels
    with pytest.raises(ds.DatasetError, match=r'u.zip: --cond=True needs labels'):
        ds.check_labels(unlabelled, cond=True)
    with pytest.raises(ds.DatasetError, match=r'--cond=True needs labels'):
        ds.check_labels(ds.ImageFolderDataset(path), cond=True)
    assert ds.check_labels(ds.ImageFolderDataset(path), cond=False) is None

def test_labels_without_cond_is_a_warning(labelled):
    path, _, _ = labelled
    with pytest.warns(ds.LabelsIgnoredWarning, match=r'--cond=False ignores them'):
        msg = ds.check_labels(ds.ImageFolderDataset(path), cond=False)
    assert 'dataset.json' in msg
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert ds.check_labels(ds.ImageFolderDataset(path, use_labels=True), cond=True) is None

#----------------------------------------------------------------------------
# Pickling and workers.

def test_pickle_drops_open_zip_and_reopens_lazily(labelled):
    path, _, _ = labelled
    d = ds.ImageFolderDataset(path, use_labels=True)
    expect = d[3]
    if path.endswith('.zip'):
        assert d._zipfile is not None
    state = pickle.dumps(d)
    e = pickle.loads(state)
    assert e._zipfile is None
    img, label = e[3]
    np.testing.assert_array_equal(img, expect[0])
    np.testing.assert_array_equal(label, expect[1])
    # A copy that believes it was opened in another process reopens its own handle.
    if path.endswith('.zip'):
        e._zipfile_pid = -1
        old = e._zipfile
        e[0]
        assert e._zipfile is not old and e._zipfile_pid > 0

def test_dataloader_with_two_workers_yields_every_item(labelled):
    path, images, _ = labelled
    d = ds.ImageFolderDataset(path, use_labels=True, xflip=True)
    loader = torch.utils.data.DataLoader(d, batch_size=4, num_workers=2, shuffle=False)
    imgs = torch.cat([x for x, _ in loader])
    assert imgs.shape == (12, 3, 16, 16)
    ref = np.stack([d[i][0] for i in range(12)])
    np.testing.assert_array_equal(imgs.numpy(), ref)

#----------------------------------------------------------------------------
