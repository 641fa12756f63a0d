# Device resolution, one rule for every tool: 'auto' picks the local rank's CUDA GPU when there is one,
# else the CPU; an explicit 'cuda' on a machine without a GPU is an error that names the option.

import torch

from torch_utils import distributed

#----------------------------------------------------------------------------

class DeviceError(ValueError):
    """A device option that cannot be honoured on this machine; the message names the option."""

#----------------------------------------------------------------------------

def resolve_device(name='auto', option='--device'):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | torch.device -> torch.device.

    Under torchrun or `--gpus=N`, plain 'cuda' and 'auto' mean this process's GPU (local rank modulo the
    number of visible GPUs), so every rank gets its own.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text == 'auto':
        text = 'cuda' if torch.cuda.is_available() else 'cpu'
    if text == 'cpu':
        return torch.device('cpu')
    if text == 'cuda' or text.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise DeviceError(f'{option}={name}: no CUDA GPU is available on this machine; use {option}=cpu or {option}=auto')
        if text == 'cuda':
            return torch.device('cuda', distributed.get_local_rank() % torch.cuda.device_count())
        index = text.partition(':')[2]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise DeviceError(f'{option}={name}: this machine has {torch.cuda.device_count()} CUDA GPU(s) (cuda:0..)')
        return torch.device('cuda', int(index))
    raise DeviceError(f'{option}={name}: expected auto, cpu, cuda or cuda:N')

#----------------------------------------------------------------------------
