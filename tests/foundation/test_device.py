# torch_utils.device.resolve_device: the one device rule of every tool.

import pytest
import torch

from torch_utils.device import DeviceError, resolve_device

#----------------------------------------------------------------------------

def test_auto_and_cpu():
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device(torch.device('cpu')) == torch.device('cpu')
    want = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto').type == want

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU; the no-GPU error cannot occur')
def test_cuda_without_gpu_names_the_option():
    with pytest.raises(DeviceError, match=r'--gpu-device=cuda: no CUDA GPU'):
        resolve_device('cuda', option='--gpu-device')
    with pytest.raises(DeviceError, match=r'--device=cuda:1'):
        resolve_device('cuda:1')

def test_unknown_name():
    with pytest.raises(DeviceError, match=r'--device=tpu: expected auto, cpu, cuda or cuda:N'):
        resolve_device('tpu')

#----------------------------------------------------------------------------
