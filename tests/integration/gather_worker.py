# The worker of test_metrics_multiprocess.test_all_gather_and_metric_gathers_across_two_processes, in its own
# small module so the spawned processes import only what they run (torch, numpy, metrics).

import types

import numpy as np
import torch

from metrics import metric_utils
from metrics import perceptual_path_length as ppl_lib
from torch_utils import distributed

#----------------------------------------------------------------------------

def worker(rank, init_file, queue):
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        x = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
        cat = distributed.all_gather(torch.from_numpy(x[:3] if rank == 0 else x[3:4]))   # 3 rows and 1 row.
        empty = distributed.all_gather(torch.zeros([2 if rank == 0 else 0, 3], dtype=torch.float64))
        opts = types.SimpleNamespace(num_gpus=2, rank=rank, device=torch.device('cpu'))
        stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=7)
        stats.append(x[rank::2]) # Items 0, 2, 4, 6 on rank 0; 1, 3, 5 on rank 1.
        merged = metric_utils._gather_stats(opts, stats) # pylint: disable=protected-access
        batches = {0: np.array([1.0, 2.0], np.float32), 4: np.array([5.0], np.float32)} if rank == 0 else {2: np.array([3.0, 4.0], np.float32)}
        ppl = ppl_lib._gather_in_sample_order(opts, batches) # pylint: disable=protected-access
        queue.put((rank, cat.numpy(), tuple(empty.shape), merged.get_all(), merged.get_mean_cov(), ppl))
    finally:
        torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------
