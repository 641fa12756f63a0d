# Study data: patient ids from names, the patient split, the leakage guard (refusal names the files) and the
# one-line errors for bad input.

import os
import shutil
import zipfile

import numpy as np
import pytest
import torch

from torch_utils import persistence
from fundus.classify import config, data as cdata, study as cstudy
from fundus.classify.config import ClassifyError
from tests.fundus.classify.conftest import rewrite_zip, write_study
from tests.support import tiny_configs

#----------------------------------------------------------------------------

def test_patient_of_dataset_names():
    assert cdata.patient_of('train/10_left.jpeg') == '10'                   # EyePACS
    assert cdata.patient_of('10_right') == '10'
    assert cdata.patient_of('0_left.jpg') == '0'                            # ODIR
    assert cdata.patient_of('IDRiD_001.jpg') == 'IDRiD_001'                 # IDRiD: no patient id, own patient
    assert cdata.patient_of('007-0004-000.jpg') == '007-0004-000'           # DDR: no patient id, own patient

def test_patient_csv(tmp_path):
    p = tmp_path / 'patients.csv'
    p.write_text('image,patient\n00000/img00000000.png,A\nimg00000001,A\n')
    table = cdata.read_patient_csv(str(p))
    assert list(cdata._patients(['00000/img00000000.png', '00000/img00000001.png'], table, 'x')) == ['A', 'A']
    with pytest.raises(ClassifyError, match='img00000002.png has no row in the patient file'):
        cdata._patients(['00000/img00000002.png'], table, 'x')
    (tmp_path / 'bad.csv').write_text('file,who\n')
    with pytest.raises(ClassifyError, match='bad.csv:1: expected columns "image" and "patient"'):
        cdata.read_patient_csv(str(tmp_path / 'bad.csv'))

def test_split_by_patient_keeps_eyes_together(phantom_dir):
    full = cdata.load_set(os.path.join(phantom_dir, 'test.zip'), 'data.zip', 16, 5)
    train, val, test = cdata.split_by_patient(full, 0.34, 0.34, 0, 5)
    sides = [set(s.patients) for s in (train, val, test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert len(train) + len(val) + len(test) == len(full)
    for s in (train, val, test):                                            # Both eyes of every patient on one side.
        assert all(list(s.patients).count(p) == 2 for p in set(s.patients))
        assert set(s.grades.tolist()) == set(range(5))                      # Stratified by grade.
    again = cdata.split_by_patient(full, 0.34, 0.34, 0, 5)
    assert again[2].names == test.names

def test_one_zip_study_splits_by_patient(phantom_dir, tmp_path):
    path = write_study(phantom_dir, file='one.json', data=dict(zip='test.zip', split=dict(val=0.34, test=0.34)))
    plan = cstudy.prepare(config.load_study(path))
    assert set(plan.sets) == {'train', 'val', 'test'}
    assert not set(plan.sets['train'].patients) & set(plan.sets['test'].patients)

#----------------------------------------------------------------------------
# Leakage guard.

def _first_member(path, n=0):
    with zipfile.ZipFile(path) as z:
        name = sorted(m for m in z.namelist() if m.endswith('.png'))[n]
        return name, z.read(name)

def test_gan_training_image_in_test_is_refused_by_name(phantom_dir, tmp_path):
    name, png = _first_member(os.path.join(phantom_dir, 'test.zip'))
    gan = rewrite_zip(os.path.join(phantom_dir, 'train.zip'), str(tmp_path / 'gan.zip'), add={'copied/x123_a.png': png})
    path = write_study(phantom_dir, file='leak1.json', gan_train=gan)
    with pytest.raises(ClassifyError, match=rf'leakage: 1 image\(s\) of gan_train .* are also in test .*: copied/x123_a.png = {name}'):
        cstudy.prepare(config.load_study(path))

def test_gan_training_patient_in_val_is_refused(phantom_dir, tmp_path):
    name, _ = _first_member(os.path.join(phantom_dir, 'val.zip'))
    patient = cdata.patient_of(name)
    _, other_png = _first_member(os.path.join(phantom_dir, 'train.zip'))
    gan = rewrite_zip(os.path.join(phantom_dir, 'train.zip'), str(tmp_path / 'gan2.zip'), drop={_first_member(os.path.join(phantom_dir, 'train.zip'))[0]},
                      add={f'{patient}_left.png': other_png})                  # Other pixels, same patient as a val image.
    path = write_study(phantom_dir, file='leak2.json', gan_train=gan)
    with pytest.raises(ClassifyError, match=rf'leakage: 1 patient\(s\) of gan_train .* are also in val .*: patient {patient} \({name}'):
        cstudy.prepare(config.load_study(path))

def test_snapshot_training_set_is_checked(phantom_dir, tmp_path):
    name, png = _first_member(os.path.join(phantom_dir, 'test.zip'))
    gan = rewrite_zip(os.path.join(phantom_dir, 'train.zip'), str(tmp_path / 'gan3.zip'), add={'dup/y9_r.png': png})
    pkl = str(tmp_path / 'snap.pkl')
    G = tiny_configs.build(tiny_configs.sg2_generator_kwargs(), c_dim=5)
    persistence.save_network_pkl(pkl, dict(G_ema=G, training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=gan)))
    path = write_study(phantom_dir, file='leak3.json', sources=dict(gan=dict(kind='snapshot', path=pkl)),
                       conditions=['real', dict(kind='real+synthetic', source='gan', per_grade=2)])
    with pytest.raises(ClassifyError, match=rf'leakage: 1 image\(s\) of the training set of snap.pkl .* are also in test .*dup/y9_r.png = {name}'):
        cstudy.prepare(config.load_study(path))
    # A snapshot whose training set is not on this machine cannot be checked: refused unless gan_train is given.
    persistence.save_network_pkl(pkl, dict(G_ema=G, training_set_kwargs=dict(path=str(tmp_path / 'gone.zip'))))
    with pytest.raises(ClassifyError, match='gone.zip, which is not here; give the GAN\'s training zip as gan_train'):
        cstudy.prepare(config.load_study(path))

def test_conditional_snapshot_source_and_seeds(phantom_dir, tmp_path):
    pkl = str(tmp_path / 'snap_ok.pkl')
    G = tiny_configs.build(tiny_configs.sg2_generator_kwargs(), c_dim=5)
    persistence.save_network_pkl(pkl, dict(G_ema=G, training_set_kwargs=dict(path=os.path.join(phantom_dir, 'train.zip'))))
    path = write_study(phantom_dir, file='snap.json', sources=dict(gan=dict(kind='snapshot', path=pkl, seed=5)),
                       conditions=['real', dict(kind='real+synthetic', source='gan', per_grade=2)])
    plan = cstudy.build_pools(cstudy.prepare(config.load_study(path)), torch.device('cpu'))
    pool = plan.pools['gan']
    assert pool.ids[3] == ['seed3000005', 'seed3000006'] and pool.images[3].shape == (2, 3, 16, 16)
    assert any('training set of snap_ok.pkl' in line for line in plan.leakage)

def test_synthetic_folder_holding_a_test_image_is_refused(phantom_dir, tmp_path):
    src = str(tmp_path / 'syn')
    shutil.copytree(os.path.join(phantom_dir, 'phantom-source'), src)
    name, png = _first_member(os.path.join(phantom_dir, 'test.zip'))
    victim = sorted(f for f in os.listdir(src) if f.endswith('.png'))[0]
    with open(os.path.join(src, victim), 'wb') as f:
        f.write(png)
    path = write_study(phantom_dir, file='leak4.json', sources=dict(phantom=dict(kind='folder', path=src)),
                       conditions=['real', dict(kind='real+synthetic', source='phantom', per_grade=8)])
    plan = cstudy.prepare(config.load_study(path))
    with pytest.raises(ClassifyError, match=rf'leakage: 1 image\(s\) of source phantom are also in test .*{victim} = {name}'):
        cstudy.build_pools(plan, torch.device('cpu'))

#----------------------------------------------------------------------------
# Bad input: one line each.

def test_labels_missing_in_zip(phantom_dir, tmp_path):
    bad = rewrite_zip(os.path.join(phantom_dir, 'train.zip'), str(tmp_path / 'nolabels.zip'), labels=False)
    path = write_study(phantom_dir, file='bad1.json', data=dict(train=bad, val='val.zip', test='test.zip'))
    with pytest.raises(ClassifyError, match=r'^data.train: .*nolabels.zip: dataset.json has no labels; build the zip with dataset_tool.py --labels=FILE$'):
        cstudy.prepare(config.load_study(path))

def test_grade_absent_from_test_set(phantom_dir, tmp_path):
    with zipfile.ZipFile(os.path.join(phantom_dir, 'test.zip')) as z:
        import json
        drop = {n for n, g in json.loads(z.read('dataset.json'))['labels'] if g == 3}
    bad = rewrite_zip(os.path.join(phantom_dir, 'test.zip'), str(tmp_path / 'no3.zip'), drop=drop)
    path = write_study(phantom_dir, file='bad2.json', data=dict(train='train.zip', val='val.zip', test=bad))
    with pytest.raises(ClassifyError, match=r'^test set .*no3.zip: no image of grade 3 \(counts per grade \[6, 6, 6, 0, 6\]\)'):
        cstudy.prepare(config.load_study(path))

def test_unconditional_snapshot_for_per_grade_images(phantom_dir, tmp_path):
    pkl = str(tmp_path / 'uncond.pkl')
    persistence.save_network_pkl(pkl, dict(G_ema=tiny_configs.build(tiny_configs.sg2_generator_kwargs()),
                                           training_set_kwargs=dict(path=os.path.join(phantom_dir, 'train.zip'))))
    path = write_study(phantom_dir, file='bad3.json', sources=dict(gan=dict(kind='snapshot', path=pkl)),
                       conditions=['real', dict(kind='real+synthetic', source='gan', per_grade=2)])
    plan = cstudy.prepare(config.load_study(path))
    with pytest.raises(ClassifyError, match=r'^sources.gan: .*uncond.pkl is an unconditional snapshot \(c_dim=0\); per-grade images need a conditional one'):
        cstudy.build_pools(plan, torch.device('cpu'))

def test_empty_folder_source(phantom_dir, tmp_path):
    os.makedirs(tmp_path / 'empty')
    path = write_study(phantom_dir, file='bad4.json', sources=dict(phantom=dict(kind='folder', path=str(tmp_path / 'empty'))),
                       conditions=['real', dict(kind='real+synthetic', source='phantom', per_grade=2)])
    plan = cstudy.prepare(config.load_study(path))
    with pytest.raises(ClassifyError, match=r'^sources.phantom: .*empty is an empty folder$'):
        cstudy.build_pools(plan, torch.device('cpu'))

def test_definition_errors(phantom_dir):
    with pytest.raises(ClassifyError, match=r"unknown key 'steps'"):
        config.resolve(dict(data=dict(zip='x.zip'), steps=3))
    with pytest.raises(ClassifyError, match=r"conditions\[1\]: source='gan' is not one of the study's sources"):
        config.resolve(dict(data=dict(zip='x.zip'), conditions=['real', dict(kind='real+synthetic', source='gan', per_grade=3)]))
    with pytest.raises(ClassifyError, match='exactly one of "per_grade"'):
        config.resolve(dict(data=dict(zip='x.zip'), sources=dict(n=dict(kind='noise')), conditions=[dict(kind='synthetic-only', source='n')]))
    names = [c['name'] for c in config.resolve(dict(data=dict(zip='x.zip'), sources=dict(n=dict(kind='noise')),
             conditions=['real+classic', dict(kind='real+synthetic', source='n', ratio=[0.5, 1])]))['conditions']]
    assert names == ['real', 'real+classic', 'real+n@0.5x', 'real+n@1x']

#----------------------------------------------------------------------------

def test_one_snapshot_per_grade_source(phantom_dir, tmp_path):
    pkl = str(tmp_path / 'g.pkl')
    persistence.save_network_pkl(pkl, dict(G_ema=tiny_configs.build(tiny_configs.sg2_generator_kwargs()),
                                           training_set_kwargs=dict(path=os.path.join(phantom_dir, 'train.zip'))))
    paths = {str(g): pkl for g in range(5)}
    path = write_study(phantom_dir, file='pergrade.json', sources=dict(gan=dict(kind='snapshots', paths=paths)),
                       conditions=['real', dict(kind='real+synthetic', source='gan', per_grade=2)])
    plan = cstudy.build_pools(cstudy.prepare(config.load_study(path)), torch.device('cpu'))
    pool = plan.pools['gan']
    assert pool.ids[4] == ['seed4000000', 'seed4000001'] and pool.images[4].shape == (2, 3, 16, 16)
    assert not np.array_equal(pool.images[0], pool.images[1])               # Other seeds per grade.
    del paths['3']
    path = write_study(phantom_dir, file='pergrade2.json', sources=dict(gan=dict(kind='snapshots', paths=paths)),
                       conditions=['real', dict(kind='real+synthetic', source='gan', per_grade=2)])
    with pytest.raises(ClassifyError, match=r'^sources.gan: no snapshot for grade 3 in "paths"$'):
        cstudy.build_pools(cstudy.prepare(config.load_study(path)), torch.device('cpu'))

#----------------------------------------------------------------------------
