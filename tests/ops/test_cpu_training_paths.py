# The CPU training paths of bias_act and upfirdn2d (docs/ops.md, "CPU training of bias_act and
# upfirdn2d"): CPU calls that need a gradient run the kernel-parameterised Function with a CPU kernel.
# Their outputs and first and second derivatives equal native autograd through the reference, in fp64 to
# rounding and in fp32 within the stated tolerances; gradcheck / gradgradcheck pass; calls without a
# gradient, with a filter gradient or with impl='ref' do not take the training Function; outputs may be
# modified in place. The upfirdn2d tests run with the CPU plugin and without it (the banded passes).

import pytest
import torch

from tests.support.cpu_plugin import backend # pylint: disable=unused-import (a fixture)
from torch_utils.ops import bias_act, upfirdn2d

def _grads(y, inputs, g, create_graph=False):
    return torch.autograd.grad(y, inputs, g, create_graph=create_graph)

def _max_rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-30)).item()

def _spy_cpu_kernel(monkeypatch, module, entry):
    # Replace module.cpu_kernel with one that counts its calls (the op reads it at call time).
    calls = []
    inner = getattr(module.cpu_kernel, entry)
    spy = type('SpyKernel', (), {entry: staticmethod(lambda *a: calls.append(1) or inner(*a))})()
    monkeypatch.setattr(module, 'cpu_kernel', spy)
    return calls

#----------------------------------------------------------------------------
# bias_act

BIAS_ACT_CASES = [
    # act, alpha, gain, clamp, dim
    ('lrelu', 0.2, 2 ** 0.5, 256.0, 1),
    ('lrelu', 0.2, 2 ** 0.5, 0.7, 1),
    ('lrelu', 0.1, 1.0, None, 2),
    ('relu', None, None, 0.5, 1),
    ('linear', None, 1.7, 0.9, 1),
    ('linear', None, None, None, 0),
]

def _bias_act_pair(case, dtype, seed=0):
    act, alpha, gain, clamp, dim = case
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn([2, 5, 6, 7], dtype=dtype, generator=gen) * 1.5).requires_grad_(True)
    b = torch.randn([x.shape[dim]], dtype=dtype, generator=gen).requires_grad_(True)
    kw = dict(b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return x, b, bias_act.bias_act(x, impl='cuda', **kw), bias_act.bias_act(x, impl='ref', **kw)

@pytest.mark.parametrize('case', BIAS_ACT_CASES, ids=lambda c: f'{c[0]}-clamp{c[3]}-dim{c[4]}')
def test_bias_act_cpu_training_path_matches_reference_fp64(case):
    x, b, y, y_ref = _bias_act_pair(case, torch.float64)
    assert type(y.grad_fn).__name__ == 'BiasActFunctionBackward' # The CPU Function, not native autograd.
    assert torch.equal(y, y_ref)
    g = torch.randn_like(y)
    for got, want in zip(_grads(y, [x, b], g), _grads(y_ref, [x, b], g)):
        assert _max_rel(got, want) <= 1e-15

@pytest.mark.parametrize('case', BIAS_ACT_CASES[:4], ids=lambda c: f'{c[0]}-clamp{c[3]}')
def test_bias_act_cpu_training_path_fp32_and_double_backward(case):
    # fp32: the first derivative is (dy * alpha) * gain against dy * (alpha * gain): within 2 ulp.
    x, b, y, y_ref = _bias_act_pair(case, torch.float32, seed=1)
    assert torch.equal(y, y_ref)
    g = torch.randn_like(y)
    dx, = _grads(y, [x], g, create_graph=True)
    dx_ref, = _grads(y_ref, [x], g, create_graph=True)
    assert _max_rel(dx, dx_ref) <= 2.5e-7
    # Second order, as R1 needs it: the gradient of a function of dx with respect to the incoming g.
    g.requires_grad_(True)
    dx, = _grads(y, [x], g, create_graph=True)
    dx_ref, = _grads(y_ref, [x], g, create_graph=True)
    dg, = torch.autograd.grad(dx.square().sum(), [g])
    dg_ref, = torch.autograd.grad(dx_ref.square().sum(), [g])
    assert _max_rel(dg, dg_ref) <= 5e-7

def test_bias_act_cpu_training_path_gradcheck():
    x = (torch.randn([2, 3, 4, 5], dtype=torch.float64) * 2).requires_grad_(True)
    b = torch.randn([3], dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: bias_act.bias_act(x, b, act='lrelu', clamp=1.5)
    assert torch.autograd.gradcheck(fn, [x, b], fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, [x, b], fast_mode=True)

def test_bias_act_cpu_training_path_only_when_it_applies(monkeypatch):
    calls = _spy_cpu_kernel(monkeypatch, bias_act, 'bias_act')
    x = torch.randn([2, 3, 4], requires_grad=True)
    bias_act.bias_act(x, act='lrelu', impl='ref')
    bias_act.bias_act(x, act='tanh')            # Not piecewise linear.
    bias_act.bias_act(x, act='lrelu', gain=-1.0) # y no longer tells the sign of the input.
    with torch.no_grad():
        bias_act.bias_act(x, act='lrelu')
    assert not calls
    bias_act.bias_act(x, act='lrelu').sum().backward()
    assert len(calls) == 2 # Forward and first derivative.

@pytest.mark.parametrize('which', ['x', 'b'])
def test_bias_act_cpu_training_path_with_one_input_needing_a_gradient(which):
    x = torch.randn([2, 4, 3, 3], dtype=torch.float64, requires_grad=which == 'x')
    b = torch.randn([4], dtype=torch.float64, requires_grad=which == 'b')
    y = bias_act.bias_act(x, b, act='lrelu', clamp=1.0)
    y_ref = bias_act.bias_act(x, b, act='lrelu', clamp=1.0, impl='ref')
    assert type(y.grad_fn).__name__ == 'BiasActFunctionBackward'
    g = torch.randn_like(y)
    leaf = x if which == 'x' else b
    assert _max_rel(_grads(y, [leaf], g)[0], _grads(y_ref, [leaf], g)[0]) <= 1e-15

#----------------------------------------------------------------------------
# upfirdn2d

UPFIRDN_CASES = [
    # filter, up, down, padding: the discriminator's (2-D outer product, split), a 1-D one, a 2-D non-separable one.
    ('outer', 1, 1, [2, 2, 2, 2]),
    ('outer', 1, 2, [1, 1, 1, 1]),
    ('outer', 2, 1, [2, 1, 2, 1]),
    ('1d', 2, 2, [1, 2, 2, 1]),
    ('radial', 1, 2, [3, 2, 3, 2]),
]

def _filter(kind, dtype):
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=dtype)
    if kind == '1d':
        return upfirdn2d.setup_filter(taps, separable=True).to(dtype)
    if kind == 'outer':
        return upfirdn2d.setup_filter(taps).to(dtype) # 4 taps: stored 2-D, as NVIDIA's discriminator does.
    r = torch.linspace(-1.5, 1.5, 6, dtype=dtype)
    return torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2).sqrt()) # Radially symmetric: not an outer product.

@pytest.mark.parametrize('case', UPFIRDN_CASES, ids=lambda c: f'{c[0]}-up{c[1]}-down{c[2]}')
def test_upfirdn2d_cpu_training_path_matches_reference_fp64(case, backend):
    kind, up, down, padding = case
    f = _filter(kind, torch.float64)
    x = torch.randn([2, 3, 9, 11], dtype=torch.float64, requires_grad=True)
    y = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up * up)
    y_ref = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up * up, impl='ref')
    assert type(y.grad_fn).__name__ == 'Upfirdn2dFunctionBackward'
    assert _max_rel(y, y_ref) <= 1e-15
    g = torch.randn_like(y)
    dx, = _grads(y, [x], g)
    dx_ref, = _grads(y_ref, [x], g)
    assert _max_rel(dx, dx_ref) <= 1e-15
    assert torch.autograd.gradgradcheck(lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding), [x], fast_mode=True)

def test_upfirdn2d_cpu_training_path_fp32(backend):
    f = _filter('outer', torch.float32)
    x = torch.randn([4, 8, 34, 34], requires_grad=True)
    y = upfirdn2d.upfirdn2d(x, f, padding=2)
    y_ref = upfirdn2d.upfirdn2d(x, f, padding=2, impl='ref')
    g = torch.randn_like(y)
    assert _max_rel(y, y_ref) <= 3e-7
    assert _max_rel(_grads(y, [x], g)[0], _grads(y_ref, [x], g)[0]) <= 3e-7

def test_only_outer_product_filters_are_split():
    outer = upfirdn2d._separable_factors(_filter('outer', torch.float32))
    assert outer is not None and torch.equal(torch.outer(*outer), _filter('outer', torch.float32))
    assert upfirdn2d._separable_factors(_filter('radial', torch.float64)) is None
    near = _filter('outer', torch.float64).clone()
    near[1, 2] *= 1 + 1e-9 # A hair away from rank 1: not split.
    assert upfirdn2d._separable_factors(near) is None

def test_upfirdn2d_without_gradient_or_with_filter_gradient_skips_the_training_function(monkeypatch):
    calls = _spy_cpu_kernel(monkeypatch, upfirdn2d, 'upfirdn2d')
    x = torch.randn([1, 2, 8, 8], requires_grad=True)
    f = _filter('outer', torch.float32)
    upfirdn2d.upfirdn2d(x, f.clone().requires_grad_(True), padding=1) # f's gradient: native autograd.
    upfirdn2d.upfirdn2d(x.detach(), f, padding=1)
    with torch.no_grad():
        upfirdn2d.upfirdn2d(x, f, padding=1)
    upfirdn2d.upfirdn2d(x, f, padding=1, impl='ref')
    assert not calls
    upfirdn2d.upfirdn2d(x, f, padding=1).sum().backward()
    assert len(calls) == 2 # Forward and the adjoint.

def test_upfirdn2d_cpu_training_output_may_be_modified_in_place(backend):
    # StyleGAN2 adds noise in place to this output; the kernel's slices must not make that an error.
    x = torch.randn([1, 2, 9, 9], requires_grad=True)
    y = upfirdn2d.upfirdn2d(x, _filter('outer', torch.float32), padding=2)
    y.add_(1.0)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

#----------------------------------------------------------------------------
