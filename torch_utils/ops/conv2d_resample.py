# 2-D convolution fused with FIR up/downsampling (StyleGAN2 generator and the discriminator).
#
# The specification is the generic order of operations: upsample x by `up` with filter f (zero insertion,
# padding, FIR with gain up**2), a valid convolution with w, then FIR-downsample by `down`. The
# special cases below are exact rearrangements of it (FIR filters and convolutions are linear and
# shift-invariant, so they commute; zero padding before a valid convolution becomes padding or cropping
# of its output), chosen to do the least work; tests/ops/test_conv2d_resample.py checks each against
# _conv2d_resample_generic().

import torch

from . import conv2d_gradfix
from . import upfirdn2d
from .upfirdn2d import _filter_size, _padding4

#----------------------------------------------------------------------------

def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    r"""2-D convolution with optional up/downsampling.

    Padding is applied once, at the start; with up > 1 it is relative to the upsampled image.

    Args:
        x:           Input [N, C_in, H, W].
        w:           Weight [C_out, C_in // groups, kh, kw].
        f:           Float FIR filter for the resampling ([taps], [fh, fw] or None).
        up:          Integer upsampling factor.
        down:        Integer downsampling factor.
        padding:     int, [px, py] or [x0, x1, y0, y1].
        groups:      Convolution groups.
        flip_weight: False = true convolution with w, True = correlation (torch's conv2d).
        flip_filter: False = convolution with f, True = correlation.

    Returns:
        Tensor [N, C_out, out_h, out_w].
    """
    _check_args(x, w, f, up, down, groups)
    px0, px1, py0, py1 = _padding_with_resampling(f, up, down, padding)
    out_channels, in_per_group, kh, kw = w.shape

    # 1x1 kernel + downsampling: FIR-downsample first, then the (cheap, smaller) 1x1 convolution.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel + upsampling: 1x1 convolution first, at the low resolution.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)

    # Downsampling: FIR (no decimation), then a strided convolution computes only the kept outputs.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: a strided transposed convolution does zero insertion + convolution; it equals the
    # convolution of the zero-stuffed input padded by [k-1, k-up], so the remaining padding (or crop)
    # moves to the FIR that follows.
    if up > 1:
        w_t = _transpose_weight(w, groups)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        crop_x = max(min(-px0, -px1), 0) # Symmetric crop done by conv_transpose2d's own padding.
        crop_y = max(min(-py0, -py1), 0)
        x = _conv_transpose2d(x, w_t, stride=up, padding=[crop_y, crop_x], groups=groups, flip_weight=not flip_weight)
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y], gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # No resampling: torch's own padding when it is symmetric and non-negative.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    return _conv2d_resample_generic(x, w, f, up, down, [px0, px1, py0, py1], groups, flip_weight, flip_filter)

#----------------------------------------------------------------------------

def _check_args(x, w, f, up, down, groups):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'conv2d_resample: x must be 4-D [N, C, H, W], got {getattr(x, "shape", x)}')
    if not isinstance(w, torch.Tensor) or w.ndim != 4 or not w.is_floating_point():
        raise ValueError(f'conv2d_resample: w must be a floating-point 4-D [C_out, C_in/groups, kh, kw] tensor, got {getattr(w, "shape", w)} {getattr(w, "dtype", "")}')
    if not isinstance(groups, int) or groups < 1 or w.shape[0] % groups or x.shape[1] != w.shape[1] * groups:
        raise ValueError(f'conv2d_resample: groups={groups!r} does not fit x {list(x.shape)} and w {list(w.shape)}')
    for name, v in (('up', up), ('down', down)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f'conv2d_resample: {name} must be a positive integer, got {v!r}')
    upfirdn2d._check_filter(f)
    if f is None and (up > 1 or down > 1):
        raise ValueError('conv2d_resample: f is required when up > 1 or down > 1')

def _padding_with_resampling(f, up, down, padding):
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _filter_size(f)
    (ax0, ax1), (ay0, ay1) = (upfirdn2d._resampling_padding(t, up, down) for t in (fw, fh))
    return px0 + ax0, px1 + ax1, py0 + ay0, py1 + ay1

def _transpose_weight(w, groups):
    # [C_out, C_in/g, kh, kw] -> conv_transpose2d layout [C_in, C_out/g, kh, kw].
    out_channels, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw)
    return w.transpose(1, 2).reshape(groups * in_per_group, out_channels // groups, kh, kw)

def _conv2d(x, w, stride=1, padding=0, groups=1, flip_weight=True):
    if not flip_weight:
        w = w.flip([2, 3])
    return conv2d_gradfix.conv2d(x, w.to(x.dtype), stride=stride, padding=padding, groups=groups)

def _conv_transpose2d(x, w, stride, padding, groups, flip_weight):
    if not flip_weight:
        w = w.flip([2, 3])
    return conv2d_gradfix.conv_transpose2d(x, w.to(x.dtype), stride=stride, padding=padding, groups=groups)

def _conv2d_resample_generic(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    # The specification: upsample + pad, valid convolution, FIR-downsample.
    x = upfirdn2d.upfirdn2d(x, f if up > 1 else None, up=up, padding=padding, gain=up ** 2, flip_filter=flip_filter)
    x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x

#----------------------------------------------------------------------------
