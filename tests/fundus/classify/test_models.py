# Classifier models, weights loading, classic augmentation and the training recipe.

import numpy as np
import pytest
import torch

from fundus.classify import config, models, study as cstudy
from fundus.classify.config import ClassifyError
from tests.fundus.classify.conftest import write_study

#----------------------------------------------------------------------------

@pytest.mark.parametrize('arch', ['tiny', 'resnet18', 'mobilenet_v3_small'])
def test_models_build_from_seed_and_classify(arch):
    state = torch.random.get_rng_state()
    a, b, c = (models.build_model(arch, 5, seed=s) for s in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)                 # The global RNG is left alone.
    pa, pb, pc = (next(iter(m.parameters())) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    probs = models.predict(a, np.zeros((2, 3, 32, 32), np.uint8), torch.device('cpu'))
    assert probs.shape == (2, 5) and np.allclose(probs.sum(1), 1)

def test_local_weights_keep_a_fresh_head(tmp_path):
    src = models.build_model('resnet18', 1000, seed=1)                       # e.g. an ImageNet-shaped state dict
    torch.save(src.state_dict(), tmp_path / 'w.pt')
    net = models.build_model('resnet18', 5, seed=2, weights=str(tmp_path / 'w.pt'))
    assert torch.equal(net.conv1.weight, src.conv1.weight)
    assert net.fc.weight.shape == (5, 512) and torch.equal(net.fc.weight, models.build_model('resnet18', 5, seed=2).fc.weight)
    torch.save({'x': torch.zeros(3)}, tmp_path / 'bad.pt')
    with pytest.raises(ClassifyError, match='has no tensor that fits this model'):
        models.build_model('tiny', 5, seed=0, weights=str(tmp_path / 'bad.pt'))

def test_classic_augment():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    y1 = models.classic_augment(x, torch.Generator().manual_seed(0))
    y2 = models.classic_augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2) and y1.shape == x.shape and y1.min() >= -1 and y1.max() <= 1
    assert not torch.allclose(y1, x)
    black = -torch.ones(1, 3, 16, 16)
    out = models.classic_augment(black, torch.Generator().manual_seed(1))
    assert torch.allclose(out, black, atol=1e-6)                             # Black (outside the FOV) stays black.

def test_training_learns_a_separable_task():
    gen = torch.Generator().manual_seed(0)
    grades = torch.arange(40) % 2
    images = (grades[:, None, None, None] * 200 + torch.randint(0, 40, (40, 3, 16, 16), generator=gen)).to(torch.uint8)
    recipe = dict(config.MODEL_DEFAULTS, steps=30, batch=8, lr=3e-3, val_every=10)
    net = models.build_model('tiny', 2, seed=0, width=4)
    state, history = models.train(net, images, grades, recipe, seed=0, val=(images.numpy(), grades.numpy()), device=torch.device('cpu'))
    assert [h['step'] for h in history] == [10, 20, 30]
    net.load_state_dict(state)
    acc = (models.predict(net, images, torch.device('cpu')).argmax(1) == grades.numpy()).mean()
    assert acc > 0.9 and max(h['val_kappa'] for h in history) > 0.8

def test_training_data_of_conditions(phantom_dir):
    path = write_study(phantom_dir, file='td.json', conditions=[
        'real', dict(kind='real+synthetic', source='phantom', ratio=0.5), dict(kind='synthetic-only', source='phantom', per_grade=3)])
    plan = cstudy.build_pools(cstudy.prepare(config.load_study(path)), torch.device('cpu'))
    by = {c['name']: c for c in plan.study['conditions']}
    imgs, g = cstudy.training_data(plan, by['real+phantom@0.5x'])
    assert len(g) == 20 + 10 and np.bincount(g[20:], minlength=5).tolist() == [2, 2, 2, 2, 2]
    assert np.array_equal(imgs[20:22], plan.pools['phantom'].images[0][:2])
    imgs, g = cstudy.training_data(plan, by['synthetic-only:phantom@3/grade'])
    assert np.bincount(g).tolist() == [3] * 5

#----------------------------------------------------------------------------
