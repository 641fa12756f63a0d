# The kernel-parameterised autograd Functions, run with the reference kernels on CPU: forward equals the
# reference path, the hand-written backward equals autograd of the reference, and fp64 gradcheck /
# gradgradcheck (fast mode) pass. The same Function classes run the CUDA plugin on a GPU.

import pytest
import torch

from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

def _check_grads(fn, inputs):
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)

def _assert_backward_matches(y_fn, y_ref, inputs):
    g = torch.randn_like(y_ref)
    grads_fn = torch.autograd.grad(y_fn, inputs, g, retain_graph=True)
    grads_ref = torch.autograd.grad(y_ref, inputs, g, retain_graph=True)
    for a, b in zip(grads_fn, grads_ref):
        assert (a - b).abs().max().item() <= 1e-13 # Measured <= 1e-14.

#----------------------------------------------------------------------------

UPFIRDN_CASES = [
    # up, down, padding, filter shape
    ((2, 2), (1, 1), [2, 1, 2, 1], (4,)),
    ((1, 1), (2, 2), [1, 1, 1, 1], (4, 4)),
    ((3, 1), (1, 2), [1, 2, -1, 2], (3, 2)),
    ((2, 2), (2, 2), [-1, 3, 2, -1], (5,)),
]

@pytest.mark.parametrize('case', range(len(UPFIRDN_CASES)))
def test_upfirdn2d_function_with_ref_kernel(case):
    up, down, padding, fshape = UPFIRDN_CASES[case]
    f = torch.rand(fshape) + 0.1
    x = torch.randn([1, 2, 5, 6], dtype=torch.float64, requires_grad=True)
    fn = upfirdn2d._upfirdn2d_function(*up, *down, *padding, False, 1.3, upfirdn2d.ref_kernel)
    y = fn.apply(x, f)
    y_ref = upfirdn2d.upfirdn2d(x, f, up=list(up), down=list(down), padding=padding, gain=1.3, impl='ref')
    assert torch.equal(y, y_ref)
    _assert_backward_matches(y, y_ref, [x])
    _check_grads(lambda x: fn.apply(x, f), [x])

def test_upfirdn2d_ref_path_gradcheck():
    f = torch.rand([4]) + 0.1
    x = torch.randn([1, 2, 5, 5], dtype=torch.float64, requires_grad=True)
    _check_grads(lambda x: upfirdn2d.upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 1, 2], impl='ref'), [x])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', list(bias_act.activation_funcs))
def test_bias_act_function_with_ref_kernel(act):
    spec = bias_act.activation_funcs[act]
    clamp = 1.5 if act in ('lrelu', 'swish', 'tanh') else -1.0
    x = (torch.randn([2, 3, 4], dtype=torch.float64) * 2).requires_grad_(True)
    b = torch.randn([3], dtype=torch.float64, requires_grad=True)
    fn = bias_act._bias_act_function(dim=1, act=act, alpha=0.2, gain=1.3, clamp=clamp, kernel=bias_act.ref_kernel)
    y = fn.apply(x, b)
    y_ref = bias_act.bias_act(x, b, act=act, alpha=0.2, gain=1.3, clamp=None if clamp < 0 else clamp, impl='ref')
    assert torch.allclose(y, y_ref, rtol=0, atol=1e-15)
    _assert_backward_matches(y, y_ref, [x, b])
    _check_grads(lambda x, b: fn.apply(x, b), [x, b])
    assert spec.cuda_idx >= 1

def test_bias_act_ref_path_gradcheck():
    x = torch.randn([2, 3, 4], dtype=torch.float64, requires_grad=True)
    b = torch.randn([3], dtype=torch.float64, requires_grad=True)
    _check_grads(lambda x, b: bias_act.bias_act(x, b, act='swish', clamp=2.0, impl='ref'), [x, b])

#----------------------------------------------------------------------------

FLRELU_CASES = [
    # up, down, padding, fu shape, fd shape, clamp
    (2, 2, [3, 2, 3, 2], (4,), (4,), -1.0),
    (2, 2, [3, 2, 1, 2], (4,), (4,), 0.7),
    (1, 2, [1, 2, -1, 3], (3, 3), (4,), 0.5),
    (3, 1, [2, 1, 2, 3], (6,), (1, 1), -1.0),
    (2, 1, [0, 0, 0, 0], (4,), (2, 3), 0.3),
]

@pytest.mark.parametrize('case', range(len(FLRELU_CASES)))
def test_filtered_lrelu_function_with_ref_kernel(case):
    up, down, padding, fu_shape, fd_shape, clamp = FLRELU_CASES[case]
    gen = torch.Generator().manual_seed(case)
    fu = torch.rand(fu_shape, generator=gen) + 0.1
    fd = torch.rand(fd_shape, generator=gen) + 0.1
    x = torch.randn([1, 2, 5, 6], generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn([2], generator=gen, dtype=torch.float64, requires_grad=True)
    fn = filtered_lrelu._filtered_lrelu_function(up, down, *padding, 1.4, 0.2, clamp, False, filtered_lrelu.ref_kernel)
    y = fn.apply(x, fu, fd, b, None, 0, 0)
    y_ref = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up, down, padding, 1.4, 0.2, None if clamp < 0 else clamp, impl='ref')
    assert (y - y_ref).abs().max().item() <= 1e-13
    _assert_backward_matches(y, y_ref, [x, b])
    _check_grads(lambda x, b: fn.apply(x, fu, fd, b, None, 0, 0), [x, b])

def test_filtered_lrelu_function_generic_path_when_kernel_declines():
    # A kernel object whose fused entry point returns -1 makes the Function use the generic path.
    class Declining(filtered_lrelu.RefKernel):
        calls = []
        @staticmethod
        def filtered_lrelu(*args):
            Declining.calls.append(args[5:7])
            return torch.empty([0]), torch.empty([0], dtype=torch.uint8), -1
    fu, fd = torch.rand([4]) + 0.1, torch.rand([4]) + 0.1
    x = torch.randn([1, 2, 6, 6], dtype=torch.float64, requires_grad=True)
    fn = filtered_lrelu._filtered_lrelu_function(2, 2, 3, 2, 3, 2, 1.4, 0.2, 0.6, False, Declining())
    y = fn.apply(x, fu, fd, None, None, 0, 0)
    y_ref = filtered_lrelu.filtered_lrelu(x, fu, fd, None, 2, 2, [3, 2, 3, 2], 1.4, 0.2, 0.6, impl='ref')
    assert (y - y_ref).abs().max().item() <= 1e-13
    _assert_backward_matches(y, y_ref, [x])
    assert Declining.calls[:2] == [(2, 2), (2, 2)] # Forward, then backward with up/down swapped.

def test_filtered_lrelu_ref_path_gradcheck():
    fu, fd = torch.rand([4]) + 0.1, torch.rand([3, 3]) + 0.1
    x = torch.randn([1, 2, 5, 5], dtype=torch.float64, requires_grad=True)
    b = torch.randn([2], dtype=torch.float64, requires_grad=True)
    _check_grads(lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=3, clamp=0.8, impl='ref'), [x, b])

#----------------------------------------------------------------------------
