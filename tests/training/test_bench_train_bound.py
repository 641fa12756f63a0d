# bench/train.py --free-nonlinearity: its stand-in for filtered_lrelu keeps every output shape of the real
# op (so the bound times the same convolutions, D and optimiser) and passes gradients to x and b; the
# context manager counts its calls and puts the real op back; a network without the op is refused.

import click
import numpy as np
import pytest
import torch

from bench import train as bench_train
from torch_utils.ops import filtered_lrelu

# (input shape, up/down taps, up, down, padding): the demo generator's layers and a 2-D (stylegan3-r) one.
CASES = [
    ([2, 4, 26, 26], 12, 12, 2, 2, [9, 8, 9, 8]),
    ([2, 4, 26, 26], 24, 12, 4, 2, [6, 3, 6, 3]),
    ([2, 4, 74, 74], 12, 12, 2, 2, [1, 0, 1, 0]),
    ([2, 3, 16, 16], None, None, 1, 1, [0, 0, 0, 0]),
    ([1, 2, 20, 22], (6, 6), (6, 6), 2, 2, [5, 4, 3, 2]),
]

def _filter(taps):
    if taps is None:
        return None
    return torch.ones(taps) / float(np.prod(taps))

@pytest.mark.parametrize('shape, ku, kd, up, down, padding', CASES)
def test_free_nonlinearity_keeps_the_output_shape_and_the_gradient_path(shape, ku, kd, up, down, padding):
    x = torch.randn(shape, requires_grad=True)
    b = torch.randn(shape[1], requires_grad=True)
    fu, fd = _filter(ku), _filter(kd)
    real = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding)
    free = bench_train._free_filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding)
    assert free.shape == real.shape
    free.sum().backward()
    assert x.grad is not None and b.grad is not None and float(b.grad.abs().sum()) > 0

def test_the_context_manager_counts_its_calls_and_restores_the_real_op():
    real = filtered_lrelu.filtered_lrelu
    x = torch.randn([1, 2, 8, 8])
    with bench_train._free_nonlinearity() as calls:
        assert filtered_lrelu.filtered_lrelu is not real
        filtered_lrelu.filtered_lrelu(x)
        assert len(calls) == 1
    assert filtered_lrelu.filtered_lrelu is real
    with pytest.raises(RuntimeError):
        with bench_train._free_nonlinearity():
            raise RuntimeError('inside')
    assert filtered_lrelu.filtered_lrelu is real

def test_a_network_without_filtered_lrelu_is_a_usage_error():
    # stylegan2 never calls filtered_lrelu: the bound would silently time the real step.
    with pytest.raises(click.UsageError, match='never calls filtered_lrelu'):
        bench_train.bench('stylegan2', res=16, batch=2, steps=1, cbase=64, cmax=8, threads=1, free=True)
