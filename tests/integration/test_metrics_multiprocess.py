# Metrics over several processes (calc_metric(num_gpus=n, rank=r) inside a torch.distributed group, as
# the training loop runs them) equal the single-process values: feature vectors are gathered back into
# item order, and EQ/PPL draw their per-batch randomness from (seed, batch index), not from a stream that
# depends on how batches are split across ranks.

import os
import tempfile

import numpy as np
import pytest
import torch

from metrics import equivariance
from metrics import metric_main
from metrics import metric_utils
from torch_utils import distributed
from tests.metrics import helpers as metric_helpers
from tests.integration import gather_worker
from tests.support import tiny_configs as tc
from tests.support.fake_detector import FakeDetector

METRICS = ('fid1k_full', 'kid1k_full', 'eqt1k_int')
EQ_SAMPLES = 16

#----------------------------------------------------------------------------

def test_merged_rank_stats_restore_item_order_and_moments():
    x = np.random.default_rng(0).standard_normal([11, 5]).astype(np.float32)
    single = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True)
    single.append(x)
    parts = []
    for rank in range(3):
        part = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True)
        part.append(x[rank::3])
        parts.append(part)
    merged = metric_utils.merge_rank_stats(parts)
    assert merged.num_items == 11 and np.array_equal(merged.get_all(), x)
    for a, b in zip(merged.get_mean_cov(), single.get_mean_cov()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)

#----------------------------------------------------------------------------
# The one all-gather (torch_utils.distributed.all_gather) under the metrics' gathers, with uneven ranks.

def test_all_gather_and_metric_gathers_across_two_processes(tmp_path):
    ctx = torch.multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=gather_worker.worker, args=(rank, str(tmp_path / 'init'), queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = sorted((queue.get(timeout=120) for _ in procs), key=lambda r: r[0])
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    x = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
    single = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True)
    single.append(x)
    for _rank, cat, empty_shape, features, (mu, cov), ppl in results:
        np.testing.assert_array_equal(cat, x[:4])            # Rank order: rank 0's three rows, then rank 1's one.
        assert empty_shape == (2, 3)
        np.testing.assert_array_equal(features, x)           # Item order restored.
        np.testing.assert_allclose(mu, single.get_mean_cov()[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(cov, single.get_mean_cov()[1], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(ppl, np.array([1, 2, 3, 4, 5], np.float32)) # Sample order across ranks.

def test_all_gather_single_process_and_bad_input():
    t = torch.arange(4.0)
    assert distributed.all_gather(t) is t
    with pytest.raises(ValueError, match='leading dimension'):
        distributed.all_gather(torch.tensor(1.0))

#----------------------------------------------------------------------------

def _compute(folder, num_gpus=1, rank=0):
    compute = equivariance.compute_equivariance_metric
    equivariance.compute_equivariance_metric = lambda opts, num_samples, **kw: compute(opts, num_samples=EQ_SAMPLES, **kw)
    try:
        torch.manual_seed(0)
        sg3 = tc.build(tc.sg3_generator_kwargs()).eval().requires_grad_(False)
        results = {}
        for name in METRICS:
            G = sg3 if name.startswith('eq') else metric_helpers.TinyGenerator(z_dim=8)
            result = metric_main.calc_metric(name, G=G, dataset_kwargs=metric_helpers.folder_kwargs(folder), num_gpus=num_gpus, rank=rank,
                                             detectors={'inception': FakeDetector()}, cache=False, seed=3)
            results[name] = result.results[name]
        return results
    finally:
        equivariance.compute_equivariance_metric = compute

def _worker(rank, folder, init_file, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        results = _compute(folder, num_gpus=2, rank=rank)
        np.save(os.path.join(out_dir, f'rank{rank}.npy'), np.array([results[m] for m in METRICS]))
    finally:
        dist.destroy_process_group()

@pytest.mark.slow # Two spawned processes importing torch: about 30 s on a busy 2-core machine.
def test_two_gloo_processes_give_the_single_process_values(tmp_path):
    folder = metric_helpers.write_folder(tmp_path / 'reals', 9)
    with tempfile.TemporaryDirectory() as temp:
        torch.multiprocessing.spawn(_worker, args=(folder, os.path.join(temp, 'init'), str(tmp_path)), nprocs=2)
    single = _compute(folder)
    rank0 = np.load(tmp_path / 'rank0.npy')
    for name, value in zip(METRICS, rank0):
        # Ranks feed the detector other batch shapes: fp32 features may differ by ulps (KID <= 2.6e-6 rel per ulp), and FID of
        # 9 reals in 64-d (k = 56 zero eigenvalues) by up to 2*k*sqrt(64*eps*|Sg||Sr|) ~ 2e-6 rel. Measured: 4e-10, 0, 0.
        assert value == pytest.approx(single[name], rel=3e-5), name
    rank1 = dict(zip(METRICS, np.load(tmp_path / 'rank1.npy')))
    assert np.isnan(rank1['fid1k_full']) and np.isnan(rank1['kid1k_full']) # Rank 0 reports, as upstream.

#----------------------------------------------------------------------------
