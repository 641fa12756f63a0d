# The zero-insertion definitions of upfirdn2d and filtered_lrelu: the baseline bench/ops.py times our
# ops against, and an independent oracle of the ops tests. Nothing here imports our ops: each function
# spells the maths out in the most direct way.

import torch
import torch.nn.functional as F

#----------------------------------------------------------------------------

def upfirdn2d_zero_insertion(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """upfirdn2d the straightforward way: stuff zeros into the whole image, pad or crop, one depthwise
    convolution (two for a 1-D, separable filter), then keep every down-th sample."""
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32)
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = f.to(x.dtype) * gain ** (f.ndim / 2)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::downy, ::downx]

def filtered_lrelu_zero_insertion(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter=False):
    """filtered_lrelu as its definition reads: bias, zero-insertion upfirdn2d with gain up**2, leaky
    ReLU, gain, clamp, upfirdn2d with fd, keep every down-th sample."""
    if b is not None:
        x = x + b.reshape(1, -1, 1, 1).to(x.dtype)
    x = upfirdn2d_zero_insertion(x, fu, (up, up), (1, 1), padding, flip_filter, up * up)
    x = torch.where(x < 0, x * slope, x) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d_zero_insertion(x, fd, (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1)

#----------------------------------------------------------------------------
