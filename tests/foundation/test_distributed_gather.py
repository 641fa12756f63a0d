# torch_utils.distributed.all_gather_objects: the one all-gather (metrics and trainers use it); one
# process gets [obj], two gloo processes each get both ranks' objects in rank order.

import os
import tempfile

import torch

from torch_utils import distributed

#----------------------------------------------------------------------------

def _gather_in_rank(rank, init_file, out_dir):
    torch.distributed.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=2)
    try:
        parts = distributed.all_gather_objects({'rank': rank, 'items': list(range(rank + 1))})
        torch.save(parts, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        torch.distributed.destroy_process_group()

def test_single_process_gathers_its_own_object():
    assert distributed.all_gather_objects(('a', 1)) == [('a', 1)]

def test_two_gloo_processes_gather_every_rank_in_order(tmp_path):
    with tempfile.TemporaryDirectory() as scratch:
        torch.multiprocessing.spawn(_gather_in_rank, args=(os.path.join(scratch, 'init'), str(tmp_path)), nprocs=2)
    expected = [{'rank': 0, 'items': [0]}, {'rank': 1, 'items': [0, 1]}]
    for rank in (0, 1):
        assert torch.load(tmp_path / f'rank{rank}.pt') == expected
