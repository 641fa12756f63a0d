# bias_act: the reference against NumPy formulas for every activation, defaults, clamp, bias on any
# dimension, the kernel's derivative modes against autograd, and argument validation.

import numpy as np
import pytest
import torch

from tests.ops.oracles import numpy_activation
from torch_utils.ops import bias_act

ACTS = list(bias_act.activation_funcs)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', ACTS)
def test_bias_act_matches_numpy_with_default_alpha_and_gain(act):
    x = torch.randn([3, 4, 5], dtype=torch.float64) * 3
    b = torch.randn([4], dtype=torch.float64)
    spec = bias_act.activation_funcs[act]
    y = bias_act.bias_act(x, b, act=act, impl='ref')
    expected = numpy_activation(act, x.numpy() + b.numpy()[:, None], spec.def_alpha) * spec.def_gain
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)

def test_bias_act_default_gains_and_alphas():
    gains = {name: spec.def_gain for name, spec in bias_act.activation_funcs.items()}
    assert gains == {'linear': 1, 'relu': np.sqrt(2), 'lrelu': np.sqrt(2), 'tanh': 1, 'sigmoid': 1, 'elu': 1,
                     'selu': 1, 'softplus': 1, 'swish': np.sqrt(2)}
    assert bias_act.activation_funcs['lrelu'].def_alpha == 0.2
    assert [bias_act.activation_funcs[a].cuda_idx for a in ACTS] == list(range(1, 10))

@pytest.mark.parametrize('act', ['lrelu', 'tanh', 'swish'])
def test_bias_act_alpha_gain_clamp_and_bias_on_other_dims(act):
    x = torch.randn([2, 3, 4, 5], dtype=torch.float64) * 4
    for dim in range(4):
        b = torch.randn([x.shape[dim]], dtype=torch.float64)
        y = bias_act.bias_act(x, b, dim=dim, act=act, alpha=0.3, gain=2.5, clamp=1.7, impl='ref')
        shape = [1] * 4
        shape[dim] = -1
        s = x.numpy() + b.numpy().reshape(shape)
        expected = np.clip(numpy_activation(act, s, 0.3) * 2.5, -1.7, 1.7)
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
        assert y.abs().max().item() <= 1.7

def test_bias_act_without_bias_and_any_rank():
    x = torch.randn([7], dtype=torch.float64)
    np.testing.assert_allclose(bias_act.bias_act(x, act='relu', dim=0, impl='ref').numpy(), np.maximum(x.numpy(), 0) * np.sqrt(2))
    x2 = torch.randn([3, 5], dtype=torch.float64)
    b2 = torch.randn([5], dtype=torch.float64)
    np.testing.assert_allclose(bias_act.bias_act(x2, b2, act='linear', impl='ref').numpy(), x2.numpy() + b2.numpy())

@pytest.mark.parametrize('act', ACTS)
def test_bias_act_kernel_derivative_modes_match_autograd(act):
    # grad=1 is the first derivative, grad=2 the second (times the incoming gradient), both from the
    # reference tensors the table in docs/kernels.md names; compared with double autograd of the spec.
    spec = bias_act.activation_funcs[act]
    x = (torch.randn([2, 3, 4], dtype=torch.float64) * 2).requires_grad_(True)
    alpha, gain, clamp = 0.25, 1.3, 2.0
    y = bias_act.bias_act(x, act=act, alpha=alpha, gain=gain, clamp=clamp, impl='ref')
    g = torch.randn_like(y)
    dx, = torch.autograd.grad(y, x, g, create_graph=True)
    h = torch.randn_like(dx)
    d2 = torch.zeros_like(x) # Piecewise-linear activations: dx has no graph, the second derivative is 0.
    if dx.requires_grad:
        d2, = torch.autograd.grad(dx, x, h, allow_unused=True)
        d2 = torch.zeros_like(x) if d2 is None else d2
    empty = torch.empty([0], dtype=torch.float64)
    k = bias_act.ref_kernel.bias_act
    xd, yd = x.detach(), y.detach()
    dx_k = k(g, empty, xd, yd, empty, 1, 1, spec.cuda_idx, alpha, gain, clamp)
    d2_k = k(h, empty, xd, yd, g, 2, 1, spec.cuda_idx, alpha, gain, clamp)
    assert torch.allclose(dx_k, dx, rtol=1e-10, atol=1e-12)
    assert torch.allclose(d2_k, d2, rtol=1e-9, atol=1e-11)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs,name', [
    (dict(act='gelu'), 'act'),
    (dict(b=torch.zeros([5])), 'b'),
    (dict(b=torch.zeros([3], dtype=torch.int64)), 'b'),
    (dict(dim=4), 'dim'),
    (dict(clamp=-1.0), 'clamp'),
    (dict(impl='triton'), 'impl'),
])
def test_bias_act_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        bias_act.bias_act(torch.randn([2, 3, 4, 4]), **kwargs)

def test_bias_act_rejects_integer_x():
    with pytest.raises(ValueError, match='x'):
        bias_act.bias_act(torch.zeros([2, 3], dtype=torch.int64))

def test_bias_act_impl_cuda_on_cpu_equals_ref():
    x = torch.randn([2, 3, 4, 4])
    b = torch.randn([3])
    for act in ACTS:
        assert torch.equal(bias_act.bias_act(x, b, act=act, clamp=0.5, impl='cuda'), bias_act.bias_act(x, b, act=act, clamp=0.5, impl='ref'))

#----------------------------------------------------------------------------
