# Modulated convolution (StyleGAN2 Sec. 2.2): one kernel per sample, the shared kernel scaled along its
# input channels by that sample's styles, optionally demodulated to unit L2 norm per output channel, run
# as a single grouped convolution with the batch folded into the channels.
#
# Two layers, as in the other op modules:
#   _modulated_conv2d_ref()  the public reference path (native autograd): the specification. Native
#                            autograd keeps every intermediate of the per-sample kernels [N, O, I, kh, kw]
#                            (the product w*s, the demodulated and the gain-scaled copies, the reshaped
#                            kernels) for every layer until the backward pass reaches it;
#   _modconv_function()      a cached factory: one autograd.Function per static configuration that saves
#                            only x, w, s and the input gain, recomputes the per-sample kernels in its
#                            backward pass and chains their gradient back to w, s and the gain. Its
#                            backward is written in differentiable ops, so double backward (the
#                            path-length regulariser) works. modulated_conv2d() takes it for CPU tensors
#                            that need a gradient (the rule of filtered_lrelu's CPU training path).

import functools

import numpy as np
import torch

from . import conv2d_gradfix

#----------------------------------------------------------------------------

def modulated_conv2d(x, w, s, demodulate=True, padding=0, input_gain=None, prescale='rms', impl='cuda'):
    r"""Grouped convolution of x with per-sample kernels built from w and the styles s.

    Computes, per sample n, `y[n] = conv2d(x[n], K[n], padding)` with
    `K[n][o, i] = w'[o, i] * s'[n, i] * d[n, o] * g[n, i]`, where w' and s' are w and s after the
    prescale, d = 1 / sqrt(sum over i, kh, kw of (w' s')^2 + 1e-8) when demodulating (else 1) and g the
    input gain (else 1).

    Args:
        x:          Activations [N, I, H, W], floating point.
        w:          Shared kernel [O, I, kh, kw].
        s:          Styles [N, I], one scale per sample and input channel.
        demodulate: Rescale each per-sample kernel to unit L2 norm per output channel.
        padding:    Zero padding of the convolution: int or [pad_y, pad_x].
        input_gain: Extra scale per input channel applied after demodulation: [], [I] or [N, I]; None = 1.
        prescale:   Scaling of w and s before demodulation (which cancels it; it only keeps the products
                    in range): 'rms' = unit RMS of each kernel's output channel and of s (StyleGAN3),
                    'fp16_peak' = unit peak magnitude, for fp16 x only (StyleGAN2). Ignored without
                    demodulation.
        impl:       'cuda' (the recomputing Function for CPU tensors that need a gradient, the reference
                    elsewhere) or 'ref' (always native autograd through the reference).

    Returns:
        Tensor [N, O, H + 2 pad_y - kh + 1, W + 2 pad_x - kw + 1] of x's dtype.
    """
    padding = _check_args(x, w, s, padding, input_gain, prescale, impl)
    if impl == 'cuda' and _cpu_training(x, w, s, input_gain):
        fn = _modconv_function(bool(demodulate), padding, prescale)
        y = fn.apply(x, w, s, input_gain)
    else:
        y = _modulated_conv2d_ref(x, w, s, bool(demodulate), padding, input_gain, prescale)
    return y.reshape(x.shape[0], -1, *y.shape[2:])                              # [N, O, H', W']

def _cpu_training(x, w, s, input_gain):
    # A CPU call that needs a gradient for any input: the recomputing Function (docs/ops.md,
    # "Modulated convolution"). CUDA keeps native autograd until the Function is measured there.
    return (x.device.type == 'cpu' and torch.is_grad_enabled()
            and any(t is not None and t.requires_grad for t in (x, w, s, input_gain)))

def _check_args(x, w, s, padding, input_gain, prescale, impl):
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"modulated_conv2d: impl must be 'cuda' or 'ref', got {impl!r}")
    if prescale not in ('rms', 'fp16_peak'):
        raise ValueError(f"modulated_conv2d: prescale must be 'rms' or 'fp16_peak', got {prescale!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f'modulated_conv2d: x must be a floating-point [N, I, H, W] tensor, got {getattr(x, "shape", x)}')
    N, I = x.shape[:2]
    if not isinstance(w, torch.Tensor) or w.ndim != 4 or w.shape[1] != I:
        raise ValueError(f'modulated_conv2d: w must be [O, {I}, kh, kw] for x {list(x.shape)}, got {getattr(w, "shape", w)}')
    if not isinstance(s, torch.Tensor) or list(s.shape) != [N, I]:
        raise ValueError(f'modulated_conv2d: s must be [{N}, {I}] for x {list(x.shape)}, got {getattr(s, "shape", s)}')
    if input_gain is not None and list(input_gain.shape) not in ([], [I], [N, I]):
        raise ValueError(f'modulated_conv2d: input_gain must be [], [{I}] or [{N}, {I}], got {list(input_gain.shape)}')
    pad = [padding] * 2 if isinstance(padding, (int, np.integer)) else list(padding)
    if len(pad) != 2 or any(not isinstance(p, (int, np.integer)) or p < 0 for p in pad):
        raise ValueError(f'modulated_conv2d: padding must be an int or [pad_y, pad_x] >= 0, got {padding!r}')
    return int(pad[0]), int(pad[1])

#----------------------------------------------------------------------------
# The public reference path.

def per_sample_kernels(w, s, demodulate, input_gain, prescale, dtype):
    """The per-sample kernels [N*O, I, kh, kw] of modulated_conv2d(), in dtype (differentiable)."""
    N, (O, I, kh, kw) = s.shape[0], w.shape
    w, s = _prescaled(w, s, demodulate, prescale, dtype)
    k = w[None] * s[:, None, :, None, None]                                     # [N, O, I, kh, kw]
    if demodulate:
        norms = k.square().sum(dim=[2, 3, 4], keepdim=True)                     # [N, O, 1, 1, 1]
        k = k * (norms + 1e-8).rsqrt()
    if input_gain is not None:
        gain = input_gain.expand(N, I)                                          # [N, I]
        k = k * gain[:, None, :, None, None]
    return k.reshape(N * O, I, kh, kw).to(dtype)                                # [N*O, I, kh, kw]

def _prescaled(w, s, demodulate, prescale, dtype):
    # w and s scaled before demodulation, which cancels these scales; they keep the products in range.
    I, kh, kw = w.shape[1:]
    if demodulate and prescale == 'rms':
        # Unit RMS first; fp16 products stay well in range.
        w = w * w.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    elif demodulate and dtype == torch.float16:
        # Peak magnitude about one, for the same reason (StyleGAN2's fp16 path).
        w = w * ((1 / np.sqrt(I * kh * kw)) / w.abs().amax(dim=[1, 2, 3], keepdim=True))
        s = s / s.abs().amax(dim=1, keepdim=True)
    return w, s

def _grouped_conv(x, kernels, padding):
    # The batch folded into the channels: one convolution with N groups. The caller unfolds the result
    # (outside the Function, so that callers may modify the unfolded view in place).
    stacked = x.reshape(1, -1, *x.shape[2:])                                    # [1, N*I, H, W]
    return conv2d_gradfix.conv2d(stacked, kernels, padding=list(padding), groups=x.shape[0]) # [1, N*O, H', W']

def _modulated_conv2d_ref(x, w, s, demodulate, padding, input_gain, prescale):
    return _grouped_conv(x, per_sample_kernels(w, s, demodulate, input_gain, prescale, x.dtype), padding)

#----------------------------------------------------------------------------
# The recomputing autograd Function.

def _grouped_conv_grads(dy, x, kernels, padding, need_x, need_k):
    N = x.shape[0]
    stacked = x.reshape(1, -1, *x.shape[2:])                                    # [1, N*I, H, W]
    dx, dk, _ = torch.ops.aten.convolution_backward(dy, stacked, kernels, None, [1, 1], list(padding), [1, 1],
                                                    False, [0, 0], N, [need_x, need_k, False])
    return (dx.reshape(x.shape) if need_x else None), dk

def _per_sample_input_grad(dy, x, kernels, padding):
    # The grouped input gradient on CPU (oneDNN) converts the whole batch's dy and dx to its blocked
    # layouts at once: at L11 of stylegan3-t 128, batch 4, about 410 MiB of temporaries next to a
    # 152 MiB dx. Sample n is group n, so dx goes one group at a time, with a quarter of those
    # temporaries, into a preallocated result; oneDNN may order the sums differently per group (rounding
    # differences only, docs/ops.md).
    N, O = x.shape[0], kernels.shape[0] // x.shape[0]
    dx = torch.empty_like(x)                                                    # [N, I, H, W]
    for n in range(N):
        rows = slice(n * O, (n + 1) * O)
        dx_n = torch.ops.aten.convolution_backward(dy[:, rows], x[n: n + 1], kernels[rows], None, [1, 1],
                                                   list(padding), [1, 1], False, [0, 0], 1,
                                                   [True, False, False])[0]    # [1, I, H, W]
        dx[n].copy_(dx_n[0])
        del dx_n # Free this sample's result before the next sample's convolution.
    return dx

_GROUPED_DX_BYTES = 2 << 20 # Inputs up to this size take the grouped input gradient (faster when it fits in cache).

def _input_grad(dy, x, kernels, padding):
    # On the demo's [8, 32, H, H] layers the grouped call is 1.7-3x faster up to H = 42 (1.8 MB) and the
    # per-sample loop 1.5-1.8x faster from H = 50 (2.6 MB) on (docs/benchmarks.md); large inputs also
    # need the loop's smaller temporaries.
    if x.numel() * x.element_size() <= _GROUPED_DX_BYTES:
        return _grouped_conv_grads(dy, x, kernels, padding, True, False)[0]
    return _per_sample_input_grad(dy, x, kernels, padding)

_TAP_CHUNK = 4096 # Elements of the flattened padded rows per GEMM, rounded down to whole rows.

def _tap_kernel_grads(dy, x, kernel_size, padding):
    # dK[n, o, i, a, b] = sum over r, c of dy[n, o, r, c] * xp[n, i, r + a, c + b], xp = x zero-padded.
    # With dy widened to xp's row length Wp (zeros in its last kw - 1 columns), the window of tap (a, b)
    # is flattened xp shifted by a * Wp + b, so a tap is one GEMM per sample, [O, L] @ [L, I]. The rows
    # go in chunks, so that a chunk's x stays in cache for all kh * kw taps; oneDNN's weight gradient
    # runs at about 2/3 of its forward's speed here (docs/benchmarks.md). Sums in another order than
    # native autograd's: rounding differences only.
    N, I, H, W = x.shape
    O, (kh, kw), (py, px) = dy.shape[1] // N, kernel_size, padding
    Hp, Wp = H + 2 * py, W + 2 * px
    Ho, Wo = Hp - kh + 1, Wp - kw + 1
    xp = x.new_zeros([N, I, Hp * Wp + kw - 1])                                  # Flat rows + the last tap's overrun.
    xp[:, :, :Hp * Wp].view(N, I, Hp, Wp)[:, :, py: py + H, px: px + W] = x
    dyw = dy.new_zeros([N, O, Ho, Wp])
    dyw[..., :Wo] = dy.reshape(N, O, Ho, Wo)                                   # dy may be a strided view.
    dyw = dyw.view(N, O, Ho * Wp)                                               # [N, O, L]
    dk = x.new_zeros([kh, kw, N, O, I])
    rows = max(1, _TAP_CHUNK // Wp)
    for r0 in range(0, Ho, rows):
        l0, l1 = r0 * Wp, min(Ho, r0 + rows) * Wp
        for a in range(kh):
            for b in range(kw):
                shift = a * Wp + b
                dk[a, b].baddbmm_(dyw[:, :, l0: l1], xp[:, :, l0 + shift: l1 + shift].transpose(1, 2))
    return dk.permute(2, 3, 4, 0, 1).reshape(N * O, I, kh, kw)                  # [N*O, I, kh, kw]

def _chain_kernel_grads(dk, w, s, input_gain, demodulate, prescale, needs):
    # First derivatives of per_sample_kernels(), K[n, o, i] = w1[o, i] s1[n, i] d[n, o] g[n, i] with
    # d = (sum over i of s1[n, i]^2 |w1[o, i]|^2 + 1e-8)^-1/2, given dK: the sums run on [N, O, I] and
    # [O, I, kh, kw] tensors (two passes over dK) instead of autograd through the kernels' full-size
    # [N, O, I, kh, kw] intermediates. Autograd takes only the prescale and the gain's broadcast
    # (tensors of w's and s's sizes) back to the inputs. Returns the gradients of w, s, input_gain.
    N, (O, I, kh, kw) = s.shape[0], w.shape
    with torch.enable_grad():
        leaves = [None if t is None else t.detach().requires_grad_(need) for t, need in zip((w, s, input_gain), needs)]
        w1, s1 = _prescaled(leaves[0], leaves[1], demodulate, prescale, dk.dtype)
        gain = None if leaves[2] is None else leaves[2].expand(N, I)            # [N, I]
    wf, sd = w1.detach().reshape(O, I, kh * kw), s1.detach()
    sg = sd if gain is None else sd * gain.detach()                            # [N, I]
    dk = dk.to(wf.dtype).reshape(N, O, I, kh * kw)
    if demodulate:
        w2 = wf.square().sum(-1)                                                # [O, I]
        d = (sd.square() @ w2.t() + 1e-8).rsqrt()                               # [N, O]
    else:
        d = wf.new_ones([N, O])
    a = torch.stack([(dk[n] * wf).sum(-1) for n in range(N)])                  # [N, O, I]: dL/d(s1 d g)
    dw1 = torch.zeros_like(wf)
    for n in range(N):
        dw1.addcmul_(dk[n], (d[n, :, None] * sg[n, None, :])[..., None])
    da = torch.bmm(d[:, None, :], a)[:, 0]                                      # [N, I]: sum over o of d a
    ds1 = da if gain is None else da * gain.detach()
    if demodulate:
        dq = (a * sg[:, None, :]).sum(-1) * d.pow(3) * -0.5                     # [N, O]: dL/d(d^-2)
        ds1 = ds1 + 2 * sd * (dq @ w2)
        dw1.addcmul_(wf, (dq.t() @ sd.square())[..., None], value=2)
    pairs = [(w1, dw1.reshape(w.shape)), (s1, ds1), (gain, da * sd)]
    outs, grads = zip(*[(t, g) for t, g in pairs if t is not None and t.requires_grad])
    got = iter(torch.autograd.grad(outs, [t for t in leaves if t is not None and t.requires_grad], grads))
    return [next(got) if (t is not None and t.requires_grad) else None for t in leaves]

@functools.lru_cache(maxsize=None)
def _modconv_function(demodulate, padding, prescale):
    class ModulatedConv2dFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, s, input_gain): # pylint: disable=arguments-differ
            # The reference's own ops, without a graph: the output is bit for bit the reference's.
            kernels = per_sample_kernels(w, s, demodulate, input_gain, prescale, x.dtype)
            ctx.save_for_backward(x, w, s, input_gain)
            return _grouped_conv(x, kernels, padding)

        @staticmethod
        def backward(ctx, dy): # pylint: disable=arguments-differ
            x, w, s, input_gain = ctx.saved_tensors
            # Grad mode is on here exactly when the caller asked for a higher-order graph (create_graph=True).
            if not torch.is_grad_enabled():
                return _first_order_grads(dy, x, w, s, input_gain, ctx.needs_input_grad)
            return _higher_order_grads(dy, x, w, s, input_gain, ctx.needs_input_grad)

    def _first_order_grads(dy, x, w, s, input_gain, needs):
        # dx from the kernels rebuilt without a graph; dK by tap GEMMs and its closed-form chain.
        need_x, need_w, need_s, need_g = needs
        dx = dw = ds = dg = None
        if need_x:
            with torch.no_grad():
                kernels = per_sample_kernels(w, s, demodulate, input_gain, prescale, x.dtype)
            dx = _input_grad(dy, x, kernels, padding)
            del kernels
        if need_w or need_s or need_g:
            dk = _tap_kernel_grads(dy, x, w.shape[2:], padding)
            dw, ds, dg = _chain_kernel_grads(dk, w, s, input_gain, demodulate, prescale, (need_w, need_s, need_g))
        return dx, dw, ds, dg

    def _higher_order_grads(dy, x, w, s, input_gain, needs):
        # Every step records a graph through the saved inputs themselves: the kernels rebuilt by the
        # reference's ops, the grouped convolution's differentiable backward, autograd back to w, s, g.
        need_x, need_w, need_s, need_g = needs
        wanted = [t for t, need in ((w, need_w), (s, need_s), (input_gain, need_g)) if need]
        kernels = per_sample_kernels(w, s, demodulate, input_gain, prescale, x.dtype)
        dx, dk = _grouped_conv_grads(dy, x, kernels, padding, need_x, bool(wanted))
        grads = iter(torch.autograd.grad(kernels, wanted, dk, create_graph=True) if wanted else ())
        return dx, *(next(grads) if need else None for need in (need_w, need_s, need_g))

    return ModulatedConv2dFunction

#----------------------------------------------------------------------------
