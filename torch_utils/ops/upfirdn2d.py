# Upsample, pad, FIR-filter and downsample a batch of 2-D images: the resampling primitive of every
# StyleGAN generator and discriminator.
#
# Three layers, as in every op module here:
#   _upfirdn2d_ref()       the public reference path (native autograd): the specification and the CPU path;
#   RefKernel.upfirdn2d()  the kernel entry point (docs/kernels.md) with the CUDA plugin's signature;
#   _upfirdn2d_function()  a cached factory: one autograd.Function per static configuration, taking the
#                          kernel object as a parameter; its backward is the op itself (flipped filter,
#                          up and down swapped, adjusted padding).
#
# The reference kernel is fast on CPU without changing the maths (docs/ops.md): upsampling is done
# polyphase (one short filter per output phase, applied to the input itself, instead of filtering a
# zero-stuffed image), downsampling is a strided convolution (only the kept outputs are computed), and
# separable filters run as two 1-D passes. Under impl='cuda', CPU calls with a separable filter run the
# compiled CPU plugin first (upfirdn2d_cpu.cpp, loaded by cpu_kernels.py), which declines the rest.

import functools

import numpy as np
import torch
from torch.nn import functional as F

from . import cpu_kernels

#----------------------------------------------------------------------------
# Argument parsing and validation.

def _scaling2(scaling, name='up'):
    if isinstance(scaling, (int, np.integer)) and not isinstance(scaling, bool):
        scaling = [int(scaling), int(scaling)]
    if not isinstance(scaling, (list, tuple)) or len(scaling) != 2:
        raise ValueError(f'{name} must be an int or a pair [x, y] of ints, got {scaling!r}')
    sx, sy = scaling
    for s in (sx, sy):
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1:
            raise ValueError(f'{name} must be a positive integer (or a pair of them), got {scaling!r}')
    return int(sx), int(sy)

def _padding4(padding, name='padding'):
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = [int(padding), int(padding)]
    if not isinstance(padding, (list, tuple)) or len(padding) not in (2, 4):
        raise ValueError(f'{name} must be an int, [px, py] or [x0, x1, y0, y1], got {padding!r}')
    for p in padding:
        if not isinstance(p, (int, np.integer)) or isinstance(p, bool):
            raise ValueError(f'{name} entries must be integers, got {padding!r}')
    if len(padding) == 2: # [px, py]: the same on both sides of each axis.
        padding = [padding[0], padding[0], padding[1], padding[1]]
    return tuple(int(p) for p in padding)

def _filter_size(f):
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f'f must be None or a 1-D or 2-D tensor, got {getattr(f, "shape", f)!r}')
    fw = f.shape[-1]
    fh = f.shape[0]
    return fw, fh

def _check_filter(f, name='f'):
    if f is None:
        return
    if not isinstance(f, torch.Tensor):
        raise ValueError(f'{name} must be a tensor or None, got {type(f).__name__}')
    if f.ndim not in (1, 2):
        raise ValueError(f'{name} must be 1-D (separable) or 2-D, got shape {list(f.shape)}')
    if not f.is_floating_point():
        raise ValueError(f'{name} must be a floating-point tensor, got {f.dtype}')
    if f.numel() == 0:
        raise ValueError(f'{name} must not be empty')

def _check_x(x, name='x'):
    if not isinstance(x, torch.Tensor):
        raise ValueError(f'{name} must be a tensor, got {type(x).__name__}')
    if x.ndim != 4:
        raise ValueError(f'{name} must be 4-D [N, C, H, W], got shape {list(x.shape)}')
    if not x.is_floating_point():
        raise ValueError(f'{name} must be floating point, got {x.dtype}')

def _check_impl(impl, op):
    if impl not in ('ref', 'cuda'):
        raise ValueError(f"{op}: impl must be 'ref' or 'cuda', got {impl!r}")

def _out_len(n, up, down, p0, p1, taps):
    return (n * up + p0 + p1 - taps + down) // down

#----------------------------------------------------------------------------

def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
    r"""Convenience: turn a list/array of taps into a float32 filter tensor for upfirdn2d().

    Args:
        f:           Taps (1-D or 2-D array-like), or None for the identity filter [1].
        device:      Device of the result.
        normalize:   Scale the taps to sum to 1 (keeps the DC gain).
        flip_filter: Flip the taps (only matters for asymmetric filters).
        gain:        Overall gain; folded in as gain^(ndim/2) so that a separable filter, applied twice,
                     gives `gain` in total.
        separable:   True: keep 1-D; False: make 2-D (outer product); None: 1-D only if it has >= 8 taps.

    Returns:
        float32 tensor [taps] (separable) or [fh, fw].
    """
    taps = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    if taps.ndim == 0: # A scalar is a one-tap filter.
        taps = taps.reshape(1)
    if taps.ndim not in (1, 2) or taps.numel() == 0:
        raise ValueError(f'setup_filter: f must be a non-empty 1-D or 2-D array, got shape {list(taps.shape)}')
    if separable is None: # Long 1-D filters stay separable: two 1-D passes beat one 2-D pass.
        separable = taps.ndim == 1 and taps.numel() >= 8
    if not separable and taps.ndim == 1:
        taps = torch.outer(taps, taps)
    if separable and taps.ndim != 1:
        raise ValueError('setup_filter: separable=True needs a 1-D f')
    if normalize:
        taps = taps / taps.sum()
    if flip_filter:
        taps = taps.flip(tuple(range(taps.ndim)))
    # A separable filter is applied once per axis, so each pass carries sqrt(gain).
    taps = taps * gain ** (taps.ndim / 2)
    return taps.to(device=device)

#----------------------------------------------------------------------------

def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Pad, upsample, filter and downsample a batch of 2-D images.

    Per channel: (1) insert up-1 zeros after each sample; (2) pad with zeros (negative = crop), relative
    to the upsampled image; (3) convolve with `f` (a true convolution; `flip_filter=True` correlates),
    keeping only fully covered outputs; (4) keep every down-th sample. Output size per axis:
    (in * up + pad0 + pad1 - taps + down) // down.

    Args:
        x:           Input [N, C, H, W], floating point.
        f:           Float filter [fh, fw] (2-D), [taps] (separable: applied along x, then y), or None
                     (identity).
        up:          Upsampling factor: int or [x, y].
        down:        Downsampling factor: int or [x, y].
        padding:     int, [px, py] or [x0, x1, y0, y1].
        flip_filter: False = convolution, True = correlation.
        gain:        Overall scaling of the result.
        impl:        'cuda' (the CUDA kernel for CUDA tensors; CPU tensors: the CPU plugin for separable
                     filters, else the reference) or 'ref'.

    Returns:
        Tensor [N, C, out_h, out_w] of x's dtype.
    """
    _check_x(x)
    _check_filter(f)
    _check_impl(impl, 'upfirdn2d')
    upx, upy = _scaling2(up, 'up')
    downx, downy = _scaling2(down, 'down')
    pad = _padding4(padding)
    px0, px1, py0, py1 = pad
    gain = float(gain)
    fw, fh = _filter_size(f)
    out_w = _out_len(x.shape[3], upx, downx, px0, px1, fw)
    out_h = _out_len(x.shape[2], upy, downy, py0, py1, fh)
    if out_w < 1 or out_h < 1:
        raise ValueError(f'upfirdn2d: padding {list(pad)} leaves an empty output ({out_h} x {out_w}) '
                         f'for input {list(x.shape[2:])}, up {[upx, upy]}, down {[downx, downy]}, filter {fh} x {fw}')
    if impl == 'cuda' and x.device.type == 'cuda':
        kernel = _select_kernel(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)
        fn = _upfirdn2d_function(upx, upy, downx, downy, px0, px1, py0, py1, bool(flip_filter), gain, kernel)
        return fn.apply(x, _as_kernel_filter(f, x))
    if impl == 'cuda' and _cpu_training(x, f):
        fn = _upfirdn2d_function(upx, upy, downx, downy, px0, px1, py0, py1, bool(flip_filter), gain, cpu_kernel)
        return fn.apply(x, _as_kernel_filter(f, x))
    if impl == 'cuda' and _cpu_inference(x, f):
        y = _cpu_plugin_call(x, _as_kernel_filter(f, x), upx, upy, downx, downy, px0, px1, py0, py1, bool(flip_filter), gain)
        if y is not None:
            return y
    return _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, bool(flip_filter), gain)

def _cpu_training(x, f):
    # A CPU call that needs a gradient for x (not for f): the Function with the CPU kernel, whose
    # backward is the adjoint upfirdn2d on the same banded passes (docs/ops.md, "CPU training").
    return (x.device.type == 'cpu' and torch.is_grad_enabled() and x.requires_grad
            and (f is None or not f.requires_grad) and x.dtype in (torch.float32, torch.float64))

def _cpu_inference(x, f):
    # A CPU call that needs no gradient: the compiled CPU plugin where it applies.
    return x.device.type == 'cpu' and not (torch.is_grad_enabled() and (x.requires_grad or (f is not None and f.requires_grad)))

def _cpu_plugin_call(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain):
    # y from the CPU plugin, or None where it is not built or declines the call (2-D filters that are
    # not outer products, dtypes other than float32/float64).
    plugin = cpu_kernels.load_cpu_plugin()
    if plugin is None:
        return None
    y, rc = plugin.upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
    return y if rc >= 0 else None

def _identity_filter(device):
    return torch.full([1, 1], 1.0, dtype=torch.float32, device=device)

def _as_kernel_filter(f, x):
    return _identity_filter(x.device) if f is None else f

def _upfirdn2d_ref(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain):
    # The specification: the reference kernel under native autograd. Separable filters are two 1-D
    # passes (x first, then y), the gain is applied in the first pass.
    f = _identity_filter(x.device) if f is None else f
    if f.ndim == 2:
        return _upfirdn2d_kernel(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
    x = _upfirdn2d_kernel(x, f.unsqueeze(0), upx, 1, downx, 1, px0, px1, 0, 0, flip, gain)
    return _upfirdn2d_kernel(x, f.unsqueeze(1), 1, upy, 1, downy, 0, 0, py0, py1, flip, 1.0)

#----------------------------------------------------------------------------
# The reference kernel (docs/kernels.md, "upfirdn2d").

def _phase_taps(k, up, p0):
    # Polyphase split of one axis with k correlation taps g[0..k-1] applied to the zero-stuffed, padded
    # signal. Output n = up*q + r only sees input samples x[q + t], with tap g[up*t + p0 - r]. Returns
    # the table of tap indices idx[r, t - t0] (-1 = no tap) and t0, the smallest t used by any phase.
    t0 = -(p0 // up) # ceil(-p0 / up)
    t1 = (k - 2 + up - p0) // up
    t = np.arange(t0, t1 + 1)
    r = np.arange(up)[:, None]
    idx = up * t[None, :] + p0 - r
    idx[(idx < 0) | (idx >= k)] = -1
    return idx, t0

def _polyphase_weight(g2, upx, upy, px0, py0):
    # g2 [Kh, Kw] correlation taps -> weight [upy*upx, Lh, Lw] (one filter per output phase), plus the
    # input offsets (ty0, tx0) where the phase filters start.
    kh, kw = g2.shape
    idx_y, ty0 = _phase_taps(kh, upy, py0)
    idx_x, tx0 = _phase_taps(kw, upx, px0)
    valid = (idx_y[:, :, None, None] >= 0) & (idx_x[None, None, :, :] >= 0)
    flat = np.where(valid, idx_y[:, :, None, None] * kw + idx_x[None, None, :, :], kh * kw) # kh*kw -> 0.
    flat = flat.transpose(0, 2, 1, 3).reshape(upy * upx, idx_y.shape[1], idx_x.shape[1])
    taps = torch.cat([g2.reshape(-1), g2.new_zeros([1])])
    weight = taps[torch.as_tensor(flat, device=g2.device)]
    return weight, ty0, tx0

def _pad_or_crop(x, left, right, top, bottom):
    # Zero-pad (negative = crop) the last two axes. Only the border is zeroed: F.pad fills the whole
    # output first, which costs as much as the copy itself.
    if left == right == top == bottom == 0:
        return x
    x = x[:, :, max(-top, 0): x.shape[2] - max(-bottom, 0), max(-left, 0): x.shape[3] - max(-right, 0)]
    left, right, top, bottom = max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)
    if left == right == top == bottom == 0:
        return x
    if torch.is_grad_enabled() and x.requires_grad:
        return F.pad(x, [left, right, top, bottom]) # Differentiable (any order) without custom code.
    n, c, h, w = x.shape
    out = x.new_empty([n, c, h + top + bottom, w + left + right])
    out[:, :, :top].zero_()
    out[:, :, top + h:].zero_()
    out[:, :, top: top + h, :left].zero_()
    out[:, :, top: top + h, left + w:].zero_()
    out[:, :, top: top + h, left: left + w].copy_(x)
    return out

def _upfirdn2d_kernel(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
    n, c, h, w = x.shape
    kh, kw = f.shape
    out_w = _out_len(w, upx, downx, padx0, padx1, kw)
    out_h = _out_len(h, upy, downy, pady0, pady1, kh)
    if out_w < 1 or out_h < 1:
        raise ValueError(f'upfirdn2d kernel: empty output for input {[h, w]}, filter {[kh, kw]}, '
                         f'up {[upx, upy]}, down {[downx, downy]}, padding {[padx0, padx1, pady0, pady1]}')

    # Correlation taps with the gain folded in.
    g2 = f.to(x.dtype)
    if not flip:
        g2 = g2.flip([0, 1])
    if gain != 1:
        g2 = g2 * gain

    # Identity filter without upsampling: pad or crop, subsample, scale.
    if upx == 1 and upy == 1 and kh == 1 and kw == 1:
        x = _pad_or_crop(x, padx0, padx1, pady0, pady1)[:, :, ::downy, ::downx]
        return x * g2[0, 0]

    # A filter that is 1-D along one axis (the separable passes): banded matrix products per axis.
    if kh == 1 or kw == 1:
        one = g2.new_ones([1])
        if kh == 1:
            x = _fir_pass(x, g2[0], upx, downx, padx0, padx1, axis=3)
            if upy == downy == 1 and pady0 == pady1 == 0:
                return x
            return _fir_pass(x, one, upy, downy, pady0, pady1, axis=2)
        x = _fir_pass(x, g2[:, 0], upy, downy, pady0, pady1, axis=2)
        if upx == downx == 1 and padx0 == padx1 == 0:
            return x
        return _fir_pass(x, one, upx, downx, padx0, padx1, axis=3)

    # Without upsampling: pad or crop, then one strided depthwise convolution.
    if upx == 1 and upy == 1:
        x = _pad_or_crop(x, padx0, padx1, pady0, pady1)
        weight = g2[None, None].expand(c, 1, kh, kw)
        return F.conv2d(x, weight, stride=(downy, downx), groups=c)

    # Polyphase: phase (ry, rx) of output (up*q + r) is a short correlation of the input itself.
    weight, ty0, tx0 = _polyphase_weight(g2, upx, upy, padx0, pady0)
    phases, lh, lw = weight.shape
    full_w = _out_len(w, upx, 1, padx0, padx1, kw) # Before downsampling.
    full_h = _out_len(h, upy, 1, pady0, pady1, kh)
    qh = -(-full_h // upy)
    qw = -(-full_w // upx)
    x = _pad_or_crop(x, -tx0, qw - 1 + tx0 + lw - 1 - (w - 1), -ty0, qh - 1 + ty0 + lh - 1 - (h - 1))
    weight = weight[None].expand(c, phases, lh, lw).reshape(c * phases, 1, lh, lw)
    y = F.conv2d(x, weight, groups=c)                                  # [N, C*P, Qh, Qw]

    # Interleave the phases: [N, C, upy, upx, Qh, Qw] -> [N, C, Qh*upy, Qw*upx].
    y = y.reshape(n, c, upy, upx, qh, qw).permute(0, 1, 4, 2, 5, 3).reshape(n, c, qh * upy, qw * upx)
    return y[:, :, :full_h:downy, :full_w:downx]

#----------------------------------------------------------------------------
# One axis of upfirdn2d as a banded matrix product. Output j of the axis is
#   out[j] = sum_i x[i] * g[up*i + pad0 - down*j]       (taps outside 0..K-1 are zero),
# which is shift-invariant in blocks: `q` outputs further on use the inputs `r` samples further on
# (q = up / gcd, r = down / gcd). So the outputs are cut into tiles of T outputs that all share one
# small matrix [T_in, T], applied to overlapping input windows with one GEMM. Polyphase upsampling and
# strided downsampling fall out of the matrix structure: no zeros are inserted, no skipped output is
# computed. Small axes (the first StyleGAN3 layers) are a single dense tile.

_TILE_OUT = 32         # Outputs per tile when upsampling (rounded to a multiple of q); tuned with bench/ops.py.
_TILE_OUT_DOWN = 32    # Outputs per tile when downsampling.
_SINGLE_TILE_MAX = 128 # Axes with at most this many outputs use one dense tile.

def _tile_size(q, r, l_out):
    # Outputs per tile: a multiple of q near the target, preferably one that divides l_out (then no tile
    # runs past the end of the input and the input needs no padding at its end).
    m0 = max(1, int(round((_TILE_OUT if r <= q else _TILE_OUT_DOWN) / q)))
    for m in sorted(range(max(1, m0 // 2), 2 * m0 + 1), key=lambda m: abs(m - m0)):
        if l_out % (q * m) == 0:
            return q * m
    return q * m0

def _tile_window(k, up, down, p0, t_out):
    # Inputs of tile 0 (t_out outputs, a multiple of up/gcd): the first, i_lo = ceil(-p0 / up), and their
    # count t_in; each further tile starts `step` inputs later.
    i_lo = -(p0 // up)
    t_in = (k - 1 + (t_out - 1) * down - p0) // up - i_lo + 1
    step = down * t_out // up
    return i_lo, t_in, step

def _band_layout(k, up, down, p0, l_in, l_out):
    gcd = np.gcd(up, down)
    q, r = up // gcd, down // gcd
    if l_out <= _SINGLE_TILE_MAX:
        t_out, ntiles = l_out, 1
    else:
        t_out = _tile_size(q, r, l_out)
        ntiles = -(-l_out // t_out)
    i_lo, t_in, step = _tile_window(k, up, down, p0, t_out)
    pad_lo = -i_lo
    pad_hi = i_lo + (ntiles - 1) * step + t_in - l_in
    return i_lo, t_in, t_out, step, ntiles, pad_lo, pad_hi

def _band_matrix(g, up, down, p0, i_lo, t_in, t_out):
    # matrix[i, j] = g[up*(i_lo + i) + p0 - down*j], zero outside the taps. With j' = t_out-1-j the tap
    # index grows by `up` along i and by `down` along j', so the matrix is a strided view of the
    # zero-extended taps, flipped along j (cheaper than a gather).
    k = g.shape[0]
    lo = up * i_lo + p0 - down * (t_out - 1)            # Smallest tap index in the matrix.
    hi = up * (i_lo + t_in - 1) + p0                    # Largest.
    ext_lo, ext_hi = max(-lo, 0), max(hi - (k - 1), 0)
    g = torch.cat([g.new_zeros([ext_lo]), g, g.new_zeros([ext_hi])])
    return g.as_strided([t_in, t_out], [up, down], lo + ext_lo).flip(1)

def _fir_pass_padding(k, up, down, p0, p1, l_in):
    """(pad_lo, pad_hi) that _fir_pass would apply to an input of length l_in; a caller may apply them
    earlier (e.g. to a smaller tensor) and pass prepadded=True."""
    l_out = _out_len(l_in, up, down, p0, p1, k)
    _, _, _, _, ntiles, pad_lo, pad_hi = _band_layout(k, up, down, p0, l_in, l_out)
    return (0, 0) if ntiles == 1 else (pad_lo, pad_hi)

def _fir_pass(x, g, up, down, p0, p1, axis, l_in=None):
    # x [N, C, H, W]; g [K] correlation taps along `axis` (3 = width, 2 = height). When l_in is given,
    # x already carries the padding _fir_pass_padding(..., l_in) along `axis`.
    k = g.shape[0]
    prepadded = l_in is not None
    if not prepadded:
        l_in = x.shape[axis]
    l_out = _out_len(l_in, up, down, p0, p1, k)
    i_lo, t_in, t_out, step, ntiles, pad_lo, pad_hi = _band_layout(k, up, down, p0, l_in, l_out)
    if ntiles == 1:
        # One dense tile: drop the matrix rows that would meet padding instead of padding the input.
        i_lo, t_in, pad_lo, pad_hi = 0, l_in, 0, 0
    matrix = _band_matrix(g, up, down, p0, i_lo, t_in, t_out)                # [T_in, T_out]
    n, c, h, w = x.shape
    if axis == 3:
        if not prepadded:
            x = _pad_or_crop(x, pad_lo, pad_hi, 0, 0)
        if ntiles > 1:
            x = x.unfold(3, t_in, step)                                      # [N, C, H, tiles, T_in]
        y = (x.reshape(-1, t_in) @ matrix).reshape(n, c, h, ntiles * t_out)
        return y[:, :, :, :l_out]
    if not prepadded:
        x = _pad_or_crop(x, 0, 0, pad_lo, pad_hi)
    if ntiles > 1:
        x = x.unfold(2, t_in, step).transpose(-1, -2)                        # [N, C, tiles, T_in, W]
    y = torch.matmul(matrix.t(), x)                                          # [N, C, (tiles,) T_out, W]
    return y.reshape(n, c, ntiles * t_out, w)[:, :, :l_out]

class RefKernel:
    """Kernel object with the plugin's upfirdn2d entry point, implemented in PyTorch."""
    upfirdn2d = staticmethod(_upfirdn2d_kernel)

ref_kernel = RefKernel()

def _separable_factors(f):
    # A 2-D filter that is an outer product (the discriminator's [1, 3, 3, 1] x [1, 3, 3, 1]) -> its
    # vertical and horizontal taps (f.sum(1), f.sum(0) / f.sum()), else None. Only filters the outer
    # product reproduces to 2 ulp qualify: a non-separable filter (stylegan3-r's radial ones) is never
    # approximated.
    if f.ndim != 2 or min(f.shape) < 2 or f.sum() == 0:
        return None
    v, h = f.sum(1), f.sum(0) / f.sum()
    if (torch.outer(v, h) - f).abs().max() > 2 * torch.finfo(f.dtype).eps * f.abs().max():
        return None
    return v, h

def _upfirdn2d_cpu_kernel(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
    # The compiled CPU plugin where it builds and accepts the filter; else the reference kernel, with an
    # outer-product 2-D filter run as its two 1-D banded passes (GEMMs) instead of one depthwise
    # convolution. The result is detached from the view it may be of (the passes return slices): autograd
    # forbids modifying a view made inside a Function in place, and StyleGAN2 adds its noise in place.
    # detach() shares the storage, so nothing is copied.
    y = _cpu_plugin_call(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)
    if y is not None:
        return y
    factors = _separable_factors(f)
    if factors is None:
        y = _upfirdn2d_kernel(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)
    else:
        v, h = factors
        x = _upfirdn2d_kernel(x, h.unsqueeze(0), upx, 1, downx, 1, padx0, padx1, 0, 0, flip, gain)
        y = _upfirdn2d_kernel(x, v.unsqueeze(1), 1, upy, 1, downy, 0, 0, pady0, pady1, flip, 1.0)
    return y.detach()

class CpuKernel:
    """The upfirdn2d entry point for CPU training: the CPU plugin, else the reference kernel with
    outer-product filters split."""
    upfirdn2d = staticmethod(_upfirdn2d_cpu_kernel)

cpu_kernel = CpuKernel()

#----------------------------------------------------------------------------
# The kernel-parameterised autograd Function.

def _select_kernel(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain):
    fw, fh = _filter_size(f)
    config = dict(upx=upx, upy=upy, downx=downx, downy=downy, padx0=px0, padx1=px1, pady0=py0, pady1=py1,
                  flip=bool(flip), gain=gain, fh=fh if f is not None and f.ndim == 2 else 1, fw=fw)
    try:
        from torch_utils.ops import cuda_kernels # Lazy: the CPU path never touches CUDA code.
    except ImportError:
        return ref_kernel
    return cuda_kernels.select_kernel('upfirdn2d', config, ref_kernel, x.device, x.dtype)

def _kernel_call(kernel, x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain):
    # One 2-D call, or two 1-D calls for a separable filter (the gain goes into the first).
    if f.ndim == 2:
        return kernel.upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
    x = kernel.upfirdn2d(x, f.unsqueeze(0), upx, 1, downx, 1, px0, px1, 0, 0, flip, gain)
    return kernel.upfirdn2d(x, f.unsqueeze(1), 1, upy, 1, downy, 0, 0, py0, py1, flip, 1.0)

@functools.cache # One Function class per static configuration (and kernel object).
def _upfirdn2d_function(upx, upy, downx, downy, px0, px1, py0, py1, flip, gain, kernel):
    class Upfirdn2dFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, f):
            if f.requires_grad:
                raise ValueError('upfirdn2d: gradients with respect to f are not supported by the kernel path')
            y = _kernel_call(kernel, x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
            ctx.save_for_backward(f)
            ctx.in_size = (x.shape[2], x.shape[3])
            ctx.out_size = (y.shape[2], y.shape[3])
            return y

        @staticmethod
        def backward(ctx, dy):
            f, = ctx.saved_tensors
            ih, iw = ctx.in_size
            oh, ow = ctx.out_size
            fw, fh = _filter_size(f)
            # The adjoint: the same op with up and down swapped, the filter flipped, and padding that
            # realigns the full correlation with the original input grid.
            bx0 = fw - px0 - 1
            bx1 = iw * upx - ow * downx + px0 - upx + 1
            by0 = fh - py0 - 1
            by1 = ih * upy - oh * downy + py0 - upy + 1
            dx = None
            if ctx.needs_input_grad[0]:
                fn = _upfirdn2d_function(downx, downy, upx, upy, bx0, bx1, by0, by1, not flip, gain, kernel)
                dx = fn.apply(dy, f)
                assert dx.shape[2:] == (ih, iw)
            return dx, None

    return Upfirdn2dFunction

#----------------------------------------------------------------------------

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Filter a batch of images with `f`, keeping their size ("same" padding) plus `padding`.

    Args:
        x:           Input [N, C, H, W].
        f:           Float filter [fh, fw], [taps] (separable) or None.
        padding:     Extra padding: int, [px, py] or [x0, x1, y0, y1].
        flip_filter: False = convolution, True = correlation.
        gain:        Overall scaling of the result.
        impl:        'cuda' or 'ref'.

    Returns:
        Tensor [N, C, out_h, out_w].
    """
    x0, x1, y0, y1 = _padding4(padding)
    fw, fh = _filter_size(f)
    # Centre the filter; an even filter puts its extra tap on the leading side.
    same = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=same, flip_filter=flip_filter, gain=gain, impl=impl)

def _resampling_padding(taps, up, down):
    # Extra (before, after) padding along one axis that keeps an up- or down-sampled image centred
    # (the padding upsample2d / downsample2d would use).
    before = after = 0
    if up > 1:
        before, after = before + (taps + up - 1) // 2, after + (taps - up) // 2
    if down > 1:
        before, after = before + (taps - down + 1) // 2, after + (taps - down) // 2
    return before, after

def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Upsample a batch of images by `up` with the interpolation filter `f`; output size in * up (plus
    `padding`). The gain is multiplied by upx * upy to keep the mean.

    Args:
        x:           Input [N, C, H, W].
        f:           Float filter [fh, fw], [taps] (separable) or None.
        up:          Upsampling factor: int or [x, y].
        padding:     Extra padding: int, [px, py] or [x0, x1, y0, y1].
        flip_filter: False = convolution, True = correlation.
        gain:        Overall scaling of the result.
        impl:        'cuda' or 'ref'.

    Returns:
        Tensor [N, C, out_h, out_w].
    """
    upx, upy = _scaling2(up, 'up')
    x0, x1, y0, y1 = _padding4(padding)
    fw, fh = _filter_size(f)
    (ax0, ax1), (ay0, ay1) = _resampling_padding(fw, upx, 1), _resampling_padding(fh, upy, 1)
    pad = [x0 + ax0, x1 + ax1, y0 + ay0, y1 + ay1]
    # Zero insertion divides the mean by upx * upy; the gain puts it back.
    return upfirdn2d(x, f, up=[upx, upy], padding=pad, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)

def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Downsample a batch of images by `down` after filtering with the anti-aliasing filter `f`; output
    size in / down (plus `padding`).

    Args:
        x:           Input [N, C, H, W].
        f:           Float filter [fh, fw], [taps] (separable) or None.
        down:        Downsampling factor: int or [x, y].
        padding:     Extra padding: int, [px, py] or [x0, x1, y0, y1].
        flip_filter: False = convolution, True = correlation.
        gain:        Overall scaling of the result.
        impl:        'cuda' or 'ref'.

    Returns:
        Tensor [N, C, out_h, out_w].
    """
    downx, downy = _scaling2(down, 'down')
    x0, x1, y0, y1 = _padding4(padding)
    fw, fh = _filter_size(f)
    (ax0, ax1), (ay0, ay1) = _resampling_padding(fw, 1, downx), _resampling_padding(fh, 1, downy)
    pad = [x0 + ax0, x1 + ax1, y0 + ay0, y1 + ay1]
    return upfirdn2d(x, f, down=[downx, downy], padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------
