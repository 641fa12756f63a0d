# Filtered leaky ReLU (StyleGAN3): bias -> upsample -> FIR -> gain -> leaky ReLU -> clamp -> FIR ->
# downsample, the alias-free nonlinearity of every synthesis layer.
#
# Three layers, as in every op module here:
#   _filtered_lrelu_ref()     the public reference path (native autograd): the specification; built from
#                             the fast upfirdn2d reference kernel. CPU inference takes
#                             _filtered_lrelu_blocked(), the same sums on cache-sized blocks of planes
#                             (under impl='cuda', the compiled CPU plugin first: cpu_kernels.py);
#   RefKernel                 the kernel entry points (docs/kernels.md) with the CUDA plugin's signatures,
#                             including the bit-packed sign tensor that the backward pass reads;
#                             CpuKernel (cpu_kernel) runs them on the CPU plugin, else on the blocked
#                             passes: CPU training;
#   _filtered_lrelu_function() a cached factory: one autograd.Function per static configuration, taking
#                             the kernel object as a parameter. Its backward is the same op with up and down
#                             and the two filters swapped, reading the stored signs instead of recomputing
#                             the activation.

import collections
import functools
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

from . import cpu_kernels
from . import upfirdn2d as _upfirdn2d

#----------------------------------------------------------------------------

def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=np.sqrt(2), slope=0.2, clamp=None, flip_filter=False, impl='cuda'):
    r"""Bias, upsample, filter, leaky ReLU, clamp, filter and downsample, in one op.

    Computes `y = down(fd * clamp(gain * lrelu(fu * up(x + b), slope)))` where `up` inserts up-1
    zeros after each sample and pads by `padding` (relative to the upsampled image), `fu * .` is a valid
    convolution scaled by up**2, and `down` keeps every down-th sample of the valid convolution with fd.

    Args:
        x:           Input [N, C, H, W], floating point.
        fu:          Upsampling filter: float [taps] (separable), [fh, fw], or None (identity).
        fd:          Downsampling filter: float [taps] (separable), [fh, fw], or None (identity).
        b:           Bias [C], or None.
        up:          Integer upsampling factor.
        down:        Integer downsampling factor.
        padding:     int, [px, py] or [x0, x1, y0, y1], relative to the upsampled image.
        gain:        Multiplier after the leaky ReLU.
        slope:       Slope of the leaky ReLU for negative inputs (1 = linear).
        clamp:       Clamp the activations to [-clamp, +clamp] before fd; None = no clamping.
        flip_filter: False = convolution, True = correlation.
        impl:        'cuda' (the CUDA kernel for CUDA tensors; CPU tensors use the reference) or 'ref'.

    Returns:
        Tensor [N, C, out_h, out_w] of x's dtype, out = (in*up + p0 + p1 - (fu_taps-1) - (fd_taps-1)
        + (down-1)) // down per axis.
    """
    px0, px1, py0, py1, gain, slope, clamp = _check_args(x, fu, fd, b, up, down, padding, gain, slope, clamp, impl)
    if impl == 'cuda' and x.device.type == 'cuda':
        fu_k = _kernel_filter(fu, x)
        fd_k = _kernel_filter(fd, x)
        kernel = _select_kernel(x, fu_k, fd_k, up, down, px0, px1, py0, py1, gain, slope, clamp, flip_filter)
        fn = _filtered_lrelu_function(up, down, px0, px1, py0, py1, gain, slope, clamp, bool(flip_filter), kernel)
        return fn.apply(x, fu_k, fd_k, b, None, 0, 0)
    if impl == 'cuda' and _cpu_training(x, fu, fd, b):
        fn = _filtered_lrelu_function(up, down, px0, px1, py0, py1, gain, slope, clamp, bool(flip_filter), cpu_kernel)
        return fn.apply(x, _kernel_filter(fu, x), _kernel_filter(fd, x), b, None, 0, 0)
    if impl == 'cuda' and _cpu_inference(x, fu, fd, b):
        y = _cpu_plugin_forward(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, bool(flip_filter))
        if y is not None:
            return y
    return _filtered_lrelu_ref(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, bool(flip_filter))

def _cpu_training(x, fu, fd, b):
    # A CPU call that needs a gradient for x or b (not for the filters): the sign-tensor Function with
    # the blocked CPU kernel (docs/ops.md, "CPU training").
    return (x.device.type == 'cpu' and torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
            and not any(f is not None and f.requires_grad for f in (fu, fd)))

def _cpu_inference(x, fu, fd, b):
    # A CPU call that needs no gradient at all: the compiled CPU plugin where it applies.
    return x.device.type == 'cpu' and not _needs_grad(x, fu, fd, b)

def _needs_grad(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)

def _cpu_plugin_forward(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip):
    # y from the CPU plugin (no sign tensor), or None where it is not built or declines the call.
    plugin = cpu_kernels.load_cpu_plugin()
    if plugin is None:
        return None
    y, _, rc = plugin.filtered_lrelu(x, _kernel_filter(fu, x), _kernel_filter(fd, x), b if b is not None else x.new_empty([0]),
                                     torch.empty([0], dtype=torch.uint8), up, down, px0, px1, py0, py1, 0, 0, gain, slope, clamp,
                                     flip, False)
    return y if rc >= 0 else None

#----------------------------------------------------------------------------

def _check_args(x, fu, fd, b, up, down, padding, gain, slope, clamp, impl):
    _upfirdn2d._check_x(x)
    _upfirdn2d._check_filter(fu, 'fu')
    _upfirdn2d._check_filter(fd, 'fd')
    _upfirdn2d._check_impl(impl, 'filtered_lrelu')
    for name, v in (('up', up), ('down', down)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f'filtered_lrelu: {name} must be a positive integer, got {v!r}')
    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or b.shape[0] != x.shape[1]:
            raise ValueError(f'filtered_lrelu: b must be 1-D with C = {x.shape[1]} elements, got {getattr(b, "shape", b)}')
        if not b.is_floating_point():
            raise ValueError(f'filtered_lrelu: b must be floating point, got {b.dtype}')
    px0, px1, py0, py1 = _upfirdn2d._padding4(padding)
    gain, slope = float(gain), float(slope)
    if not np.isfinite(gain) or not np.isfinite(slope):
        raise ValueError(f'filtered_lrelu: gain and slope must be finite, got gain={gain}, slope={slope}')
    if clamp is not None and not float(clamp) >= 0:
        raise ValueError(f'filtered_lrelu: clamp must be None or >= 0, got {clamp}')
    clamp = -1.0 if clamp is None else float(clamp) # The kernels' convention: negative = no clamp.
    fuw, fuh = _upfirdn2d._filter_size(fu)
    fdw, fdh = _upfirdn2d._filter_size(fd)
    out_w = _out_len(x.shape[3], up, down, px0, px1, fuw, fdw)
    out_h = _out_len(x.shape[2], up, down, py0, py1, fuh, fdh)
    if out_w < 1 or out_h < 1:
        raise ValueError(f'filtered_lrelu: padding {[px0, px1, py0, py1]} leaves an empty output ({out_h} x {out_w}) '
                         f'for input {list(x.shape[2:])}, up {up}, down {down}, filters {fuh}x{fuw} / {fdh}x{fdw}')
    return px0, px1, py0, py1, gain, slope, clamp

def _out_len(n, up, down, p0, p1, fu_taps, fd_taps):
    return (n * up + p0 + p1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down

def _kernel_filter(f, x):
    if f is None:
        return torch.ones([1, 1], dtype=torch.float32, device=x.device)
    return f

#----------------------------------------------------------------------------
# The public reference path.

def _filtered_lrelu_ref(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip):
    # Add the bias at the input rate (cheap), then upsample + filter with the gain folded into the taps
    # (gain * lrelu(t) = lrelu(gain * t) for gain > 0), activate, filter + downsample. Inference on the
    # CPU takes the blocked path below, which computes the same sums.
    if _blocked_applies(x, fu, fd, b, up, down, gain):
        y = _filtered_lrelu_blocked(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip)
        if y is not None:
            return y
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    fold = gain > 0
    t = _up_stage(x, fu, up, px0, px1, py0, py1, flip, up * up * (gain if fold else 1.0))
    in_place = not (torch.is_grad_enabled() and t.requires_grad)
    t = _activate(t, 1.0 if fold else gain, slope, clamp, in_place)
    return _down_stage(t, fd, down, flip)

def _up_stage(x, fu, up, px0, px1, py0, py1, flip, gain):
    # Zero-insert, pad, filter with fu. A separable fu runs as two banded passes, width first on the
    # small input; the padding that the height pass needs is applied to the input too (zero rows stay
    # zero through the width pass), so the big upsampled tensor is never padded or copied.
    if fu is None or fu.ndim != 1:
        return _upfirdn2d._upfirdn2d_ref(x, fu, up, up, 1, 1, px0, px1, py0, py1, flip, gain)
    g = fu.to(x.dtype) if flip else fu.to(x.dtype).flip(0)
    h = x.shape[2]
    pad_lo, pad_hi = _upfirdn2d._fir_pass_padding(g.shape[0], up, 1, py0, py1, h)
    x = _upfirdn2d._pad_or_crop(x, 0, 0, pad_lo, pad_hi)
    t = _upfirdn2d._fir_pass(x, g * gain, up, 1, px0, px1, axis=3)
    return _upfirdn2d._fir_pass(t, g, up, 1, py0, py1, axis=2, l_in=h)

def _down_stage(t, fd, down, flip):
    # Filter with fd and keep every down-th sample; separable: height first (one matrix product per
    # tile on the big tensor, no copy), then width on the half-size result.
    if fd is None or fd.ndim != 1:
        return _upfirdn2d._upfirdn2d_ref(t, fd, 1, 1, down, down, 0, 0, 0, 0, flip, 1.0)
    g = fd.to(t.dtype) if flip else fd.to(t.dtype).flip(0)
    y = _upfirdn2d._fir_pass(t, g, 1, down, 0, 0, axis=2)
    return _upfirdn2d._fir_pass(y, g, 1, down, 0, 0, axis=3)

def _activate(t, gain, slope, clamp, in_place):
    # clamp(gain * lrelu(t, slope)), in place when no gradient is needed.
    if in_place:
        if slope != 1:
            F.leaky_relu_(t, slope) if slope >= 0 else t.copy_(torch.where(t < 0, t * slope, t))
        if gain != 1:
            t.mul_(gain)
        if clamp >= 0:
            t.clamp_(-clamp, clamp)
        return t
    if slope != 1:
        t = torch.where(t < 0, t * slope, t)
    if gain != 1:
        t = t * gain
    if clamp >= 0:
        t = t.clamp(-clamp, clamp)
    return t

#----------------------------------------------------------------------------
# The blocked path (CPU, separable filters): the four banded-matrix passes of _up_stage and
# _down_stage, run on blocks of planes (one plane = one channel of one image) whose intermediate tensor
# fits in the L3 cache, with no window copies in the height passes. Inference runs it directly
# (_filtered_lrelu_blocked); training runs it inside the sign-tensor autograd Function through
# cpu_kernel below, which writes the packed signs in the forward pass and reads them in the backward.
#
# A height pass reads tile j of a plane from rows [j*step, j*step + t_in) of a buffer whose planes are
# exactly tiles*step rows apart, so all windows of a block form one strided [planes*tiles, t_in, W] view
# that the GEMM reads in place (overlapping windows are fine for an input). The last tile of a plane
# reads t_in - step rows past its plane: the next plane's rows, or a zeroed margin after the block.
# Only outputs past the valid length have non-zero taps there; valid outputs multiply those rows by
# zero, which keeps them exact as long as every value is finite. A block whose output does not sum to a
# finite number is therefore given up, and the caller reruns the whole op on the unblocked path.

_BLOCK_BYTES = 6 << 20  # Intermediate tensor of one block of planes; tuned on stylegan3-t (docs/ops.md).
_TILE_UP = 32           # Outputs per tile of the upsampling passes (a multiple of up).
_TILE_DOWN = 16         # Outputs per tile of the downsampling passes.

_Tiling = collections.namedtuple('_Tiling', 'first t_in step tiles t_out') # One pass, in input samples.

# Geometry of one blocked call: the intermediate t is [mid_h, mid_w] per plane, stored in blocks of
# `blk` planes as [mid_rows, mid_cols] (whole tiles); uw/uh/dh/dw and m_* are the tilings and band
# matrices of the four banded passes (None for a 2-D filter, which runs as a depthwise convolution).
_Plan = collections.namedtuple('_Plan', 'mid_h mid_w out_h out_w uw uh dh dw mid_rows mid_cols in_rows in_cols '
                                        'low_rows m_uw m_uh m_dh m_dw blk fu fd up down pad flip gain')

def _tiling(k, up, down, p0, l_out, t_out, tiles=None):
    # Tile j reads inputs first + j*step ... + t_in - 1 (negative = leading padding) and writes outputs
    # j*t_out ... + t_out - 1. Default: enough tiles to write every valid output and to read, inside
    # tiles*step inputs, every input that a valid output uses.
    assert down * t_out % up == 0, 'a tile must span whole polyphase periods'
    first, t_in, step = _upfirdn2d._tile_window(k, up, down, p0, t_out)
    needed = (k - 1 + (l_out - 1) * down - p0) // up - first + 1
    tiles_needed = max(-(-l_out // t_out), -(-needed // step))
    if tiles is None:
        tiles = tiles_needed
    assert tiles >= tiles_needed
    return _Tiling(first, t_in, step, tiles, t_out)

def _up_tile_rows(up, down):
    # Rows per tile of the upsampling height pass: a multiple of up (whole polyphase periods) and of
    # down * _TILE_DOWN (so that its output splits into whole tiles of the downsampling height pass).
    rows = math.lcm(up, down * _TILE_DOWN)
    return rows * -(-_TILE_UP // rows)

def _blocked_supported(x, fu, fd, up, down):
    # Shapes and dtypes the blocked passes handle: CPU float32/64 and both filters given (1-D filters
    # run as banded passes, 2-D ones as depthwise convolutions of the block).
    return (x.device.type == 'cpu' and x.dtype in (torch.float32, torch.float64)
            and fu is not None and fd is not None and (fu.ndim == 2 or _up_tile_rows(up, down) <= 4 * _TILE_UP))

def _blocked_applies(x, fu, fd, b, up, down, gain):
    return not _needs_grad(x, fu, fd, b) and gain > 0 and _blocked_supported(x, fu, fd, up, down)

def _blocked_plan(x, fu, fd, up, down, px0, px1, py0, py1, gain, flip, block_planes=None):
    n, c, h, w = x.shape
    (kuw, kuh), (kdw, kdh) = _filter_size(fu), _filter_size(fd)
    mid_h, mid_w = h * up + py0 + py1 - kuh + 1, w * up + px0 + px1 - kuw + 1 # After fu, before fd.
    out_h, out_w = (mid_h - kdh) // down + 1, (mid_w - kdw) // down + 1
    uw = uh = dh = dw = m_uw = m_uh = m_dh = m_dw = None
    mid_rows, mid_cols, in_rows, in_cols, low_rows = mid_h, mid_w, 0, 0, 0

    # Tilings of the banded passes, the buffer sizes they imply (per plane), and their band matrices;
    # gain * up**2 goes into the first (gain * lrelu(t) = lrelu(gain * t) for gain > 0).
    if fu.ndim == 1:
        gu = (fu if flip else fu.flip(0)).to(x.dtype)                       # Correlation taps.
        uw = _tiling(kuw, up, 1, px0, mid_w, up * -(-_TILE_UP // up))
        uh = _tiling(kuh, up, 1, py0, mid_h, _up_tile_rows(up, down))
        mid_rows, mid_cols = uh.tiles * uh.t_out, uw.tiles * uw.t_out
        in_rows, in_cols = uh.tiles * uh.step, (uw.tiles - 1) * uw.step + uw.t_in
        m_uw = _upfirdn2d._band_matrix(gu * (gain * up * up), up, 1, px0, uw.first, uw.t_in, uw.t_out) # [t_in, t_out]
        m_uh = _upfirdn2d._band_matrix(gu, up, 1, py0, uh.first, uh.t_in, uh.t_out).t()                # [t_out, t_in]
    if fd.ndim == 1:
        gd = (fd if flip else fd.flip(0)).to(x.dtype)
        step = down * _TILE_DOWN
        dh = _tiling(kdh, 1, down, 0, out_h, _TILE_DOWN, tiles=mid_rows // step if fu.ndim == 1 else max(-(-mid_h // step), -(-out_h // _TILE_DOWN)))
        dw = _tiling(kdw, 1, down, 0, out_w, _TILE_DOWN)
        mid_rows, low_rows = dh.tiles * step, dh.tiles * dh.t_out
        m_dh = _upfirdn2d._band_matrix(gd, 1, down, 0, 0, dh.t_in, dh.t_out).t()
        m_dw = _upfirdn2d._band_matrix(gd, 1, down, 0, 0, dw.t_in, dw.t_out)
    blk = block_planes or max(1, _BLOCK_BYTES // (mid_rows * mid_cols * x.element_size()))
    return _Plan(mid_h, mid_w, out_h, out_w, uw, uh, dh, dw, mid_rows, mid_cols, in_rows, in_cols, low_rows,
                 m_uw, m_uh, m_dh, m_dw, min(blk, n * c), fu, fd, up, down, (px0, px1, py0, py1), flip, gain)

def _row_windows(buf, windows, tiling, width):
    # [windows, t_in, width] view of the height-pass windows (tiles of consecutive planes) in buf.
    return buf.as_strided([windows, tiling.t_in, width], [tiling.step * width, width, 1])

def _blocked_run(x, b, plan, act):
    # Block by block: the upsampling stage into `mid`, act(t, p, k) in place on the block's intermediate
    # t [k, mid_rows, mid_cols] (planes p ... p+k-1), the downsampling stage. Returns y, or None if
    # some output is not finite.
    n, c, h, w = x.shape
    P = plan
    margin = max(P.dh.t_in - P.dh.step, 0) * P.mid_cols if P.dh else 0 # Read past the last plane; stays zero.
    # The banded up stage writes every element of a block's planes; the 2-D one only [mid_h, mid_w] of each.
    mid = _zero_tail(P.blk * P.mid_rows * P.mid_cols, margin, x) if P.uw else x.new_zeros([P.blk * P.mid_rows * P.mid_cols + margin])
    up_stage = (_banded_up_stage if P.uw else _conv_up_stage)(x, b, P, mid)
    down_stage = (_banded_down_stage if P.dw else _conv_down_stage)(x, P, mid)
    y = x.new_empty([n, c, P.out_h, P.out_w])
    y_planes = y.view(n * c, P.out_h, P.out_w)
    for p in range(0, n * c, P.blk):
        k = min(P.blk, n * c - p)
        t = up_stage(p, k)
        act(t, p, k)
        down_stage(k, y_planes[p: p + k])
        if not math.isfinite(float(y_planes[p: p + k].sum())): # Any NaN or inf (or a sum that overflows).
            return None
    return y

def _banded_up_stage(x, b, P, mid):
    # up(p, k): the two banded passes (width on the small input, then height) into `mid`.
    load, padded = _block_loader(x, b, P)
    wide = _zero_tail(P.blk * P.in_rows * P.mid_cols, max(P.uh.t_in - P.uh.step, 0) * P.mid_cols, x)
    def up(p, k):
        load(p, k)
        # Width pass: the overlapping windows of the small input are gathered once.
        windows = padded[:k].unfold(2, P.uw.t_in, P.uw.step).reshape(-1, P.uw.t_in) # [k*in_rows*tiles, t_in]
        torch.mm(windows, P.m_uw, out=wide[:k * P.in_rows * P.mid_cols].view(-1, P.uw.t_out))
        # Height pass, reading its windows in place.
        t = mid[:k * P.mid_rows * P.mid_cols]
        torch.matmul(P.m_uh, _row_windows(wide, k * P.uh.tiles, P.uh, P.mid_cols), out=t.view(k * P.uh.tiles, P.uh.t_out, P.mid_cols))
        return t.view(k, P.mid_rows, P.mid_cols)
    return up

def _conv_up_stage(x, b, P, mid):
    # up(p, k) for a 2-D fu: the reference kernel's polyphase depthwise convolution on the block,
    # copied into the layout of `mid`.
    n, c, h, w = x.shape
    x_planes = x.reshape(n * c, h, w)
    bias = None if b is None else b.to(x.dtype).repeat(n).reshape(n * c, 1, 1)
    def up(p, k):
        xb = x_planes[p: p + k] if bias is None else x_planes[p: p + k] + bias[p: p + k]
        tb = _upfirdn2d._upfirdn2d_kernel(xb[None], P.fu, P.up, P.up, 1, 1, *P.pad, P.flip, P.gain * P.up * P.up)
        t = mid[:k * P.mid_rows * P.mid_cols].view(k, P.mid_rows, P.mid_cols)
        t[:, :P.mid_h, :P.mid_w].copy_(tb[0])
        return t
    return up

def _banded_down_stage(x, P, mid):
    # down(k, out): the two banded passes (height on the big tensor, reading its windows in place, then
    # width: one GEMM per column tile over all rows of the block) into out [k, out_h, out_w].
    low = _zero_tail(P.blk * P.low_rows * P.mid_cols, P.dw.t_in, x)
    def down(k, out):
        torch.matmul(P.m_dh, _row_windows(mid, k * P.dh.tiles, P.dh, P.mid_cols),
                     out=low[:k * P.low_rows * P.mid_cols].view(k * P.dh.tiles, P.dh.t_out, P.mid_cols))
        col_windows = low.as_strided([P.dw.tiles, k * P.low_rows, P.dw.t_in], [P.dw.step, P.mid_cols, 1])
        res = torch.bmm(col_windows, P.m_dw.expand(P.dw.tiles, -1, -1)).view(P.dw.tiles, k, P.low_rows, P.dw.t_out)
        for j in range(P.dw.tiles):
            c0, c1 = j * P.dw.t_out, min((j + 1) * P.dw.t_out, P.out_w)
            if c0 < c1:
                out[:, :, c0: c1].copy_(res[j, :, :P.out_h, : c1 - c0])
    return down

def _conv_down_stage(x, P, mid):
    # down(k, out) for a 2-D fd: the reference kernel's strided depthwise convolution on the block.
    def down(k, out):
        t = mid[:k * P.mid_rows * P.mid_cols].view(1, k, P.mid_rows, P.mid_cols)[:, :, :P.mid_h, :P.mid_w]
        out.copy_(_upfirdn2d._upfirdn2d_kernel(t, P.fd, 1, 1, P.down, P.down, 0, 0, 0, 0, P.flip, 1.0)[0])
    return down

def _zero_tail(size, tail, like):
    # A buffer of size + tail elements whose first `size` are written before they are read and whose
    # last `tail` (read past the last plane, multiplied by zero taps) must stay zero.
    buf = like.new_empty([size + tail])
    buf[size:].zero_()
    return buf

def _block_loader(x, b, plan):
    # (load, padded): load(p, k) puts planes p ... p+k-1 of x (+ bias) into padded [blk, in_rows, in_cols],
    # where input row i lands in row i - uh.first (negative padding crops); only the border around
    # those rows and columns is zeroed, once.
    n, c, h, w = x.shape
    src_r, src_c = max(plan.uh.first, 0), max(plan.uw.first, 0)
    dst_r, dst_c = max(-plan.uh.first, 0), max(-plan.uw.first, 0)
    rows, cols = min(h - src_r, plan.in_rows - dst_r), min(w - src_c, plan.in_cols - dst_c)
    padded = x.new_empty([plan.blk, plan.in_rows, plan.in_cols])
    if rows > 0 and cols > 0:
        padded[:, :dst_r].zero_()
        padded[:, dst_r + rows:].zero_()
        padded[:, dst_r: dst_r + rows, :dst_c].zero_()
        padded[:, dst_r: dst_r + rows, dst_c + cols:].zero_()
    else:
        padded.zero_()
    x_planes = x.reshape(n * c, h, w)
    bias = None if b is None else b.to(x.dtype).repeat(n).reshape(n * c, 1, 1)
    def load(p, k):
        if rows > 0 and cols > 0:
            src = x_planes[p: p + k, src_r: src_r + rows, src_c: src_c + cols]
            dst = padded[:k, dst_r: dst_r + rows, dst_c: dst_c + cols]
            if bias is None:
                dst.copy_(src)
            else:
                torch.add(src, bias[p: p + k], out=dst)
    return load, padded

def _filtered_lrelu_blocked(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip, block_planes=None):
    plan = _blocked_plan(x, fu, fd, up, down, px0, px1, py0, py1, gain, flip, block_planes)
    return _blocked_run(x, b, plan, lambda t, p, k: _activate(t, 1.0, slope, clamp, in_place=True))

#----------------------------------------------------------------------------
# Sign tensor (docs/kernels.md, "Sign tensor"): one 2-bit code per element of the pre-activation t,
# four codes per byte, element 4*i + j of a row in bits 2j and 2j+1 of byte i; rows padded with code 0
# to a multiple of 16 elements. Codes: 0 = t >= 0 (derivative 1), 1 = t < 0 (derivative slope),
# 2 = clamped at +clamp, 3 = clamped at -clamp (derivative 0).

CODE_POS = 0
CODE_NEG = 1
CODE_CLAMP_POS = 2
CODE_CLAMP_NEG = 3

def sign_tensor_width(w):
    """Bytes per row of the sign tensor for an intermediate tensor of width w."""
    return (w + 15) // 16 * 4

def pack_signs(codes):
    """uint8 codes [N, C, H, W] in 0..3 -> bit-packed uint8 [N, C, H, sign_tensor_width(W)]."""
    n, c, h, w = codes.shape
    codes = F.pad(codes, [0, sign_tensor_width(w) * 4 - w])
    codes = codes.reshape(n, c, h, -1, 4)
    packed = codes[..., 0] | (codes[..., 1] << 2) | (codes[..., 2] << 4) | (codes[..., 3] << 6)
    return packed.contiguous()

def unpack_signs(s):
    """Bit-packed uint8 [N, C, H, B] -> codes uint8 [N, C, H, 4*B]."""
    parts = [(s >> (2 * j)) & 3 for j in range(4)]
    return torch.stack(parts, dim=-1).flatten(-2)

def _signs_window(si, sx, sy, h, w):
    # Codes for an intermediate of size [h, w] whose element (i, j) reads si at (i + sy, j + sx);
    # outside the stored tensor the code is CODE_CLAMP_POS (derivative 0).
    codes = unpack_signs(si)
    hs, ws = codes.shape[2], codes.shape[3]
    return F.pad(codes, [-sx, sx + w - ws, -sy, sy + h - hs], value=CODE_CLAMP_POS)

#----------------------------------------------------------------------------
# The reference kernel (docs/kernels.md, "filtered_lrelu").

def _filtered_lrelu_act_kernel(x, si, sx, sy, gain, slope, clamp, write_signs):
    # In place on x (the pre-activation). Read mode (si given): x *= gain * derivative(code).
    # Otherwise x = clamp(gain * lrelu(x)), and with write_signs the codes are returned packed.
    empty = torch.empty([0], dtype=torch.uint8, device=x.device)
    if si.numel():
        codes = _signs_window(si, int(sx), int(sy), x.shape[2], x.shape[3])
        lut = torch.tensor([gain, gain * slope, 0.0, 0.0], dtype=x.dtype, device=x.device)
        x.mul_(lut[codes.long()])
        return empty
    if not write_signs:
        _activate(x, gain, slope, clamp, in_place=True)
        return empty
    neg = x < 0
    act = torch.where(neg, x * slope, x) * gain
    codes = neg.to(torch.uint8)
    if clamp >= 0:
        over = act.abs() > clamp
        clamped = torch.where(act > 0, CODE_CLAMP_POS, CODE_CLAMP_NEG).to(torch.uint8)
        codes = torch.where(over, clamped, codes)
        act = act.clamp(-clamp, clamp)
    x.copy_(act)
    return pack_signs(codes)

def _filtered_lrelu_generic(kernel, x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip, write_signs):
    # The generic path from the kernel's upfirdn2d and filtered_lrelu_act_ entry points.
    if b.numel():
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    t = _upfirdn2d._kernel_call(kernel, x, fu, up, up, 1, 1, px0, px1, py0, py1, flip, float(up * up)).contiguous()
    so = kernel.filtered_lrelu_act_(t, si, sx, sy, gain, slope, clamp, write_signs)
    y = _upfirdn2d._kernel_call(kernel, t, fd, 1, 1, down, down, 0, 0, 0, 0, flip, 1.0)
    return y, so

def _filtered_lrelu_kernel(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip_filter, write_signs):
    # The generic path, with the gain folded into the up filter where that keeps the maths
    # (gain * lrelu(t) = lrelu(gain * t) for gain > 0; read mode is linear in t).
    fold = si.numel() > 0 or gain > 0
    x = x + b.to(x.dtype).reshape(1, -1, 1, 1) if b.numel() else x
    t = _up_stage(x, fu, up, px0, px1, py0, py1, flip_filter, float(up * up) * (gain if fold else 1.0))
    so = _filtered_lrelu_act_kernel(t, si, sx, sy, 1.0 if fold else gain, slope, clamp, write_signs)
    y = _down_stage(t, fd, down, flip_filter)
    return y.contiguous(), so, 0

class RefKernel:
    """Kernel object with the plugin's entry points for filtered_lrelu (and the upfirdn2d one its generic
    path uses), implemented in PyTorch."""
    upfirdn2d = staticmethod(_upfirdn2d._upfirdn2d_kernel)
    filtered_lrelu = staticmethod(_filtered_lrelu_kernel)
    filtered_lrelu_act_ = staticmethod(_filtered_lrelu_act_kernel)

ref_kernel = RefKernel()

#----------------------------------------------------------------------------
# The CPU kernel for training: the blocked passes, writing the sign tensor in the forward pass and
# reading it in the backward pass (the reference kernel's format, so either kernel reads what the other
# wrote). filtered_lrelu() runs it inside the sign-tensor Function for CPU tensors that need a gradient:
# each layer then keeps 2 bits per intermediate element instead of the full-size float tensors that
# native autograd through the reference keeps, and the backward (the same op, up/down and the filters
# swapped) runs on the same cache-sized blocks. Cases the blocked passes do not handle (2-D filters,
# non-finite values) run the reference kernel, which keeps the same sign format.

def _sign_writer(x, plan, slope, clamp):
    # act(t, p, k) for write mode, and the sign tensor it fills: codes of the pre-activation t (gain
    # folded in), then the activation in place; clamping only where some value exceeds the clamp.
    n, c = x.shape[:2]
    wb = sign_tensor_width(plan.mid_w)
    so = torch.empty([n, c, plan.mid_h, wb], dtype=torch.uint8)
    so_planes = so.view(n * c, plan.mid_h, wb)
    codes = torch.zeros([plan.blk, plan.mid_h, 4 * wb], dtype=torch.uint8) # Columns >= mid_w stay 0.
    def act(t, p, k):
        tv, cv = t[:, :plan.mid_h, :plan.mid_w], codes[:k, :, :plan.mid_w]
        torch.lt(tv, 0, out=cv.view(torch.bool))                            # Code 1 where t < 0.
        _activate(t, 1.0, slope, -1.0, in_place=True)
        if clamp >= 0:
            lo, hi = torch.aminmax(tv)
            if hi > clamp or lo < -clamp:                                    # Rare: codes 2 and 3.
                over = tv.abs() > clamp
                cv.copy_(torch.where(over, 2 + (tv <= 0).to(torch.uint8), cv))
                t.clamp_(-clamp, clamp)
        so_planes[p: p + k].copy_(_pack_codes(codes[:k]))
    return act, so

def _pack_codes(codes):
    # uint8 codes [..., 4*B] -> packed bytes [..., B] (pack_signs' layout): the four codes of a byte are
    # the four bytes of one little-endian int32, shifted into place and or-ed.
    v = codes.view(torch.int32)
    packed = v | (v >> 6)
    packed |= v >> 12
    packed |= v >> 18
    return packed.bitwise_and_(0xFF)

def _unpack_codes(s):
    # Packed bytes [..., B] -> uint8 codes [..., 4*B]: the inverse of _pack_codes.
    v = s.to(torch.int32)
    u = v | (v << 6)
    u |= v << 12
    u |= v << 18
    return u.bitwise_and_(0x03030303).view(torch.uint8)

def _sign_reader(si, sx, sy, plan, slope, dtype):
    # act(t, p, k) for read mode: t (the gradient, gain folded in) times derivative(code), the code of
    # element (i, j) read from si at (i + sy, j + sx); zero outside si.
    n, c, hs, ws = si.shape
    si_planes = si.view(n * c, hs, ws)
    r0, r1 = max(0, -sy), min(plan.mid_h, hs - sy)
    c0, c1 = max(0, -sx), min(plan.mid_w, 4 * ws - sx)
    lut = torch.tensor([1.0, slope, 0.0, 0.0], dtype=dtype)
    def act(t, p, k):
        if r0 >= r1 or c0 >= c1:
            t.zero_()
            return
        for region in (t[:, :r0], t[:, r1:], t[:, r0: r1, :c0], t[:, r0: r1, c1:]):
            region.zero_()
        s = si_planes[p: p + k, r0 + sy: r1 + sy]
        codes = _unpack_codes(s)[:, :, c0 + sx: c1 + sx]
        tv = t[:, r0: r1, c0: c1]
        if bool((s & 0xAA).any()): # Some clamped element (codes 2, 3): the exact table lookup.
            tv.mul_(lut[codes.long()])
        elif slope != 1:           # Codes 0 and 1 only: t + (slope - 1) * t where code 1 (bool ops are slow).
            tv.addcmul_(tv, codes.to(dtype), value=slope - 1)
    return act

def _filtered_lrelu_cpu_kernel(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip_filter, write_signs):
    # The compiled CPU plugin (filtered_lrelu_cpu.cpp: separable filters) where it builds, else the
    # blocked passes, else the reference kernel.
    args = (x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip_filter, write_signs)
    plugin = cpu_kernels.load_cpu_plugin()
    if plugin is not None:
        y, so, rc = plugin.filtered_lrelu(*args)
        if rc >= 0:
            return y, so, rc
    return _filtered_lrelu_blocked_kernel(*args)

def _filtered_lrelu_blocked_kernel(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip_filter, write_signs):
    read = si.numel() > 0
    if _blocked_supported(x, fu, fd, up, down) and (read or gain > 0) and sys.byteorder == 'little':
        plan = _blocked_plan(x, fu, fd, up, down, px0, px1, py0, py1, gain, flip_filter)
        so = torch.empty([0], dtype=torch.uint8)
        if read:
            act = _sign_reader(si, int(sx), int(sy), plan, slope, x.dtype)
        elif write_signs:
            act, so = _sign_writer(x, plan, slope, clamp)
        else:
            act = lambda t, p, k: _activate(t, 1.0, slope, clamp, in_place=True)
        y = _blocked_run(x, b if b.numel() else None, plan, act)
        if y is not None:
            return y, so, 0
    return _filtered_lrelu_kernel(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip_filter, write_signs)

class CpuKernel(RefKernel):
    """The reference kernel with the CPU fused entry point (the compiled plugin, else the blocked passes):
    what CPU training runs."""
    filtered_lrelu = staticmethod(_filtered_lrelu_cpu_kernel)

cpu_kernel = CpuKernel()

#----------------------------------------------------------------------------
# The kernel-parameterised autograd Function.

def _select_kernel(x, fu, fd, up, down, px0, px1, py0, py1, gain, slope, clamp, flip):
    config = dict(up=up, down=down, px0=px0, px1=px1, py0=py0, py1=py1, gain=gain, slope=slope, clamp=clamp,
                  flip_filter=bool(flip), fu_shape=list(fu.shape), fd_shape=list(fd.shape))
    try:
        from torch_utils.ops import cuda_kernels # Lazy: the CPU path never touches CUDA code.
    except ImportError:
        return ref_kernel
    return cuda_kernels.select_kernel('filtered_lrelu', config, ref_kernel, x.device, x.dtype)

def _filter_size(f):
    return (f.shape[-1], f.shape[0]) # (width, height); a 1-D filter has both equal to its taps.

def backward_geometry(in_size, out_size, fu, fd, up, down, px0, py0, sx, sy):
    """(padding [x0, x1, y0, y1], sx, sy) of the backward call for a forward call with input [h, w] in_size,
    output out_size, filters fu/fd, factors up/down, leading padding px0/py0 and sign offsets sx/sy: the
    adjoint runs with up <-> down and fu <-> fd flipped; this padding realigns its full correlations with
    the input grid, and these offsets align its intermediate tensor with the forward's (docs/kernels.md,
    "Backward pass")."""
    (ih, iw), (oh, ow) = in_size, out_size
    (fuw, fuh), (fdw, fdh) = _filter_size(fu), _filter_size(fd)
    padding = [fuw + fdw - 2 - px0, iw * up - ow * down + px0 - up + 1, fuh + fdh - 2 - py0, ih * up - oh * down + py0 - up + 1]
    return padding, sx + px0 - (fuw - 1), sy + py0 - (fuh - 1)

@functools.lru_cache(maxsize=None)
def _filtered_lrelu_function(up, down, px0, px1, py0, py1, gain, slope, clamp, flip, kernel):
    class FilteredLReluFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, fu, fd, b, si, sx, sy): # pylint: disable=arguments-differ
            if fu.requires_grad or fd.requires_grad:
                raise ValueError('filtered_lrelu: gradients with respect to fu/fd are not supported by the kernel path')
            empty_u8 = torch.empty([0], dtype=torch.uint8, device=x.device)
            bb = b if b is not None else torch.empty([0], dtype=x.dtype, device=x.device)
            si_k = si if si is not None else empty_u8
            write = si is None and any(ctx.needs_input_grad[i] for i in (0, 3))
            args = (x, fu, fd, bb, si_k, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, flip, write)
            y, so, rc = kernel.filtered_lrelu(*args)
            if int(rc) < 0: # No specialised kernel for these parameters: the generic path.
                y, so = _filtered_lrelu_generic(kernel, *args)
            ctx.save_for_backward(fu, fd, si if si is not None else so)
            ctx.in_size = (x.shape[2], x.shape[3])
            ctx.out_size = (y.shape[2], y.shape[3])
            ctx.sx, ctx.sy = sx, sy
            ctx.has_bias = b is not None
            return y

        @staticmethod
        def backward(ctx, dy): # pylint: disable=arguments-differ
            fu, fd, s = ctx.saved_tensors
            padding, sxb, syb = backward_geometry(ctx.in_size, ctx.out_size, fu, fd, up, down, px0, py0, ctx.sx, ctx.sy)
            gain_b = gain * up * up / (down * down)
            dx = db = None
            if ctx.needs_input_grad[0] or ctx.needs_input_grad[3]:
                fn = _filtered_lrelu_function(down, up, *padding, gain_b, slope, -1.0, not flip, kernel)
                dx = fn.apply(dy, fd, fu, None, s, sxb, syb)
                if ctx.has_bias and ctx.needs_input_grad[3]:
                    db = dx.sum([0, 2, 3])
            return dx, None, None, db, None, None, None

    return FilteredLReluFunction

#----------------------------------------------------------------------------
