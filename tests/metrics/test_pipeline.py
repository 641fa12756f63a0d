# calc_metric end to end with the fake detector: registry, result schema, seeding, cache, jsonl, bad input.

import json
import os
import shutil

import numpy as np
import pytest
import torch

from metrics import frechet_inception_distance as fid_lib
from metrics import metric_main
from metrics import metric_utils
from tests.metrics import helpers
from tests.support.fake_detector import FakeDetector

#----------------------------------------------------------------------------

@pytest.fixture
def reals(tmp_path):
    return helpers.write_folder(tmp_path / 'reals', 24, seed=1)

def _run(metric, reals, det=None, **kwargs):
    det = det or FakeDetector()
    kwargs.setdefault('G', helpers.TinyGenerator())
    return metric_main.calc_metric(metric, dataset_kwargs=helpers.folder_kwargs(reals),
        detectors={'inception': det, 'vgg16': det}, **kwargs)

#----------------------------------------------------------------------------

def test_registry_names():
    names = metric_main.list_valid_metrics()
    for name in ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'is50k', 'ppl2_wend', 'eqt50k_int', 'eqt50k_frac',
                 'eqr50k', 'fid50k', 'kid50k', 'pr50k3', 'fid10k_full', 'kid10k_full', 'fid2k_full', 'ssim', 'msssim',
                 'lpips', 'spectrum', 'memorization']:
        assert name in names and metric_main.is_valid_metric(name)
    for name in ['fid1k_full', 'kid3k_full', 'pr2k5_full', 'eqt2k_frac', 'spectrum2k']:
        assert metric_main.is_valid_metric(name)
    for name in ['fid100_full', 'kid250_full', 'eqt32_int', 'eqr64', 'is500', 'spectrum100', 'memorization100']:
        assert metric_main.is_valid_metric(name) # Exact counts, as fundus.demo names its metrics.
    for name in ['fid0k_full', 'fid0_full', 'fid50k_ful', 'fidk_full', 'fid50kk_full', 'nonsense', '', None]:
        assert not metric_main.is_valid_metric(name)
    with pytest.raises(metric_utils.MetricError, match='unknown metric'):
        metric_main.calc_metric('fid_bogus')

@pytest.mark.parametrize('name,family,count', [
    ('fid2k_full', '_fid', 2000), ('fid100_full', '_fid', 100), ('kid250_full', '_kid', 250), ('kid3k', '_kid', 3000),
    ('eqt32_int', '_eq', 32), ('eqr1k', '_eq', 1000),
])
def test_family_names_set_the_sample_count(monkeypatch, name, family, count):
    seen = []
    monkeypatch.setattr(metric_main, family, lambda opts, metric, *args, **kwargs: seen.append((metric, args, kwargs)) or {})
    monkeypatch.setattr(metric_main, '_full', lambda opts: opts)
    monkeypatch.setattr(metric_main, '_legacy', lambda opts: opts)
    metric_main._resolve(name)(None) # pylint: disable=protected-access
    (metric, args, kwargs), = seen
    assert metric == name and count == (args[0] if args else kwargs['num_gen'])

def test_fid_schema_and_value_matches_direct_computation(reals):
    det = FakeDetector()
    G = helpers.TinyGenerator()
    result = _run('fid1k_full', reals, det=det, G=G, seed=5)
    assert list(result.keys()) == ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus']
    assert list(result.results.keys()) == ['fid1k_full'] and result.metric == 'fid1k_full'

    # Recompute by hand: 24 reals, 1000 generated images with latents default_rng([5, i]).
    from metrics.image_folder import ImageFolder
    ds = ImageFolder(reals)
    real_feats = det(torch.from_numpy(np.stack([ds[i][0] for i in range(len(ds))]))).numpy()
    z = torch.from_numpy(np.stack([np.random.default_rng([5, i]).standard_normal(8).astype(np.float32) for i in range(1000)]))
    # Same batch shapes as the pipeline (G: 4, detector: 64): a BLAS may round a row differently in another batch size.
    img = torch.cat([(G(z[lo:lo + 4], None) * 127.5 + 128).clamp(0, 255).to(torch.uint8) for lo in range(0, 1000, 4)])
    gen_feats = np.concatenate([det(img[lo:lo + 64]).numpy() for lo in range(0, 1000, 64)])
    # Same fp32 features, so only the order of the fp64 sums differs (~1e-16 in the covariances). S_r has rank 23 < D = 64,
    # so S_g S_r has k = 41 zero eigenvalues; rounding moves each by up to delta ~ D*eps*|S_g||S_r| and the matrix square
    # root turns that into up to sqrt(delta) in the trace: |dFID| <= 2*k*sqrt(delta) = 1.3e-5 here (measured: up to 2e-8
    # over permuted summation orders). Dividing a covariance by N-1 moves FID by 0.2, dropping one image by 1.3e-3.
    s_gen, s_real = np.cov(gen_feats.T, bias=True), np.cov(real_feats.T, bias=True)
    k = len(s_real) - np.linalg.matrix_rank(s_real)
    bound = 2 * k * np.sqrt(len(s_real) * np.finfo(np.float64).eps * np.linalg.norm(s_gen, 2) * np.linalg.norm(s_real, 2))
    assert result.results.fid1k_full == pytest.approx(fid_lib.fid_from_features(gen_feats, real_feats), rel=0, abs=bound)

def test_seed_reproducible_and_batch_independent(reals):
    a = _run('kid1k_full', reals, seed=3).results.kid1k_full
    b = _run('kid1k_full', reals, seed=3, batch_size=7).results.kid1k_full
    c = _run('kid1k_full', reals, seed=4).results.kid1k_full
    # fp32 GEMM rows may round differently at another batch size: 1-ulp noise on all features moves KID <= 2.6e-6 rel; a seed 37%.
    assert a == pytest.approx(b, rel=3e-5, abs=0) and a != c

def test_cache_hit_skips_detector(reals):
    first = FakeDetector()
    r1 = _run('fid1k_full', reals, det=first)
    assert first.num_images == 24 + 1000
    second = FakeDetector()
    r2 = _run('fid1k_full', reals, det=second)
    assert second.num_images == 1000 # Generated images only: real statistics came from the cache.
    assert r1.results.fid1k_full == r2.results.fid1k_full
    cache_files = os.listdir(os.path.join(os.environ['DNNLIB_CACHE_DIR'], 'gan-metrics'))
    assert any(f.startswith('reals-inception-') and f.endswith('.npz') for f in cache_files)

def test_cache_invalidated_when_content_changes(reals, tmp_path):
    _run('fid1k_full', reals)
    # Rebuild the dataset at the same path with different pixels but the same file names and count.
    shutil.rmtree(reals)
    helpers.write_folder(reals, 24, seed=99)
    det = FakeDetector()
    _run('fid1k_full', reals, det=det)
    assert det.num_images == 24 + 1000

def test_cache_off(reals):
    _run('fid1k_full', reals)
    det = FakeDetector()
    _run('fid1k_full', reals, det=det, cache=False)
    assert det.num_images == 24 + 1000

def test_images_folder_against_itself_gives_zero(reals):
    result = _run('fid50k_full', reals, G=None, gen_dataset_kwargs=helpers.folder_kwargs(reals))
    # 24 images each (the folder caps num_gen): rank 23 of 64, sqrtm error <= 2*41*sqrt(64*eps)*|S| = 1.5e-5 (measured 4e-7).
    assert abs(result.results.fid50k_full) < 1.5e-5
    pr = _run('pr50k3_full', reals, G=None, gen_dataset_kwargs=helpers.folder_kwargs(reals))
    assert pr.results == {'pr50k3_full_precision': 1.0, 'pr50k3_full_recall': 1.0}

def test_conditional_generator_uses_labels(tmp_path):
    # A dataset with labels: ImageFolder has none, so give the generator c_dim and expect a clear error.
    reals = helpers.write_folder(tmp_path / 'r', 6)
    with pytest.raises(metric_utils.MetricError, match='label'):
        _run('fid1k_full', reals, G=helpers.TinyGenerator(c_dim=3))

def test_bootstrap_keys(reals):
    result = _run('fid1k_full', reals, bootstrap=5)
    keys = list(result.results.keys())
    assert keys == ['fid1k_full', 'fid1k_full_boot_mean', 'fid1k_full_boot_p2.5', 'fid1k_full_boot_p97.5', 'fid1k_full_boot_n']
    r = result.results
    assert r['fid1k_full_boot_p2.5'] <= r['fid1k_full_boot_mean'] <= r['fid1k_full_boot_p97.5'] and r['fid1k_full_boot_n'] == 5

#----------------------------------------------------------------------------

def test_report_metric_jsonl(tmp_path):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    result = dict(results=dict(fid50k_full=4.25), metric='fid50k_full', total_time=75.5, total_time_str='1m 16s', num_gpus=1)
    line = metric_main.report_metric(result, run_dir=str(run_dir), snapshot_pkl=str(run_dir / 'network-snapshot-000100.pkl'))
    metric_main.report_metric(result, run_dir=str(run_dir), snapshot_pkl=str(run_dir / 'network-snapshot-000200.pkl'))
    lines = (run_dir / 'metric-fid50k_full.jsonl').read_text().splitlines()
    assert len(lines) == 2 and lines[0] == line
    entry = json.loads(lines[0])
    assert list(entry.keys()) == ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp']
    assert entry['snapshot_pkl'] == 'network-snapshot-000100.pkl' and entry['results'] == {'fid50k_full': 4.25}
    assert line.startswith('{"results": {"fid50k_full": 4.25}, "metric": "fid50k_full", "total_time": 75.5, "total_time_str": "1m 16s", "num_gpus": 1, "snapshot_pkl": ')

#----------------------------------------------------------------------------
# Bad inputs.

def test_empty_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(metric_utils.MetricError, match='contains no images'):
        _run('fid1k_full', str(tmp_path / 'empty'))

def test_mismatched_resolutions(tmp_path):
    path = helpers.write_folder(tmp_path / 'mixed', 3, resolution=16)
    helpers.write_folder(tmp_path / 'other', 1, resolution=32)
    shutil.copy(tmp_path / 'other' / 'img00000.png', tmp_path / 'mixed' / 'img00009.png')
    with pytest.raises(metric_utils.MetricError, match=r'img00009.png is 32x32, but img00000.png is 16x16'):
        _run('fid1k_full', path)

def test_grayscale_images_repeat_to_rgb(tmp_path):
    grey = helpers.write_folder(tmp_path / 'grey', 5, mode='L')
    from metrics.image_folder import ImageFolder
    img, _ = ImageFolder(grey)[0]
    assert img.shape == (3, 16, 16) and (img[0] == img[1]).all() and (img[1] == img[2]).all()
    result = _run('fid1k_full', grey)
    assert np.isfinite(result.results.fid1k_full)

#----------------------------------------------------------------------------
