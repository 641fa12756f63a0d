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

def all_gather(tensor):
    """The concatenation over ranks, in rank order, of every rank's `tensor` [n_r, ...] along dim 0.

    n_r may differ between ranks; the other dimensions, dtype and device type must agree (CUDA tensors for
    NCCL, CPU tensors for gloo). A single process gets its own tensor back. Every rank must call it.
    """
    if tensor.ndim == 0:
        raise ValueError('all_gather needs a tensor with a leading dimension, got a 0-d tensor')
    if not is_initialized() or get_world_size() == 1:
        return tensor
    world = get_world_size()
    size = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    torch.distributed.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    padded = tensor.new_zeros([max(sizes), *tensor.shape[1:]]) # all_gather needs one shape on every rank.
    padded[:tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])

def print0(*args, **kwargs):
    if is_main():
        print(*args, **kwargs)

def shutdown():
    if is_initialized():
        torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------
