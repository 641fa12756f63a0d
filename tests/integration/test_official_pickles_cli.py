# Official-layout snapshots (NVIDIA's persistence records with G, D, G_ema, an AugmentPipe whose filter
# bank has NVIDIA's length, and training_set_kwargs; built by tests/support/official_pickles.py with a
# module_src that leaves a marker if executed) through our loader, gen_images.py and calc_metrics.py.

import io
import json
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from tests.integration import helpers
from tests.support import official_pickles
from tests.support import tiny_configs as tc
from tests.support.fake_detector import FakeDetector
from torch_utils import persistence
from training.augment import AugmentPipe, augpipe_specs

#----------------------------------------------------------------------------

def _bgc_pipe(p):
    pipe = AugmentPipe(**augpipe_specs['bgc']).train().requires_grad_(False)
    pipe.p.fill_(p)
    return pipe

@pytest.fixture(scope='module')
def official(tmp_path_factory):
    root = tmp_path_factory.mktemp('official')
    torch.manual_seed(3)
    G = tc.build(tc.sg3_generator_kwargs()).eval().requires_grad_(False)
    G_ema = tc.build(tc.sg3_generator_kwargs()).eval().requires_grad_(False)
    D = tc.build(tc.sg2_discriminator_kwargs()).eval().requires_grad_(False)
    marker = root / 'module_src-executed'
    training_set_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path='/datasets/ffhq-16.zip', use_labels=False,
                               max_size=70000, xflip=True, resolution=16, random_seed=0)
    payload = official_pickles.official_snapshot_bytes(official_pickles.evil_src(marker), G=G, D=D, G_ema=G_ema,
                                                       augment_pipe=_bgc_pipe(0.37), training_set_kwargs=training_set_kwargs)
    pkl = root / 'network-snapshot-official.pkl'
    pkl.write_bytes(payload)
    return dict(pkl=str(pkl), G_ema=G_ema, marker=marker, data=helpers.phantom_zip(root / 'phantom-16.zip', 12))

#----------------------------------------------------------------------------
# The augment pipe: NVIDIA's constructor arguments and p are kept; the filter banks are ours.

def test_official_augment_pipe_loads_and_augments_like_ours(official):
    data = persistence.load_network_pkl(official['pkl'])
    assert not official['marker'].exists()
    pipe = data['augment_pipe']
    want = _bgc_pipe(0.37)
    assert type(pipe) is AugmentPipe and dict(pipe.init_kwargs) == dict(want.init_kwargs)
    assert float(pipe.p) == pytest.approx(0.37) and pipe.training
    assert torch.equal(pipe.Hz_fbank, want.Hz_fbank) and torch.equal(pipe.Hz_geom, want.Hz_geom)
    images = torch.rand([4, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 2 - 1
    got = pipe(images, generator=torch.Generator().manual_seed(5))
    ref = want(images, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(got, images) and torch.equal(got, ref)

def test_official_augment_pipe_without_p_is_refused_clearly():
    pipe = _bgc_pipe(0.5)
    record = official_pickles.official_like(pipe, 'pass', buffers=dict(p=None))
    with pytest.raises(ValueError, match='official AugmentPipe: the augment pipe has no scalar probability buffer "p"'):
        persistence.load_network_pkl(io.BytesIO(pickle.dumps(dict(augment_pipe=record))))

#----------------------------------------------------------------------------
# gen_images.py: the pictures of the pickle's G_ema, by upstream's seed recipe.

def test_gen_images_on_official_snapshot(official, tmp_path):
    import gen_images
    result = CliRunner().invoke(gen_images.main, [f'--network={official["pkl"]}', '--seeds=0-2', f'--outdir={tmp_path}', '--device=cpu'])
    assert result.exit_code == 0, result.output
    assert not official['marker'].exists()
    for seed in range(3):
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, tc.TINY_Z_DIM)).to(torch.float32)
        with torch.no_grad():
            img = official['G_ema'](z, torch.zeros([1, 0]), truncation_psi=1, noise_mode='const')
        want = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy().astype(np.int16)
        got = np.asarray(PIL.Image.open(tmp_path / f'seed{seed:04d}.png')).astype(np.int16)
        assert got.shape == (16, 16, 3) and np.abs(got - want).max() <= 1

#----------------------------------------------------------------------------
# calc_metrics.py: the pickle's training set is not on this machine -> one clear line; --data works and
# gives the FID of an oracle (zip read with PIL, SciPy FID) for the pickle's G_ema.

def _calc(args):
    import calc_metrics
    return CliRunner().invoke(calc_metrics.calc_metrics, args + ['--verbose=false', '--device=cpu'])

def test_calc_metrics_official_snapshot_needs_data_when_its_training_set_is_missing(official):
    with helpers.fake_inception():
        result = _calc([f'--network={official["pkl"]}', '--metrics=fid1k_full'])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit) # No traceback.
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('Error: ') and "'/datasets/ffhq-16.zip'" in lines[0] and '--data' in lines[0], result.output

def test_calc_metrics_official_snapshot_fid_matches_oracle(official, monkeypatch):
    num_gen = 48
    helpers.cap_fid_samples(monkeypatch, num_gen)
    with helpers.fake_inception():
        result = _calc([f'--network={official["pkl"]}', '--metrics=fid1k_full', f'--data={official["data"]}'])
    assert result.exit_code == 0, result.output
    assert not official['marker'].exists()
    fid = json.loads(result.output.strip().splitlines()[-1])['results']['fid1k_full']

    # Oracle: latent i = default_rng([0, i]).standard_normal(z_dim); SG3 has no noise inputs.
    detector = FakeDetector()
    z = torch.from_numpy(np.stack([np.random.default_rng([0, i]).standard_normal(tc.TINY_Z_DIM) for i in range(num_gen)]).astype(np.float32))
    with torch.no_grad():
        img = official['G_ema'](z, torch.zeros([num_gen, 0]))
    gen = detector(torch.floor(img * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    real = detector(torch.from_numpy(helpers.zip_images(official['data'])))
    assert fid == pytest.approx(helpers.fid_from_features(real.numpy(), gen.numpy()), rel=1e-5)

#----------------------------------------------------------------------------
