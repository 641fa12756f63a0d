# CPU training path of filtered_lrelu (docs/ops.md, "CPU training"): the sign-tensor autograd Function
# with the CPU kernel, which filtered_lrelu() takes on CPU tensors that need a gradient. The kernel runs
# the compiled CPU plugin (separable filters) or, without it and for 2-D filters, the blocked passes;
# tests that take a `backend` run with each. Its forward and gradients must equal native autograd
# through the reference path (the specification), it must keep only the 2-bit signs, and its sign
# tensors must be interchangeable with the reference kernel's.

import numpy as np
import pytest
import torch

from bench.zero_insertion import filtered_lrelu_zero_insertion
from tests.support.autograd import saved_bytes
from tests.support.cpu_plugin import backend, record_plugin_calls # pylint: disable=unused-import (backend: a fixture)
from torch_utils.ops import filtered_lrelu, upfirdn2d

#----------------------------------------------------------------------------

# (up, down, padding, fu taps or 2-D shape, fd taps or 2-D shape, input [h, w], gain, slope, clamp,
# flip): several tiles per axis where the input is large enough; 2-D filters as in stylegan3-r.
CASES = [
    (2, 2, [9, 8, 9, 8], 12, 12, [40, 37], np.sqrt(2), 0.2, None, False),     # Non-critical stylegan3 layer.
    (4, 2, [-6, -9, -6, -9], 24, 12, [21, 26], np.sqrt(2), 0.2, 4.0, False),  # Resolution-doubling layer.
    (2, 2, [-11, -12, -11, -12], 12, 12, [45, 41], 1.3, 0.15, 1.5, True),     # Last critical layer: crops.
    (3, 1, [2, 1, 3, 0], 5, 3, [19, 23], 0.7, -0.3, None, True),              # Odd factor, negative slope.
    (1, 2, [1, 2, 0, 3], 4, 7, [30, 26], 2.0, 0.2, 0.3, False),               # Heavy clamping.
    (2, 1, [-3, 4, 6, -2], 8, 1, [17, 20], 1.0, 1.0, 2.0, False),             # Linear, one-tap down filter.
    (2, 2, [9, 8, 9, 8], 12, (12, 12), [40, 37], np.sqrt(2), 0.2, 2.0, False), # stylegan3-r: radial down filter.
    (4, 2, [-6, -9, -5, -10], 24, (12, 12), [21, 26], np.sqrt(2), 0.2, None, True),
    (3, 1, [2, 1, 3, 0], (5, 4), (3, 3), [19, 23], 0.7, 0.2, 1.0, False),      # Both 2-D, asymmetric.
]

def _inputs(case, dtype=torch.float64, planes=(2, 3)):
    up, down, padding, ku, kd, (h, w), gain, slope, clamp, flip = CASES[case]
    gen = torch.Generator().manual_seed(200 + case)
    fu = torch.rand(ku if isinstance(ku, tuple) else [ku], generator=gen) + 0.1 # float32 and asymmetric: flipping matters.
    fd = torch.rand(kd if isinstance(kd, tuple) else [kd], generator=gen) + 0.1
    fu, fd = fu / fu.sum(), fd / fd.sum()
    x = (torch.randn([*planes, h, w], generator=gen, dtype=dtype) * 2).requires_grad_(True)
    b = torch.randn([planes[1]], generator=gen, dtype=dtype).requires_grad_(True)
    kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    return x, fu, fd, b, kw

def _reference(x, fu, fd, b, kw):
    # Native autograd through the reference path.
    return filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='ref', **kw)

def _count_calls(monkeypatch, name):
    calls = []
    orig = getattr(filtered_lrelu, name)
    monkeypatch.setattr(filtered_lrelu, name, lambda *a, **k: calls.append(1) or orig(*a, **k))
    return calls

def _grads(y, inputs, g):
    return torch.autograd.grad(y, inputs, g, retain_graph=True)

def _separable(case):
    return not isinstance(CASES[case][3], tuple) and not isinstance(CASES[case][4], tuple)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('case', range(len(CASES)))
def test_cpu_training_path_equals_reference_autograd_fp64(case, backend, monkeypatch):
    x, fu, fd, b, kw = _inputs(case)
    plugin = record_plugin_calls(monkeypatch)
    blocked = _count_calls(monkeypatch, '_blocked_run')
    fallback = _count_calls(monkeypatch, '_filtered_lrelu_kernel')
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    y_ref = _reference(x, fu, fd, b, kw)
    assert y.grad_fn is not None and 'FilteredLRelu' in type(y.grad_fn).__name__
    scale = y_ref.abs().max().item()
    assert (y - y_ref).abs().max().item() <= 1e-12 * scale
    g = torch.randn_like(y_ref)
    for a, r in zip(_grads(y, [x, b], g), _grads(y_ref, [x, b], g)):
        assert (a - r).abs().max().item() <= 1e-12 * max(1.0, r.abs().max().item()) # Measured <= 6e-16 relative.
    if backend == 'plugin' and _separable(case):
        assert plugin == [0, 0] and not blocked and not fallback # Forward and backward both compiled.
    else:
        assert len(blocked) == 2 and not fallback and 0 not in plugin # Forward and backward both blocked.

@pytest.mark.parametrize('case', [6, 7, 8])
@pytest.mark.parametrize('block_planes', [1, 4, 6]) # Of 6 planes: one per block, a partial last block, one block.
def test_blocked_inference_with_2d_filters_matches_zero_insertion_definition(case, block_planes):
    x, fu, fd, b, kw = _inputs(case)
    x, b = x.detach(), b.detach()
    clamp = -1.0 if kw['clamp'] is None else kw['clamp']
    y = filtered_lrelu._filtered_lrelu_blocked(x, fu, fd, b, kw['up'], kw['down'], *kw['padding'], kw['gain'], kw['slope'], clamp,
                                               kw['flip_filter'], block_planes=block_planes)
    y_ref = filtered_lrelu_zero_insertion(x, fu, fd, b, kw['up'], kw['down'], kw['padding'], kw['gain'], kw['slope'],
                                          kw['clamp'], kw['flip_filter'])
    assert y is not None and y.shape == y_ref.shape
    assert (y - y_ref).abs().max().item() <= 1e-12 * max(1.0, y_ref.abs().max().item())

@pytest.mark.parametrize('case', [0, 1, 2, 3, 4, 6, 8])
def test_cpu_training_path_gradcheck_and_gradgradcheck(case, backend):
    up, down, padding, ku, kd, _, gain, slope, clamp, flip = CASES[case]
    x, fu, fd, b, kw = _inputs(case, planes=(1, 2))
    n = 1 # The smallest input with at least 3 x 3 outputs: fast mode then costs about 0.1 s per check.
    while (n * up + padding[0] + padding[1] - (fu.shape[-1] - 1) - (fd.shape[-1] - 1) + down - 1) // down < 3:
        n += 1
    x = x.detach()[:, :, :n, :n + 1].clone().requires_grad_(True)
    fn = lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    assert 'FilteredLRelu' in type(fn(x, b).grad_fn).__name__
    assert torch.autograd.gradcheck(fn, [x, b], fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, [x, b], fast_mode=True)

def test_cpu_training_path_fp32_agreement_at_a_stylegan3_layer(backend):
    # stylegan3-t 256 L10 geometry (150 -> 300 -> 148) at 8 channels, the network's filters and clamp.
    fu = upfirdn2d.setup_filter(np.hanning(14)[1:-1], separable=True)
    fd = fu.clone()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn([1, 8, 150, 150], generator=gen).requires_grad_(True)
    b = torch.randn([8], generator=gen).requires_grad_(True)
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], clamp=256)
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    y_ref = _reference(x, fu, fd, b, kw)
    g = torch.randn(y.shape, generator=gen)
    (dx, db), (rx, rb) = _grads(y, [x, b], g), _grads(y_ref, [x, b], g)
    # Measured, blocked passes: forward equal (0.0, outputs up to 4.6); dx 1.8e-7 (up to 1.13); db 3.1e-5
    # (sums over 22500 positions, up to 233); against fp64 the db error is 2.5e-5 for ours, 8.0e-6 for the
    # reference. The plugin (AVX2 + FMA build, 2026-12-07) measured the same four figures.
    assert (y - y_ref).abs().max().item() <= 1e-5
    assert (dx - rx).abs().max().item() <= 2e-6
    assert (db - rb).abs().max().item() <= 5e-4

#----------------------------------------------------------------------------
# The sign tensor.

def _kernel_args(case, write_signs):
    x, fu, fd, b, kw = _inputs(case)
    px0, px1, py0, py1 = kw['padding']
    clamp = -1.0 if kw['clamp'] is None else kw['clamp']
    si = torch.empty([0], dtype=torch.uint8)
    return (x.detach(), fu, fd, b.detach(), si, kw['up'], kw['down'], px0, px1, py0, py1, 0, 0,
            kw['gain'], kw['slope'], clamp, kw['flip_filter'], write_signs)

@pytest.mark.parametrize('case', range(len(CASES)))
def test_cpu_kernel_writes_the_reference_kernels_sign_tensor(case, backend):
    args = _kernel_args(case, True)
    y, so, rc = filtered_lrelu.cpu_kernel.filtered_lrelu(*args)
    y_ref, so_ref, _ = filtered_lrelu.ref_kernel.filtered_lrelu(*args)
    assert rc == 0 and so.dtype == torch.uint8 and so.shape == so_ref.shape
    assert torch.equal(so, so_ref) # fp64: no pre-activation within rounding of 0 or of the clamp.
    assert (y - y_ref).abs().max().item() <= 1e-12 * y_ref.abs().max().item()
    if case == 4:
        assert (filtered_lrelu.unpack_signs(so) >= 2).any() # This case exercises the clamp codes.

@pytest.mark.parametrize('backend', ['blocked'], indirect=True)
def test_cpu_kernel_without_signs_is_the_blocked_inference_path(backend):
    args = _kernel_args(1, False)
    y, so, rc = filtered_lrelu.cpu_kernel.filtered_lrelu(*args)
    x, fu, fd, b = args[:4]
    y_inf = filtered_lrelu._filtered_lrelu_blocked(x, fu, fd, b, *args[5:11], *args[13:17])
    assert rc == 0 and so.numel() == 0 and torch.equal(y, y_inf)

@pytest.mark.parametrize('sx,sy', [(0, 0), (-3, 2), (5, -7), (-40, 0)])
def test_cpu_kernel_reads_signs_at_an_offset_like_the_reference_kernel(sx, sy, backend):
    # Read mode, as the backward pass calls it: signs written by either kernel, read by either, at an
    # offset (zero derivative outside the stored tensor).
    args = _kernel_args(4, True)
    _, so, _ = filtered_lrelu.ref_kernel.filtered_lrelu(*args)
    gen = torch.Generator().manual_seed(7)
    dy = torch.randn([2, 3, 33, 29], generator=gen, dtype=torch.float64)
    read = (dy, args[2], args[1], torch.empty([0], dtype=torch.float64), so, 2, 1, 6, 2, 5, 3, sx, sy, 1.7, 0.2, -1.0, True, False)
    y, _, rc = filtered_lrelu.cpu_kernel.filtered_lrelu(*read)
    y_ref, _, _ = filtered_lrelu.ref_kernel.filtered_lrelu(*read)
    assert rc == 0 and y.shape == y_ref.shape
    assert (y - y_ref).abs().max().item() <= 1e-12 * max(1.0, y_ref.abs().max().item())

def test_pack_and_unpack_codes_match_pack_signs_for_every_byte():
    codes = torch.tensor([[(v >> (2 * j)) & 3 for j in range(4)] for v in range(256)], dtype=torch.uint8).reshape(1, 1, 1, -1)
    packed = filtered_lrelu._pack_codes(codes.reshape(1, -1))
    assert torch.equal(packed.to(torch.uint8).reshape(-1), torch.arange(256, dtype=torch.uint8))
    assert torch.equal(filtered_lrelu.pack_signs(codes).reshape(-1), torch.arange(256, dtype=torch.uint8))
    assert torch.equal(filtered_lrelu._unpack_codes(torch.arange(256, dtype=torch.uint8).reshape(1, -1)), codes.reshape(1, -1))

#----------------------------------------------------------------------------
# What is kept for the backward pass, and when the path is taken.

def test_cpu_training_path_saves_only_the_sign_tensor(backend):
    x, fu, fd, b, kw = _inputs(0, dtype=torch.float32)
    kw['clamp'] = 256.0 # As in the networks (conv_clamp).
    mid = x.shape[0] * x.shape[1] * (x.shape[2] * 2 + 17 - 11) * (x.shape[3] * 2 + 17 - 11) # Intermediate elements.
    ours = saved_bytes(lambda: filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw))
    ref = saved_bytes(lambda: _reference(x, fu, fd, b, kw))
    # Ours: 2 bits per intermediate element (rows padded to 16 elements) and the two filters. Native
    # autograd through the reference keeps the clamp's float input and the leaky ReLU's bool mask
    # (measured 6.2 bytes per element; ours 0.25).
    assert ours <= mid / 4 * 1.1 + 1024
    assert ref >= 5 * mid

def test_reference_and_filter_gradients_keep_native_autograd():
    x, fu, fd, b, kw = _inputs(0)
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='ref', **kw)
    assert 'FilteredLRelu' not in type(y.grad_fn).__name__
    fu_grad = fu.clone().requires_grad_(True) # The Function has no filter gradients: the reference has.
    y = filtered_lrelu.filtered_lrelu(x, fu_grad, fd, b, **kw)
    assert 'FilteredLRelu' not in type(y.grad_fn).__name__
    assert torch.autograd.grad(y.sum(), fu_grad)[0].abs().sum() > 0
    with torch.no_grad():
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    assert y.grad_fn is None

@pytest.mark.parametrize('backend', ['blocked'], indirect=True)
def test_cpu_training_path_reruns_non_finite_blocks_with_the_reference_kernel(backend, monkeypatch):
    # A NaN: the blocked pass gives up, the reference kernel reruns; NaNs stay in their plane.
    fallback = _count_calls(monkeypatch, '_filtered_lrelu_kernel')
    x, fu, fd, b, kw = _inputs(0)
    x = x.detach().clone()
    x[1, 2, 10, 10] = float('nan')
    x.requires_grad_(True)
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    dx, = torch.autograd.grad(y.sum(), x)
    assert torch.isnan(y[1, 2]).any() and not torch.isnan(y[0]).any() and not torch.isnan(y[1, :2]).any()
    assert not torch.isnan(dx[0]).any() and not torch.isnan(dx[1, :2]).any()
    assert len(fallback) == 1 # The forward reran; the backward (dy finite) stayed blocked.

#----------------------------------------------------------------------------

@pytest.mark.parametrize('case', range(len(CASES)))
@pytest.mark.parametrize('block_planes', [1, 4, 6]) # Of 6 planes: one per block, a partial last block, one block.
@pytest.mark.parametrize('backend', ['blocked'], indirect=True)
def test_blocked_passes_never_read_unwritten_buffer_memory(case, block_planes, backend, monkeypatch):
    # The blocked passes allocate their buffers uninitialised and zero only what is read before it is
    # written (padding, the tails read past the last plane). With every fresh buffer full of NaN, the
    # forward and the backward still equal the reference: nothing unwritten reaches an output.
    x, fu, fd, b, kw = _inputs(case)
    g = torch.randn_like(_reference(x, fu, fd, b, kw))
    want = [_reference(x, fu, fd, b, kw)] + list(_grads(_reference(x, fu, fd, b, kw), [x, b], g))
    new_empty = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, 'new_empty', lambda t, *a, **k: new_empty(t, *a, **k).fill_(float('nan')))
    plan = filtered_lrelu._blocked_plan
    monkeypatch.setattr(filtered_lrelu, '_blocked_plan', lambda *a, **k: plan(*a, **dict(k, block_planes=block_planes)))
    fallback = _count_calls(monkeypatch, '_filtered_lrelu_kernel')
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
    got = [y] + list(_grads(y, [x, b], g))
    assert not fallback # The NaN would have made a block non-finite and sent the call to the reference.
    for a, r in zip(got, want):
        assert (a - r).abs().max().item() <= 1e-12 * max(1.0, r.abs().max().item())
