# dnnlib: EasyDict, construction by name (restricted to our tree), open_url with cache and offline failure.

import os
import pickle

import pytest

import dnnlib
from dnnlib import util

#----------------------------------------------------------------------------

def test_easydict_attribute_access_and_pickle():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d['b'] == 2 and d.a == 1
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError):
        _ = d.missing
    assert pickle.loads(pickle.dumps(d)) == {'b': 2}

def test_construct_class_by_name_builds_our_classes():
    obj = dnnlib.construct_class_by_name(class_name='dnnlib.util.EasyDict', x=3)
    assert isinstance(obj, dnnlib.EasyDict) and obj.x == 3

def test_construct_class_by_name_allows_torch_optim():
    import torch
    p = torch.nn.Parameter(torch.zeros(2))
    opt = dnnlib.construct_class_by_name([p], class_name='torch.optim.Adam', lr=0.1, betas=(0.0, 0.99))
    assert isinstance(opt, torch.optim.Adam)

@pytest.mark.parametrize('name', ['os.system', 'builtins.eval', 'subprocess.Popen', 'torch.load'])
def test_construct_class_by_name_refuses_names_outside_our_tree(name):
    with pytest.raises(ValueError, match='not allowed'):
        dnnlib.construct_class_by_name('echo hi', class_name=name)

def test_get_obj_by_name_reports_missing_attribute():
    with pytest.raises(ValueError, match='no attribute'):
        dnnlib.get_obj_by_name('dnnlib.util.NoSuchThing')

#----------------------------------------------------------------------------

def test_open_url_local_path_and_file_url(tmp_path):
    path = tmp_path / 'x.bin'
    path.write_bytes(b'abc')
    with dnnlib.open_url(str(path)) as f:
        assert f.read() == b'abc'
    with dnnlib.open_url(path.as_uri()) as f:
        assert f.read() == b'abc'
    assert dnnlib.open_url(str(path), return_filename=True) == str(path)

def test_open_url_missing_local_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        dnnlib.open_url(str(tmp_path / 'nope.pkl'))

def test_open_url_uses_cache_without_network(tmp_path):
    url = 'https://example.invalid/models/detector.pkl'
    cache_dir = tmp_path / 'cache'
    cached = util.url_cache_path(url, str(cache_dir))
    os.makedirs(cache_dir)
    with open(cached, 'wb') as f:
        f.write(b'cached-bytes')
    with dnnlib.open_url(url, cache_dir=str(cache_dir)) as f:
        assert f.read() == b'cached-bytes'

def test_open_url_offline_fails_fast_naming_url_and_cache(tmp_path):
    url = 'https://example.invalid/models/detector.pkl'
    with pytest.raises(OSError) as info:
        dnnlib.open_url(url, cache_dir=str(tmp_path), timeout=2, verbose=False)
    message = str(info.value)
    assert url in message
    assert util.url_cache_path(url, str(tmp_path)) in message

def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path))
    assert dnnlib.make_cache_dir_path('a', 'b') == os.path.join(str(tmp_path), 'a', 'b')

#----------------------------------------------------------------------------

def test_atomic_write_keeps_old_file_on_crash(tmp_path):
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old')
    def crash(f):
        f.write(b'partial')
        raise RuntimeError('simulated crash')
    with pytest.raises(RuntimeError):
        dnnlib.atomic_write(path, crash)
    assert path.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['out.bin'] # No temp file left behind.
    dnnlib.atomic_write(path, lambda f: f.write(b'new'))
    assert path.read_bytes() == b'new'

@pytest.mark.parametrize('seconds, text', [(5, '5s'), (75, '1m 15s'), (3725, '1h 02m 05s'), (90061, '1d 01h 01m')])
def test_format_time(seconds, text):
    assert dnnlib.format_time(seconds) == text

#----------------------------------------------------------------------------

def test_atomic_write_gives_usual_permissions(tmp_path):
    path = tmp_path / 'perm.bin'
    dnnlib.atomic_write(path, lambda f: f.write(b'x'))
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)

#----------------------------------------------------------------------------
