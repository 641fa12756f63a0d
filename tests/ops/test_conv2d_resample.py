# conv2d_resample: every fast path equals the generic order of operations, which in turn equals an
# independent zero-insertion + conv2d oracle; double backward through it (R1 needs it in D).

import itertools

import pytest
import torch
import torch.nn.functional as F

from bench.zero_insertion import upfirdn2d_zero_insertion
from torch_utils.ops import conv2d_resample, upfirdn2d

CASES = list(itertools.product([1, 3], [1, 2], [1, 2], [1, 2], [True, False], [0, [1, 0, 2, 1]]))

@pytest.mark.parametrize('k,up,down,groups,flip_weight,padding', CASES)
def test_conv2d_resample_fast_paths_equal_generic(k, up, down, groups, flip_weight, padding):
    gen = torch.Generator().manual_seed(k * 100 + up * 10 + down)
    x = torch.randn([2, 4, 7, 6], generator=gen, dtype=torch.float64)
    w = torch.randn([6, 4 // groups, k, k], generator=gen, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    y = conv2d_resample.conv2d_resample(x, w, f, up, down, padding, groups, flip_weight)
    p = conv2d_resample._padding_with_resampling(f, up, down, padding)
    y_generic = conv2d_resample._conv2d_resample_generic(x, w, f, up, down, list(p), groups, flip_weight, False)
    assert y.shape == y_generic.shape
    assert (y - y_generic).abs().max().item() <= 1e-12

def test_conv2d_resample_generic_matches_zero_insertion_oracle():
    x = torch.randn([1, 2, 6, 5], dtype=torch.float64)
    w = torch.randn([3, 2, 3, 3], dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 2, 1])
    y = conv2d_resample.conv2d_resample(x, w, f, up=2, down=1, padding=1)
    # upsample2d padding for a 3-tap filter and up=2: [2, 0]; plus the caller's 1 on each side.
    u = upfirdn2d_zero_insertion(x, f, (2, 2), (1, 1), (3, 1, 3, 1), gain=4)
    assert torch.allclose(y, F.conv2d(u, w), rtol=0, atol=1e-12)
    y = conv2d_resample.conv2d_resample(x, w, f, up=1, down=2, padding=1)
    v = F.conv2d(F.pad(x, [2, 1, 2, 1]), w)  # downsample2d padding [1, 0] + 1.
    assert torch.allclose(y, upfirdn2d_zero_insertion(v, f, (1, 1), (2, 2)), rtol=0, atol=1e-12)

def test_conv2d_resample_double_backward_through_input_and_weight():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 2, 6, 6], dtype=torch.float64, requires_grad=True)
    w = torch.randn([2, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f, down=2, padding=1)
    assert torch.autograd.gradgradcheck(fn, [x, w], fast_mode=True)

@pytest.mark.parametrize('kwargs,name', [
    (dict(w=torch.randn([3, 2, 3])), 'w'),
    (dict(groups=3), 'groups'),
    (dict(up=0), 'up'),
    (dict(f=None, down=2), 'f'),
])
def test_conv2d_resample_bad_arguments(kwargs, name):
    args = dict(x=torch.randn([1, 4, 6, 6]), w=torch.randn([3, 4, 3, 3]), f=upfirdn2d.setup_filter([1, 1]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        conv2d_resample.conv2d_resample(**args)

#----------------------------------------------------------------------------
