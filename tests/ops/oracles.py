# Independent oracles for the ops tests (the zero-insertion definitions live in bench/zero_insertion.py,
# which bench/ops.py times as its baseline). Nothing here imports our ops.

import numpy as np
import scipy.signal

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
