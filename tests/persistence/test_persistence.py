# Network pickles: our format round-trips bitwise (also in a subprocess without `training/` on sys.path),
# hostile pickles are refused without running anything, official-layout pickles (built here with our
# own code, with a module_src that would leave a trace if executed) load into our classes, writes are
# atomic, and the checked-in fixture from an earlier version still loads.

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import dnnlib
from tests.golden import regen
from tests.support import official_pickles
from tests.support import tiny_configs as tc
from torch_utils import misc
from torch_utils import persistence

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def _latents(seeds, dim=tc.TINY_Z_DIM):
    return torch.cat([torch.from_numpy(np.random.RandomState(s).randn(1, dim)).float() for s in seeds])

def _image(G, seeds=(1, 2)):
    with torch.no_grad():
        return G(_latents(list(seeds)), None, noise_mode='const')

def _snapshot():
    torch.manual_seed(0)
    G = tc.build(tc.sg3_generator_kwargs()).eval().requires_grad_(False)
    D = tc.build(tc.sg2_discriminator_kwargs()).eval().requires_grad_(False)
    G_ema = tc.build(tc.sg3_generator_kwargs()).eval().requires_grad_(False)
    return dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=dict(path='x.zip', resolution=16))

def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype and torch.equal(sa[name], sb[name]), name

#----------------------------------------------------------------------------
# Our format.

def test_round_trip_is_bitwise_and_keeps_kwargs(tmp_path):
    data = _snapshot()
    path = tmp_path / 'network-snapshot-000000.pkl'
    persistence.save_network_pkl(path, data)
    loaded = persistence.load_network_pkl(path)
    for key in ('G', 'D', 'G_ema'):
        assert type(loaded[key]) is type(data[key]) # Our own classes, not wrappers.
        _assert_same_state(data[key], loaded[key])
        assert isinstance(loaded[key].init_kwargs, dnnlib.EasyDict)
        assert loaded[key].init_kwargs == data[key].init_kwargs
        assert not loaded[key].training
        assert not any(p.requires_grad for p in loaded[key].parameters())
    assert torch.equal(_image(data['G_ema']), _image(loaded['G_ema']))
    assert loaded['training_set_kwargs'] == dict(path='x.zip', resolution=16)
    assert loaded['augment_pipe'] is None

def test_init_kwargs_rebuild_and_copy_params():
    G = tc.build(tc.sg3_generator_kwargs(c_dim=2))
    assert G.init_kwargs.mapping_kwargs.num_layers == 2 and G.init_kwargs.c_dim == 2
    G2 = type(G)(*G.init_args, **G.init_kwargs)
    misc.copy_params_and_buffers(G, G2, require_all=True)
    _assert_same_state(G, G2)
    G.init_kwargs.c_dim = 99 # init_kwargs returns a copy.
    assert G.init_kwargs.c_dim == 2

def test_pickle_holds_no_code_and_few_globals():
    payload = pickle.dumps(_snapshot(), protocol=4)
    globals_used = set()
    import pickletools # pylint: disable=import-outside-toplevel
    strings = []
    for op, arg, _ in pickletools.genops(payload):
        if op.name in ('SHORT_BINUNICODE', 'BINUNICODE'):
            strings.append(arg)
        if op.name == 'STACK_GLOBAL':
            globals_used.add(tuple(strings[-2:]))
    assert globals_used == {('torch_utils.persistence', '_reconstruct_network'), ('dnnlib.util', 'EasyDict')}
    assert b'def forward' not in payload

def test_loading_leaves_global_rng_untouched(tmp_path):
    persistence.save_network_pkl(tmp_path / 'a.pkl', _snapshot())
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    persistence.load_network_pkl(tmp_path / 'a.pkl')
    assert torch.equal(torch.rand(3), expect)

def test_missing_optional_keys_become_none(tmp_path):
    G = _snapshot()['G']
    persistence.save_network_pkl(tmp_path / 'g.pkl', dict(G_ema=G))
    loaded = persistence.load_network_pkl(tmp_path / 'g.pkl')
    assert loaded['augment_pipe'] is None and loaded['training_set_kwargs'] is None
    _assert_same_state(G, loaded['G_ema'])

def test_force_fp16_rebuilds_with_same_weights(tmp_path):
    data = _snapshot()
    persistence.save_network_pkl(tmp_path / 'a.pkl', data)
    loaded = persistence.load_network_pkl(tmp_path / 'a.pkl', force_fp16=True)
    assert loaded['G'].init_kwargs.num_fp16_res == 4 and loaded['G'].init_kwargs.conv_clamp == 256
    assert loaded['D'].init_kwargs.num_fp16_res == 4
    _assert_same_state(data['G'], loaded['G'])
    assert any(getattr(loaded['G'].synthesis, n).use_fp16 for n in loaded['G'].synthesis.layer_names)

def test_save_rejects_non_persistent_modules(tmp_path):
    with pytest.raises(TypeError, match='persistent_class'):
        persistence.save_network_pkl(tmp_path / 'bad.pkl', dict(G=torch.nn.Linear(2, 2)))
    assert not (tmp_path / 'bad.pkl').exists()

def test_unplain_constructor_arguments_are_rejected():
    with pytest.raises(TypeError, match='cannot be stored'):
        tc.build(tc.sg2_generator_kwargs(), mapping_kwargs=dict(num_layers=2, lr_multiplier=torch.tensor(0.01)))

def test_deepcopy_keeps_tensors_and_flags():
    import copy # pylint: disable=import-outside-toplevel
    G = tc.build(tc.sg3_generator_kwargs())
    G2 = copy.deepcopy(G)
    _assert_same_state(G, G2)
    assert G2.init_kwargs == G.init_kwargs and all(p.requires_grad for p in G2.parameters())
    assert G2.synthesis.input.weight.data_ptr() != G.synthesis.input.weight.data_ptr()

def test_atomic_write_leaves_old_file_on_crash(tmp_path, monkeypatch):
    path = tmp_path / 'snap.pkl'
    data = _snapshot()
    persistence.save_network_pkl(path, data)
    before = path.read_bytes()
    def crash(fd):
        raise KeyboardInterrupt('simulated crash before the rename')
    monkeypatch.setattr(os, 'fsync', crash)
    data['G'].synthesis.input.weight.add_(1)
    with pytest.raises(KeyboardInterrupt):
        persistence.save_network_pkl(path, data)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['snap.pkl'] # No temp file left behind.
    persistence.load_network_pkl(path)

def test_checked_in_fixture_still_loads():
    data = persistence.load_network_pkl(regen.FIXTURE_FILE)
    with open(regen.FIXTURE_EXPECT, encoding='utf-8') as f:
        expect = np.asarray(json.load(f)['image_corner'], dtype=np.float32)
    G, D = regen.make_fixture_networks()
    for net, stored in ((G, data['G_ema']), (D, data['D'])):
        sa, sb = net.state_dict(), stored.state_dict()
        assert list(sa) == list(sb) and all(sa[n].dtype == sb[n].dtype for n in sa)
        for n in sa: # torch.randn's scalar path (CPUs without AVX2) differs from the vectorised one by up to 4.8e-7 of max|w|.
            assert (sa[n] - sb[n]).abs().max() <= 2e-6 * sb[n].abs().max(), n
    got = regen.fixture_image(data['G_ema'])[0, :, -3:, -3:].numpy()
    assert np.abs(got - expect).max() < 1e-4
    assert data['training_set_kwargs']['resolution'] == 16

#----------------------------------------------------------------------------
# Round trip in a subprocess whose sys.path holds only dnnlib/ and torch_utils/ (through symlinks).

_CHILD = textwrap.dedent('''
    import importlib.util, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    assert importlib.util.find_spec('training') is None, 'training/ must not be importable from sys.path'
    from torch_utils import persistence
    data = persistence.load_network_pkl(sys.argv[1])
    z = torch.from_numpy(np.load(sys.argv[2]))
    with torch.no_grad():
        img = data['G_ema'](z, None, noise_mode='const')
    np.save(sys.argv[3], img.numpy())
    print(type(data['G_ema']).__module__, sys.modules['training'].__file__, 'scipy' in sys.modules)
''')

def test_round_trip_in_subprocess_without_training_on_path(tmp_path):
    # StyleGAN2 networks keep the child's imports small (no SciPy): the child is mostly torch start-up.
    torch.manual_seed(0)
    data = dict(G_ema=tc.build(tc.sg2_generator_kwargs()).eval(), D=tc.build(tc.sg2_discriminator_kwargs()).eval())
    persistence.save_network_pkl(tmp_path / 'snap.pkl', data)
    z = _latents([1, 2])
    np.save(tmp_path / 'z.npy', z.numpy())
    libdir = tmp_path / 'lib'
    libdir.mkdir()
    for name in ('dnnlib', 'torch_utils'):
        os.symlink(os.path.join(_ROOT, name), libdir / name)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONPATH'] = str(libdir)
    result = subprocess.run([sys.executable, '-c', _CHILD, str(tmp_path / 'snap.pkl'), str(tmp_path / 'z.npy'), str(tmp_path / 'img.npy')],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == 'training.networks_stylegan2'
    assert os.path.realpath(result.stdout.split()[1]).startswith(os.path.realpath(_ROOT)) # Our tree, found next to torch_utils.
    got = np.load(tmp_path / 'img.npy')
    assert np.array_equal(got, _image(data['G_ema']).numpy())

#----------------------------------------------------------------------------
# Hostile pickles.

class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker
    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))

def test_hostile_global_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / 'pwned'
    payload = pickle.dumps(dict(G=_RunsCommand(marker)))
    (tmp_path / 'evil.pkl').write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match=r'refused global (posix|os|nt)\.system'):
        persistence.load_network_pkl(tmp_path / 'evil.pkl')
    assert not marker.exists()

class _NestedTorchLoad:
    def __init__(self, inner):
        self.inner = inner
    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.inner,)) # pylint: disable=protected-access

def test_load_from_bytes_runs_restricted(tmp_path):
    # torch.storage._load_from_bytes would run an unrestricted torch.load on the embedded bytes.
    marker = tmp_path / 'pwned'
    buf = io.BytesIO()
    torch.save(_RunsCommand(marker), buf, _use_new_zipfile_serialization=False)
    payload = pickle.dumps(dict(G=_NestedTorchLoad(buf.getvalue())))
    with pytest.raises(pickle.UnpicklingError):
        persistence.load_network_pkl(io.BytesIO(payload))
    assert not marker.exists()

def test_unknown_class_name_is_refused():
    G = tc.build(tc.sg3_generator_kwargs())
    _, (meta,) = G.__reduce_ex__(4)
    meta['class_name'] = 'os.system'
    with pytest.raises(pickle.UnpicklingError, match='not a persistent class'):
        persistence.loads_network_pkl(pickle.dumps(dict(G=_Reduce(persistence._reconstruct_network, meta)))) # pylint: disable=protected-access

_Reduce = official_pickles.Reduce

#----------------------------------------------------------------------------
# Official-layout pickles, built with our code (tests/support/official_pickles.py): NVIDIA's meta dict,
# nested _parameters/_buffers/_modules, standard torch tensor pickling, and a module_src that leaves a
# marker file (and raises) if executed.

_official_like = official_pickles.official_like
_evil_src = official_pickles.evil_src

@pytest.mark.parametrize('kind', ['sg3t', 'sg3r', 'sg2', 'sg2_ada_nested_kwargs'])
def test_official_layout_generator_loads_and_matches(tmp_path, kind):
    marker = tmp_path / 'executed'
    torch.manual_seed(1)
    kwargs = dict(sg3t=tc.sg3_generator_kwargs(), sg3r=tc.sg3r_generator_kwargs(),
                  sg2=tc.sg2_generator_kwargs(), sg2_ada_nested_kwargs=tc.sg2_generator_kwargs())[kind]
    G = tc.build(kwargs).eval().requires_grad_(False)
    init_kwargs = None
    if kind == 'sg2_ada_nested_kwargs': # StyleGAN2-ADA nests the synthesis arguments.
        flat = G.init_kwargs
        top = {k: flat.pop(k) for k in ['z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'mapping_kwargs']}
        init_kwargs = dict(top, synthesis_kwargs=dict(flat))
    D = tc.build(tc.sg2_discriminator_kwargs()).eval().requires_grad_(False)
    payload = pickle.dumps(dict(G_ema=_official_like(G, _evil_src(marker), init_kwargs), D=_official_like(D, _evil_src(marker)),
                                training_set_kwargs=dnnlib.EasyDict(path='ffhq.zip')), protocol=4)
    assert b'torch_utils.persistence' in payload and b'_reconstruct_persistent_obj' in payload
    loaded = persistence.load_network_pkl(io.BytesIO(payload))
    assert not marker.exists()
    assert type(loaded['G_ema']) is type(G) and type(loaded['D']) is type(D)
    _assert_same_state(G, loaded['G_ema'])
    _assert_same_state(D, loaded['D'])
    assert (_image(loaded['G_ema']) - _image(G)).abs().max() < 1e-4
    img = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert (loaded['D'](img, None) - D(img, None)).abs().max() < 1e-4
    assert loaded['augment_pipe'] is None and loaded['training_set_kwargs'].path == 'ffhq.zip'

def test_official_layout_with_wrong_shapes_fails_clearly(tmp_path):
    D = tc.build(tc.sg2_discriminator_kwargs())
    kwargs = dict(D.init_kwargs, channel_max=16) # Recorded kwargs disagree with the tensors.
    payload = pickle.dumps(dict(D=_official_like(D, 'raise SystemExit', kwargs)))
    with pytest.raises(ValueError, match='shape'):
        persistence.load_network_pkl(io.BytesIO(payload))

def test_official_layout_with_hostile_state_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    G = tc.build(tc.sg3_generator_kwargs())
    obj = _official_like(G, 'pass')
    obj.meta['state']['extra'] = _RunsCommand(marker)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        persistence.load_network_pkl(io.BytesIO(pickle.dumps(dict(G=obj))))
    assert not marker.exists()

#----------------------------------------------------------------------------
