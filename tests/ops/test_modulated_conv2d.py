# The modulated convolution op (docs/ops.md, "Modulated convolution"): the recomputing autograd Function
# that CPU calls needing a gradient take must give the reference's forward bit for bit, gradients that
# pass gradcheck and agree with native autograd through the reference, a working double backward, and
# keep only x, w, s and the input gain for its backward pass.

import pytest
import torch

from tests.support.autograd import saved_bytes
from torch_utils.ops import modulated_conv2d as mc

#----------------------------------------------------------------------------

GAIN_SHAPES = [None, [], [3], [2, 3]] # None = no input gain; [I] and [N, I] for N = 2, I = 3.

def _inputs(gain_shape, dtype=torch.float64, N=2, I=3, O=4, k=3, hw=(5, 6), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn([N, I, *hw], generator=gen, dtype=dtype).requires_grad_(True)
    w = torch.randn([O, I, k, k], generator=gen, dtype=dtype).requires_grad_(True)
    s = (torch.randn([N, I], generator=gen, dtype=dtype) * 2).requires_grad_(True)
    if gain_shape is None:
        return x, w, s, None
    g = (torch.rand(gain_shape, generator=gen, dtype=dtype) + 0.5).requires_grad_(True)
    return x, w, s, g

def _op(demodulate, padding, impl='cuda'):
    # f(x, w, s[, input_gain]) for gradcheck.
    def f(x, w, s, g=None):
        return mc.modulated_conv2d(x, w, s, demodulate=demodulate, padding=padding, input_gain=g, impl=impl)
    return f

def _takes_function(y):
    # Whether y came out of the recomputing Function (the grad_fn right after the unfolding view).
    return any(fn is not None and type(fn).__name__ == 'ModulatedConv2dFunctionBackward'
               for fn, _ in y.grad_fn.next_functions)

def _present(*tensors):
    return tuple(t for t in tensors if t is not None)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dx_path', ['grouped', 'per_sample'])
@pytest.mark.parametrize('gain_shape', GAIN_SHAPES)
@pytest.mark.parametrize('demodulate', [True, False])
def test_gradcheck_fp64(demodulate, gain_shape, dx_path, monkeypatch):
    # Both input-gradient paths: small inputs take the grouped call, so a zero limit forces the loop.
    if dx_path == 'per_sample':
        monkeypatch.setattr(mc, '_GROUPED_DX_BYTES', 0)
    inputs = _present(*_inputs(gain_shape))
    f = _op(demodulate, padding=[2, 1])
    assert _takes_function(f(*inputs))
    assert torch.autograd.gradcheck(f, inputs)

@pytest.mark.parametrize('gain_shape', GAIN_SHAPES)
@pytest.mark.parametrize('demodulate', [True, False])
def test_gradgradcheck_fp64(demodulate, gain_shape):
    # The backward is written in differentiable ops: second derivatives through it are exact.
    inputs = _present(*_inputs(gain_shape, hw=(4, 4)))
    assert torch.autograd.gradgradcheck(_op(demodulate, padding=1), inputs)

def test_gradcheck_1x1_kernel_and_partial_requests():
    # ToRGB's shape (1x1, no demodulation, no padding), and inputs that do not need a gradient.
    x, w, s, g = _inputs([3], k=1)
    x.requires_grad_(False)
    g.requires_grad_(False)
    f = lambda w, s: mc.modulated_conv2d(x, w, s, demodulate=False, input_gain=g)
    assert _takes_function(f(w, s))
    assert torch.autograd.gradcheck(f, (w, s))
    assert torch.autograd.gradgradcheck(f, (w, s))

def test_gradcheck_input_only():
    # Only x needs a gradient (frozen weights and styles): no kernel graph is rebuilt.
    x, w, s, g = (t.detach() for t in _inputs([2, 3]))
    f = lambda x: mc.modulated_conv2d(x, w, s, padding=1, input_gain=g)
    x.requires_grad_(True)
    assert _takes_function(f(x))
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))

#----------------------------------------------------------------------------

LAYER_GAINS = {'scalar': [], 'channel': [64], 'sample': [4, 64]} # input_gain shapes for _layer().

def _layer(gain='scalar', seed=1):
    # A realistic small StyleGAN3-T layer in fp32: batch 4, 64 -> 64 channels, 3x3, 20x20, full padding.
    return _inputs(LAYER_GAINS[gain], dtype=torch.float32, N=4, I=64, O=64, hw=(20, 20), seed=seed)

@pytest.mark.parametrize('demodulate', [True, False])
def test_forward_is_bit_identical_to_the_reference(demodulate):
    x, w, s, g = _layer()
    y = mc.modulated_conv2d(x, w, s, demodulate=demodulate, padding=2, input_gain=g)
    y_ref = mc.modulated_conv2d(x, w, s, demodulate=demodulate, padding=2, input_gain=g, impl='ref')
    assert _takes_function(y) and not _takes_function(y_ref)
    assert torch.equal(y, y_ref)

def _sum_scale(x, w, s, g, demodulate, dy):
    # The scalar gain's gradient is a sum over samples and channels that can cancel to far below its
    # terms; its rounding error scales with the sum of the terms' magnitudes, from the fp64 gradient
    # of the same gain given per sample and channel.
    g_ni = g.detach().double().expand(s.shape).clone().requires_grad_(True)
    terms = torch.autograd.grad(_op(demodulate, 2, impl='ref')(x.double(), w.double(), s.double(), g_ni), [g_ni], dy.double())[0]
    return terms.abs().sum().item()

@pytest.mark.parametrize('seed', [1, 2, 3, 4])
@pytest.mark.parametrize('gain', list(LAYER_GAINS))
@pytest.mark.parametrize('demodulate', [True, False])
def test_fp32_gradients_are_as_close_to_fp64_as_the_reference(demodulate, gain, seed):
    # The kernels' gradient (tap GEMMs) and its closed-form chain sum in another order than native
    # autograd, so both fp32 paths are compared with the reference evaluated in fp64.
    x, w, s, g = _layer(gain, seed=seed)
    inputs = _present(x, w, s, g)
    inputs64 = [t.detach().double().requires_grad_(True) for t in inputs]
    dy = torch.randn([4, 64, 22, 22], generator=torch.Generator().manual_seed(seed + 2))
    grads = torch.autograd.grad(_op(demodulate, 2)(*inputs), inputs, dy)
    refs = torch.autograd.grad(_op(demodulate, 2, impl='ref')(*inputs), inputs, dy)
    truths = torch.autograd.grad(_op(demodulate, 2, impl='ref')(*inputs64), inputs64, dy.double())
    for got, ref, truth in zip(grads, refs, truths):
        scale = _sum_scale(x, w, s, g, demodulate, dy) if truth.ndim == 0 else truth.abs().max().item()
        err, ref_err = ((t.double() - truth).abs().max().item() / scale for t in (got, ref))
        # Measured (seeds 1-4): ours at most 5.9e-7 of the scale, the reference at most 7.7e-7.
        assert err <= 1e-6, (err, ref_err)

def test_tap_kernel_grads_equal_the_grouped_weight_gradient():
    # The tap GEMMs against aten's grouped weight gradient in fp64, at shapes whose rows split into
    # several chunks, with a 1x1 kernel and without padding.
    gen = torch.Generator().manual_seed(6)
    for (N, I, O, H, W, k, pad) in [(2, 3, 4, 70, 75, 3, (2, 1)), (3, 5, 2, 9, 8, 1, (0, 0)), (1, 2, 3, 6, 7, 3, (0, 0))]:
        x = torch.randn([N, I, H, W], generator=gen, dtype=torch.float64)
        kernels = torch.randn([N * O, I, k, k], generator=gen, dtype=torch.float64)
        dy = torch.randn([1, N * O, H + 2 * pad[0] - k + 1, W + 2 * pad[1] - k + 1], generator=gen, dtype=torch.float64)
        got = mc._tap_kernel_grads(dy, x, (k, k), pad)
        ref = mc._grouped_conv_grads(dy, x, kernels, pad, False, True)[1]
        assert got.shape == ref.shape
        assert (got - ref).abs().max().item() <= 1e-12 * ref.abs().max().item()

def test_per_sample_input_grad_equals_the_grouped_call():
    # The first-order backward takes the input gradient one sample (group) at a time: the same
    # convolutions as the grouped call, so in fp64 the results agree to rounding.
    gen = torch.Generator().manual_seed(4)
    x = torch.randn([3, 5, 7, 6], generator=gen, dtype=torch.float64)
    kernels = torch.randn([3 * 4, 5, 3, 3], generator=gen, dtype=torch.float64)
    dy = torch.randn([1, 3 * 4, 9, 10], generator=gen, dtype=torch.float64) # [1, N*O, H+4-2, W+6-2]
    got = mc._per_sample_input_grad(dy, x, kernels, (2, 3))
    ref = mc._grouped_conv_grads(dy, x, kernels, (2, 3), True, False)[0]
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() <= 1e-12 * ref.abs().max().item()

def test_input_grad_takes_the_grouped_call_up_to_the_limit(monkeypatch):
    # x of exactly _GROUPED_DX_BYTES goes grouped; one more row goes one sample at a time.
    taken = []
    for name in ('_grouped_conv_grads', '_per_sample_input_grad'):
        real = getattr(mc, name)
        monkeypatch.setattr(mc, name, lambda *a, _real=real, _name=name: taken.append(_name) or _real(*a))
    monkeypatch.setattr(mc, '_GROUPED_DX_BYTES', 2 * 3 * 8 * 6 * 4) # [2, 3, 8, 6] in fp32.
    gen = torch.Generator().manual_seed(5)
    kernels = torch.randn([2 * 4, 3, 3, 3], generator=gen)
    for rows, expected in [(8, '_grouped_conv_grads'), (9, '_per_sample_input_grad')]:
        x = torch.randn([2, 3, rows, 6], generator=gen)
        dy = torch.randn([1, 2 * 4, rows - 2, 4], generator=gen)
        taken.clear()
        dx = mc._input_grad(dy, x, kernels, (0, 0))
        assert taken == [expected] and dx.shape == x.shape

@pytest.mark.parametrize('grad_kind', ['sum', 'transposed'])
def test_strided_output_gradients(grad_kind):
    # Output gradients that reach the backward as strided views: y.sum() gives an expanded one, a
    # loss on the transposed output a transposed one.
    x, w, s, g = _inputs([3])
    def loss(y):
        if grad_kind == 'sum':
            return y.sum()
        r = torch.randn(y.transpose(2, 3).shape, generator=torch.Generator().manual_seed(8), dtype=y.dtype)
        return (y.transpose(2, 3) * r).sum()
    inputs = (x, w, s, g)
    got = torch.autograd.grad(loss(_op(True, 1)(*inputs)), inputs)
    ref = torch.autograd.grad(loss(_op(True, 1, impl='ref')(*inputs)), inputs)
    for a, b in zip(got, ref):
        assert (a - b).abs().max().item() <= 1e-12 * b.abs().max().item()

def test_double_backward_agrees_with_reference_fp32():
    # The path-length regulariser's pattern: a gradient with create_graph, then its backward.
    x, w, s, g = _layer('channel')
    def second_order(impl):
        y = mc.modulated_conv2d(x, w, s, padding=2, input_gain=g, impl=impl)
        (dx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        return torch.autograd.grad(dx.square().sum(), [w, s, g])
    for got, ref in zip(second_order('cuda'), second_order('ref')):
        # Measured: at most 1.8e-7 relative to the largest element.
        assert (got - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()

#----------------------------------------------------------------------------

def test_function_saves_only_its_inputs():
    x, w, s, g = _layer('channel')
    f = lambda impl: mc.modulated_conv2d(x, w, s, padding=2, input_gain=g, impl=impl)
    inputs = sum(t.untyped_storage().nbytes() for t in (x, w, s, g))
    kernels = 4 * w.numel() * 4 # One fp32 copy of the per-sample kernels [N, O, I, kh, kw].
    assert saved_bytes(lambda: f('cuda')) == inputs
    assert saved_bytes(lambda: f('ref')) >= inputs + 3 * kernels # Native autograd keeps several copies.

def test_selection_rule():
    x, w, s, g = _layer('channel')
    assert _takes_function(mc.modulated_conv2d(x, w, s, padding=2, input_gain=g))
    assert not _takes_function(mc.modulated_conv2d(x, w, s, padding=2, input_gain=g, impl='ref'))
    with torch.no_grad():
        assert mc.modulated_conv2d(x, w, s, padding=2).grad_fn is None
    detached = [t.detach() for t in (x, w, s)]
    assert mc.modulated_conv2d(*detached, padding=2).grad_fn is None
    assert _takes_function(mc.modulated_conv2d(*detached[:2], s, padding=2)) # Any input that needs a gradient.

@pytest.mark.parametrize('kwargs, match', [
    (dict(impl='fast'), "impl must be 'cuda' or 'ref'"),
    (dict(prescale='max'), "prescale must be 'rms' or 'fp16_peak'"),
    (dict(padding=-1), 'padding must be an int'),
    (dict(padding=[1, 2, 3]), 'padding must be an int'),
    (dict(input_gain=torch.ones([5])), r'input_gain must be \[\], \[3\] or \[2, 3\]'),
])
def test_bad_arguments_are_named(kwargs, match):
    x, w, s, _ = _inputs(None)
    with pytest.raises(ValueError, match=match):
        mc.modulated_conv2d(x, w, s, **kwargs)

def test_bad_shapes_are_named():
    x, w, s, _ = _inputs(None)
    with pytest.raises(ValueError, match=r'w must be \[O, 3, kh, kw\]'):
        mc.modulated_conv2d(x, w[:, :2], s)
    with pytest.raises(ValueError, match=r's must be \[2, 3\]'):
        mc.modulated_conv2d(x, w, s[:1])

#----------------------------------------------------------------------------
