# torch_utils.misc: constants, shape contracts, sampler, parameter copying, module summary.

import io

import numpy as np
import pytest
import torch

from torch_utils import misc

#----------------------------------------------------------------------------

def test_constant_is_cached_and_broadcast():
    a = misc.constant([1, 2, 3], shape=[2, 3], dtype=torch.float32)
    b = misc.constant([1, 2, 3], shape=[2, 3], dtype=torch.float32)
    assert a is b
    assert a.shape == (2, 3) and torch.equal(a[1], torch.tensor([1., 2., 3.]))
    assert misc.constant([1, 2, 3], dtype=torch.float64) is not a

def test_assert_shape_accepts_wildcards_and_names_offender():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [2, None, 4])
    with pytest.raises(ValueError, match='dimension 1 of ws'):
        misc.assert_shape(x, [2, 5, 4], name='ws')
    with pytest.raises(AssertionError, match='number of dimensions'):
        misc.assert_shape(x, [2, 3])

#----------------------------------------------------------------------------

def _take(sampler, n):
    it = iter(sampler)
    return [int(next(it)) for _ in range(n)]

def test_infinite_sampler_is_seeded_and_covers_dataset():
    data = list(range(10))
    a = _take(misc.InfiniteSampler(data, seed=1), 10)
    b = _take(misc.InfiniteSampler(data, seed=1), 10)
    c = _take(misc.InfiniteSampler(data, seed=2), 10)
    assert a == b and a != c
    assert sorted(_take(misc.InfiniteSampler(data, shuffle=False), 10)) == data

def test_infinite_sampler_ranks_are_disjoint_and_resumable():
    data = list(range(12))
    r0 = _take(misc.InfiniteSampler(data, rank=0, num_replicas=2, seed=3), 6)
    r1 = _take(misc.InfiniteSampler(data, rank=1, num_replicas=2, seed=3), 6)
    assert set(r0).isdisjoint(r1) and sorted(r0 + r1) == data
    full = _take(misc.InfiniteSampler(data, seed=5), 30)
    resumed = _take(misc.InfiniteSampler(data, seed=5, start_index=17), 13)
    assert resumed == full[17:]

def test_infinite_sampler_rejects_empty_dataset():
    with pytest.raises(ValueError, match='empty'):
        misc.InfiniteSampler([])

#----------------------------------------------------------------------------

def test_copy_params_and_buffers_by_name():
    src = torch.nn.BatchNorm1d(4)
    dst = torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        src.weight.fill_(2)
        src.running_mean.fill_(3)
    misc.copy_params_and_buffers(src, dst, require_all=True)
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.running_mean, src.running_mean)
    assert dst.weight.requires_grad

def test_copy_params_and_buffers_missing_and_mismatched():
    with pytest.raises(KeyError, match='bias'):
        misc.copy_params_and_buffers(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2), require_all=True)
    misc.copy_params_and_buffers(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2)) # Allowed.
    with pytest.raises(ValueError, match="'weight' has shape"):
        misc.copy_params_and_buffers(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))

def test_print_module_summary_counts_parameters():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    out = io.StringIO()
    y = misc.print_module_summary(net, [torch.zeros(5, 3)], file=out)
    assert y.shape == (5, 2)
    total = [line for line in out.getvalue().splitlines() if line.startswith('Total')][0]
    assert total.split()[1] == str(3 * 4 + 4 + 4 * 2 + 2)

#----------------------------------------------------------------------------
