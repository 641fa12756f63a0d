# torch_utils.training_stats: moments, collectors, and aggregation across two gloo processes.

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from torch_utils import training_stats

#----------------------------------------------------------------------------

def test_collector_mean_std_num_match_numpy():
    values = np.array([1.0, 2.0, 4.0, 8.0])
    collector = training_stats.Collector(regex='Loss/.*')
    training_stats.report('Loss/a', torch.tensor(values[:2]))
    training_stats.report('Loss/a', values[2:].tolist())
    training_stats.report('Other/b', 5.0)
    collector.update()
    assert collector.names() == ['Loss/a']
    assert collector.num('Loss/a') == 4
    assert collector.mean('Loss/a') == pytest.approx(values.mean())
    assert collector.std('Loss/a') == pytest.approx(values.std())
    assert collector['Loss/a'] == pytest.approx(values.mean())

def test_collector_reports_only_new_values_after_update():
    collector = training_stats.Collector(keep_previous=False)
    training_stats.report('x', [1.0, 1.0])
    collector.update()
    training_stats.report('x', [3.0])
    collector.update()
    assert collector.num('x') == 1 and collector.mean('x') == 3.0
    collector.update()
    assert collector.num('x') == 0 and np.isnan(collector.mean('x'))

def test_as_dict_and_empty_report():
    collector = training_stats.Collector()
    training_stats.report('y', [])
    training_stats.report('z', 2.0)
    collector.update()
    d = collector.as_dict()
    assert 'y' not in d and d.z.num == 1 and d.z.mean == 2.0 and d.z.std == 0.0

#----------------------------------------------------------------------------

def _worker(rank, init_file, queue):
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
    collector = training_stats.Collector()
    training_stats.report('v', [float(rank + 1)] * (rank + 1)) # rank 0: [1]; rank 1: [2, 2].
    training_stats.report0('only0', 7.0)
    collector.update()
    queue.put((rank, collector.num('v'), collector.mean('v'), collector.num('only0')))
    torch.distributed.destroy_process_group()

def test_collector_aggregates_across_two_processes(tmp_path):
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(rank, str(tmp_path / 'init'), queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for _rank, num, mean, num0 in results:
        assert num == 3 and mean == pytest.approx(5.0 / 3.0) and num0 == 1

#----------------------------------------------------------------------------
