# Rank and world helpers over torch.distributed. One process per GPU (NCCL) or per CPU worker (gloo).
# Launch either with `train.py --gpus=N` (spawns N local processes) or with `torchrun` (env:// init,
# detected from the RANK / WORLD_SIZE / MASTER_ADDR variables torchrun sets).

import os

import torch

#----------------------------------------------------------------------------

def launched_by_torchrun():
    return all(k in os.environ for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'))

def default_backend(device):
    return 'nccl' if torch.device(device).type == 'cuda' else 'gloo'

def init(device='cpu', rank=None, world_size=None, init_method=None, backend=None):
    """Initialise the default process group; a no-op for a single process.

    Args:
        device:      This process's device; picks the backend (NCCL for CUDA, gloo otherwise).
        rank:        This process's rank; default from $RANK (torchrun) or 0.
        world_size:  Number of processes; default from $WORLD_SIZE or 1.
        init_method: e.g. 'file:///tmp/x' or 'tcp://host:port'; default 'env://' under torchrun.
        backend:     Override the backend choice.
    """
    rank = int(os.environ.get('RANK', 0)) if rank is None else rank
    world_size = int(os.environ.get('WORLD_SIZE', 1)) if world_size is None else world_size
    if world_size <= 1 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if not torch.distributed.is_available():
        raise RuntimeError('torch.distributed is not available in this PyTorch build')
    if init_method is None:
        if not launched_by_torchrun():
            raise RuntimeError('distributed.init: world_size > 1 needs init_method or the torchrun environment variables')
        init_method = 'env://'
    backend = backend or default_backend(device)
    if backend == 'nccl':
        torch.cuda.set_device(torch.device(device))
    torch.distributed.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world_size)

def is_initialized():
    return torch.distributed.is_available() and torch.distributed.is_initialized()

def get_rank():
    return torch.distributed.get_rank() if is_initialized() else 0

def get_world_size():
    return torch.distributed.get_world_size() if is_initialized() else 1

def get_local_rank():
    return int(os.environ.get('LOCAL_RANK', get_rank()))

def is_main():
    return get_rank() == 0

def barrier():
    if is_initialized():
        torch.distributed.barrier()

def all_reduce_mean_(tensor):
    """In-place mean over ranks; returns the tensor."""
    if is_initialized() and get_world_size() > 1:
        torch.distributed.all_reduce(tensor)
        tensor.div_(get_world_size())
    return tensor

def all_gather_objects(obj):
    """[obj of rank 0, obj of rank 1, ...]: every rank's picklable object, on every rank ([obj] alone)."""
    if not is_initialized() or get_world_size() <= 1:
        return [obj]
    parts = [None] * get_world_size()
    torch.distributed.all_gather_object(parts, obj)
    return parts

def print0(*args, **kwargs):
    if is_main():
        print(*args, **kwargs)

def shutdown():
    if is_initialized():
        torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------
