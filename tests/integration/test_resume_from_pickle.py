# train.py --resume=<network pickle> --freezed=N: a new run starts from the pickle's G, D and G_ema
# (ours, or an official-layout pickle with NVIDIA's augment pipe built by tests/support/official_pickles),
# kimg and augment p restart at 0, and the frozen discriminator layers keep the pickle's weights.

import os

import pytest
import torch

from tests.support import official_pickles
from tests.training import helpers as train_helpers
from training import training_loop
from torch_utils import misc
from torch_utils import persistence
from training import launch

FREEZED = 2 # b16.fromrgb and b16.conv0 of the tiny 16-px discriminator.

#----------------------------------------------------------------------------

def _source_networks(data, seed=7):
    # Networks of the same configuration but another seed, G_ema perturbed away from G, augment p 0.3.
    c = train_helpers.tiny_config(data, seed=seed)
    objs = launch.construct_objects(c)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in objs.G_ema.parameters():
            tensor.add_(0.05 * torch.randn(tensor.shape, generator=gen))
        objs.augment_pipe.p.fill_(0.3)
    return objs

def _write_pickle(path, objs, layout, marker):
    nets = dict(G=objs.G.eval(), D=objs.D.eval(), G_ema=objs.G_ema.eval(), augment_pipe=objs.augment_pipe)
    kwargs = dict(class_name='training.dataset.ImageFolderDataset', path='/elsewhere/ffhq.zip', resolution=16)
    if layout == 'ours':
        persistence.save_network_pkl(path, dict(nets, training_set_kwargs=kwargs))
    else:
        payload = official_pickles.official_snapshot_bytes(official_pickles.evil_src(marker), training_set_kwargs=kwargs, **nets)
        with open(path, 'wb') as f:
            f.write(payload)
    return str(path)

def _states(s):
    return {name: {k: v.detach().clone() for k, v in misc.named_params_and_buffers(getattr(s, name))} for name in ('G', 'D', 'G_ema')}

def _assert_equal_states(got, want, where):
    assert set(got) == set(want), where
    for key in want:
        assert torch.equal(got[key], want[key]), f'{where}.{key}'

#----------------------------------------------------------------------------

@pytest.mark.parametrize('layout', ['ours', 'official'])
def test_resume_from_network_pickle_starts_a_new_run_from_its_weights(tmp_path, monkeypatch, layout):
    data = train_helpers.make_dataset(str(tmp_path), num_images=8)
    marker = tmp_path / 'module_src-executed'
    pkl = _write_pickle(tmp_path / f'{layout}.pkl', _source_networks(data), layout, marker)
    source = {name: dict(misc.named_params_and_buffers(persistence.load_network_pkl(pkl)[name])) for name in ('G', 'D', 'G_ema')}

    # Record the networks as the first training step sees them (kimg 0).
    first = {}
    step = training_loop.training_step
    def spy(s):
        if not first:
            first.update(_states(s), p=float(s.augment_pipe.p), nimg=s.progress['cur_nimg'])
        return step(s)
    monkeypatch.setattr(training_loop, 'training_step', spy)

    c = train_helpers.tiny_config(data, kimg=0.008, tick=0.004, resume=pkl, freezed=FREEZED)
    run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'))
    assert not marker.exists()
    assert first['nimg'] == 0 and first['p'] == 0 # A new run: kimg and augment p restart, as upstream.
    for name in ('G', 'D', 'G_ema'):
        _assert_equal_states(first[name], source[name], name)
    with open(os.path.join(run_dir, 'log.txt')) as f:
        assert f'Resuming from "{pkl}"' in f.read()

    # Two steps later: frozen D layers still hold the pickle's weights, the rest of D and G have moved.
    final = persistence.load_network_pkl(os.path.join(run_dir, 'network-snapshot-000000.pkl'))
    D = dict(misc.named_params_and_buffers(final['D']))
    frozen = [k for k in D if k.startswith(('b16.fromrgb.', 'b16.conv0.')) and not k.endswith('resample_filter')]
    assert len(frozen) == 4 and not any(k in dict(final['D'].named_parameters()) for k in frozen)
    for key in frozen:
        assert torch.equal(D[key], source['D'][key]), key
    trainable = dict(final['D'].named_parameters())
    assert trainable and all(not torch.equal(D[k], source['D'][k]) for k in ('b16.conv1.weight', 'b8.conv0.weight'))
    G = dict(final['G'].named_parameters())
    assert any(not torch.equal(G[k], source['G'][k]) for k in G)

def test_resume_from_pickle_of_another_configuration_names_the_problem(tmp_path):
    data = train_helpers.make_dataset(str(tmp_path), num_images=8)
    pkl = _write_pickle(tmp_path / 'other.pkl', _source_networks(data), 'ours', None)
    c = train_helpers.tiny_config(data, kimg=0.004, tick=0.004, resume=pkl)
    c.D_kwargs.channel_max = 16 # The run's D is narrower than the pickle's.
    with pytest.raises(ValueError, match=r'--resume=.*other\.pkl: D does not fit this configuration .*--cbase, --cmax'):
        launch.launch_training(c, outdir=str(tmp_path / 'runs'))

#----------------------------------------------------------------------------

def test_resume_from_a_g_ema_only_pickle_starts_g_and_g_ema_from_it(tmp_path, monkeypatch):
    # The shipped model holds G_ema alone: fine-tuning it must not train a freshly initialised G.
    data = train_helpers.make_dataset(str(tmp_path), num_images=8)
    objs = _source_networks(data)
    pkl = str(tmp_path / 'g_ema.pkl')
    persistence.save_network_pkl(pkl, dict(G_ema=objs.G_ema.eval()))
    source = dict(misc.named_params_and_buffers(objs.G_ema))
    fresh_D = _states(launch.construct_objects(train_helpers.tiny_config(data)))['D']
    first = {}
    step = training_loop.training_step
    def spy(s):
        if not first:
            first.update(_states(s))
        return step(s)
    monkeypatch.setattr(training_loop, 'training_step', spy)
    c = train_helpers.tiny_config(data, kimg=0.004, tick=0.004, resume=pkl)
    run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'))
    _assert_equal_states(first['G'], source, 'G')
    _assert_equal_states(first['G_ema'], source, 'G_ema')
    _assert_equal_states(first['D'], fresh_D, 'D')
    with open(os.path.join(run_dir, 'log.txt')) as f:
        log = f.read()
    assert 'the pickle has no G; G starts from its G_ema' in log and 'the pickle has no D' in log
