# Small phantom studies for the classifier-study tests: 16-px zips of two-eyed patients, written once per session.

import json
import os
import zipfile

import pytest

from fundus.classify import phantoms

#----------------------------------------------------------------------------

@pytest.fixture(scope='session')
def phantom_dir(tmp_path_factory):
    """train (2 patients/grade), val (2), test (3) zips at 16 px and a phantom folder source (8 per grade)."""
    d = str(tmp_path_factory.mktemp('phantoms'))
    phantoms.make_study(d, train_patients=2, val_patients=2, test_patients=3, synthetic_per_grade=(4, 8), resolution=16,
                        seeds=2, steps=6, seed=0)
    return d

def write_study(folder, **overrides):
    """A study.json next to the phantom zips with small defaults; returns its path."""
    study = dict(name='t', resolution=16, seeds=2, bootstrap=200,
                 data=dict(train='train.zip', val='val.zip', test='test.zip'),
                 sources=dict(phantom=dict(kind='folder', path='phantom-source'), noise=dict(kind='noise', seed=1)),
                 conditions=['real', 'real+oversample', 'real+classic',
                             dict(kind='real+synthetic', source='phantom', per_grade=[4, 8]),
                             dict(kind='gan-test', source='phantom', per_grade=4)],
                 model=dict(arch='tiny', steps=6, batch=8, val_every=3, width=4))
    name = overrides.pop('file', 'study.json')
    study.update(overrides)
    path = os.path.join(folder, name)
    with open(path, 'w') as f:
        json.dump(study, f)
    return path

def rewrite_zip(src, dst, drop=(), add=None, labels=True):
    """Copy a zip, dropping members, adding {name: bytes}, optionally removing its labels."""
    add = add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        meta = json.loads(zin.read('dataset.json'))
        rows = [r for r in meta['labels'] if r[0] not in drop]
        for name in zin.namelist():
            if name not in drop and name != 'dataset.json':
                zout.writestr(name, zin.read(name))
        for name, data in add.items():
            zout.writestr(name, data)
            rows.append([name, 0])
        zout.writestr('dataset.json', json.dumps(dict(labels=rows if labels else None)))
    return dst

#----------------------------------------------------------------------------
