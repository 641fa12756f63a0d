# Independent oracles for the ops tests and the zero-insertion baseline of bench/ops.py.
# Nothing here imports our ops: each function spells the maths out in the most direct way.

import numpy as np
import scipy.signal
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

def scipy_upfirdn_1d(x, h, up, down, p0, p1):
    """One axis (the last) of upfirdn2d through scipy.signal.upfirdn, in float64.

    scipy returns the full convolution of the zero-stuffed signal with h; with our padding, valid output
    j sits at full index j + len(h) - 1 - p0 (zero where that falls outside)."""
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    full = scipy.signal.upfirdn(h, x, up=up, down=1, axis=-1)
    k = len(h)
    n_out = x.shape[-1] * up + p0 + p1 - k + 1
    idx = np.arange(n_out) + k - 1 - p0
    inside = (idx >= 0) & (idx < full.shape[-1])
    y = np.zeros(x.shape[:-1] + (n_out,))
    y[..., inside] = full[..., idx[inside]]
    return y[..., ::down]

def scipy_upfirdn2d(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """Separable upfirdn2d with the 1-D filter f: scipy per axis, x then y."""
    f = np.asarray(f, dtype=np.float64)
    if flip_filter:
        f = f[::-1]
    px0, px1, py0, py1 = padding
    y = scipy_upfirdn_1d(np.asarray(x, dtype=np.float64), f, up[0], down[0], px0, px1)
    y = np.swapaxes(scipy_upfirdn_1d(np.swapaxes(y, -1, -2), f, up[1], down[1], py0, py1), -1, -2)
    return y * gain

#----------------------------------------------------------------------------

def numpy_activation(name, x, alpha):
    """The activations of bias_act, in NumPy, float64."""
    x = np.asarray(x, dtype=np.float64)
    if name == 'linear':
        return x
    if name == 'relu':
        return np.maximum(x, 0)
    if name == 'lrelu':
        return np.where(x >= 0, x, x * alpha)
    if name == 'tanh':
        return np.tanh(x)
    if name == 'sigmoid':
        return 1 / (1 + np.exp(-x))
    if name == 'elu':
        return np.where(x > 0, x, np.expm1(x))
    if name == 'selu':
        lam, alp = 1.0507009873554805, 1.6732632423543772
        return lam * np.where(x > 0, x, alp * np.expm1(x))
    if name == 'softplus':
        return np.log1p(np.exp(x))
    if name == 'swish':
        return x / (1 + np.exp(-x))
    raise KeyError(name)

#----------------------------------------------------------------------------
