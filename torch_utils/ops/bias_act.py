# Fused bias + activation + gain + clamp.
#
# Three layers, as in every op module here:
#   _bias_act_ref()      pure PyTorch with native autograd: the specification and the CPU path;
#   RefKernel.bias_act() the kernel entry point (docs/kernels.md) written in PyTorch, with the exact
#                        signature of the CUDA plugin's, so the hand-written backward below can be tested
#                        on CPU with it;
#   _bias_act_function() a cached factory: one autograd.Function per static configuration, taking the
#                        kernel object (plugin or RefKernel) as a parameter.

import functools

import numpy as np
import torch

import dnnlib

from . import cpu_kernels

#----------------------------------------------------------------------------
# Activations. `ref` names the tensor the derivative is computed from ('x' = biased input, 'y' = output);
# `has_2nd_grad` says whether the second derivative is non-zero somewhere.

_SELU_SCALE = 1.0507009873554805
_SELU_ALPHA = 1.6732632423543772

def _activation(cuda_idx, func, ref, has_2nd_grad, def_gain=1, def_alpha=0):
    # One table entry. cuda_idx is the activation's number in the kernels (docs/kernels.md).
    return dnnlib.EasyDict(cuda_idx=cuda_idx, func=func, ref=ref, has_2nd_grad=has_2nd_grad,
                           def_alpha=def_alpha, def_gain=def_gain)

_F = torch.nn.functional
_SQRT2 = np.sqrt(2) # Default gain of the ReLU family: keeps the signal's second moment (He et al. 2015).

activation_funcs = dict(
    linear   = _activation(1, lambda x, **_: x,                             ref='',  has_2nd_grad=False),
    relu     = _activation(2, lambda x, **_: _F.relu(x),                    ref='y', has_2nd_grad=False, def_gain=_SQRT2),
    lrelu    = _activation(3, lambda x, alpha, **_: _F.leaky_relu(x, alpha), ref='y', has_2nd_grad=False, def_gain=_SQRT2, def_alpha=0.2),
    tanh     = _activation(4, lambda x, **_: torch.tanh(x),                 ref='y', has_2nd_grad=True),
    sigmoid  = _activation(5, lambda x, **_: torch.sigmoid(x),              ref='y', has_2nd_grad=True),
    elu      = _activation(6, lambda x, **_: _F.elu(x),                     ref='y', has_2nd_grad=True),
    selu     = _activation(7, lambda x, **_: _F.selu(x),                    ref='y', has_2nd_grad=True),
    softplus = _activation(8, lambda x, **_: _F.softplus(x),                ref='y', has_2nd_grad=True),
    swish    = _activation(9, lambda x, **_: x * torch.sigmoid(x),          ref='x', has_2nd_grad=True, def_gain=_SQRT2),
)

_act_by_idx = {spec.cuda_idx: name for name, spec in activation_funcs.items()}

#----------------------------------------------------------------------------

def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    r"""Add a bias, apply an activation, scale by a gain and clamp: `clamp(act(x + b) * gain)`.

    Args:
        x:      Input tensor of any shape, floating point.
        b:      Bias, 1-D of length `x.shape[dim]`, or None for no bias.
        dim:    The dimension of `x` that `b` runs along.
        act:    Activation name: 'linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu',
                'softplus' or 'swish'.
        alpha:  Negative slope of 'lrelu'; None = the activation's default (0.2). Other activations
                ignore it.
        gain:   Multiplier after the activation; None = the activation's default (sqrt(2) for relu,
                lrelu and swish, else 1).
        clamp:  Clamp the result to [-clamp, +clamp]; None = no clamping.
        impl:   'cuda' (the CUDA kernel for CUDA tensors; CPU tensors use the reference) or 'ref'.

    Returns:
        Tensor of the same shape and dtype as `x`.
    """
    spec, alpha, gain, clamp = _check_args(x, b, dim, act, alpha, gain, clamp, impl)
    if impl == 'cuda' and x.device.type == 'cuda':
        kernel = _select_kernel(x, dim, spec, alpha, gain, clamp)
        return _bias_act_function(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, kernel=kernel).apply(x, b)
    if impl == 'cuda' and _cpu_training(x, b, spec, alpha, gain):
        return _bias_act_function(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, kernel=cpu_kernel).apply(x, b)
    return _bias_act_ref(x, b, dim, spec, alpha, gain, clamp)

def _needs_grad(x, b):
    return torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))

def _cpu_training(x, b, spec, alpha, gain):
    # A CPU call that needs a gradient, with a piecewise-linear activation: the Function with the CPU
    # kernel below (saves y only, three passes per derivative instead of native autograd's six).
    return (_needs_grad(x, b) and x.device.type == 'cpu' and spec.cuda_idx in _PIECEWISE_LINEAR
            and alpha >= 0 and gain > 0 and x.dtype in (torch.float32, torch.float64))

#----------------------------------------------------------------------------

def _check_args(x, b, dim, act, alpha, gain, clamp, impl):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f'bias_act: x must be a floating-point tensor, got {type(x).__name__} {getattr(x, "dtype", "")}')
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown act {act!r}; expected one of {sorted(activation_funcs)}')
    if impl not in ('ref', 'cuda'):
        raise ValueError(f"bias_act: impl must be 'ref' or 'cuda', got {impl!r}")
    if not isinstance(dim, int) or not 0 <= dim < max(x.ndim, 1):
        raise ValueError(f'bias_act: dim={dim!r} is not a dimension of x (shape {list(x.shape)})')
    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act: b must be 1-D with x.shape[{dim}] = {x.shape[dim]} elements, got {getattr(b, "shape", b)}')
        if not b.is_floating_point():
            raise ValueError(f'bias_act: b must be floating point, got {b.dtype}')
    spec = activation_funcs[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    if not np.isfinite(alpha) or not np.isfinite(gain):
        raise ValueError(f'bias_act: alpha and gain must be finite, got alpha={alpha}, gain={gain}')
    if clamp is not None and not float(clamp) >= 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp}')
    clamp = float(clamp if clamp is not None else -1) # The kernels' convention: negative = no clamp.
    return spec, alpha, gain, clamp

def _sum_except(t, dim):
    # Reduce over every axis but `dim`: the bias gradient.
    return t.sum(dim=tuple(d for d in range(t.ndim) if d != dim))

def _bias_shape(b, ndim, dim):
    return b.reshape([-1 if i == dim else 1 for i in range(ndim)])

def _bias_act_ref(x, b, dim, spec, alpha, gain, clamp):
    # Add bias, activate, scale, clamp; each step differentiable by native autograd. Without autograd,
    # piecewise-linear activations work in place on the one new tensor.
    if b is not None:
        x = x + _bias_shape(b.to(x.dtype), x.ndim, dim)
    if not _needs_grad(x, b) and spec.ref in ('', 'y') and not spec.has_2nd_grad and alpha >= 0:
        return _activate_in_place(x.clone() if b is None else x, spec.cuda_idx, alpha, gain, clamp)
    x = spec.func(x, alpha=alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

def _activate_in_place(x, idx, alpha, gain, clamp):
    # A piecewise-linear activation (kernel index idx: linear, relu, lrelu), gain and clamp, in place on x.
    if idx == 2:
        x.relu_()
    elif idx == 3:
        torch.nn.functional.leaky_relu_(x, alpha)
    if gain != 1:
        x.mul_(gain)
    if clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x

#----------------------------------------------------------------------------
# Derivatives of each activation in terms of its reference tensor. `a` is the activation's output
# (yref / gain) for 'y'-referenced activations; `s` is the biased input for 'x'-referenced ones.

def _first_derivative(act, s, a, alpha):
    if act == 'linear':
        return 1.0
    if act == 'relu':
        return (a > 0).to(a.dtype)
    if act == 'lrelu':
        return torch.where(a > 0, 1.0, a.new_full([], alpha)) # Tensor branch keeps a's dtype.
    if act == 'tanh':
        return 1 - a * a
    if act == 'sigmoid':
        return a * (1 - a)
    if act == 'elu':
        return torch.where(a > 0, 1.0, a + 1)
    if act == 'selu':
        return torch.where(a > 0, _SELU_SCALE, a + _SELU_SCALE * _SELU_ALPHA)
    if act == 'softplus':
        return -torch.expm1(-a)
    if act == 'swish':
        sig = torch.sigmoid(s)
        return sig * (1 + s * (1 - sig))
    raise ValueError(f'bias_act kernel: unknown act {act!r}')

def _second_derivative(act, s, a, alpha):
    if act in ('linear', 'relu', 'lrelu'):
        return 0.0
    if act == 'tanh':
        return -2 * a * (1 - a * a)
    if act == 'sigmoid':
        return a * (1 - a) * (1 - 2 * a)
    if act == 'elu':
        return torch.where(a > 0, 0.0, a + 1)
    if act == 'selu':
        return torch.where(a > 0, 0.0, a + _SELU_SCALE * _SELU_ALPHA)
    if act == 'softplus':
        e = torch.exp(-a)
        return (1 - e) * e
    if act == 'swish':
        sig = torch.sigmoid(s)
        return sig * (1 - sig) * (2 + s * (1 - 2 * sig))
    raise ValueError(f'bias_act kernel: unknown act {act!r}')

#----------------------------------------------------------------------------
# The reference kernel: the plugin's entry point written in PyTorch (docs/kernels.md, "bias_act").

def _bias_act_kernel(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp):
    name = _act_by_idx.get(int(act))
    if name is None:
        raise ValueError(f'bias_act kernel: unknown activation index {act}')
    spec = activation_funcs[name]
    if grad == 0:
        return _bias_act_ref(x, b if b.numel() else None, dim, spec, alpha, gain, clamp).contiguous()
    if grad not in (1, 2):
        raise ValueError(f'bias_act kernel: grad must be 0, 1 or 2, got {grad}')

    # Derivative modes: x carries the incoming gradient.
    s = xref if xref.numel() else None
    a = None
    if yref.numel():
        a = yref / gain if gain != 0 else torch.zeros_like(yref)
    if spec.ref == 'x' and s is None:
        raise ValueError(f'bias_act kernel: act {name!r} needs xref in grad mode {grad}')
    if spec.ref == 'y' and a is None:
        raise ValueError(f'bias_act kernel: act {name!r} needs yref in grad mode {grad}')
    deriv = _first_derivative if grad == 1 else _second_derivative
    out = x * (deriv(name, s, a, alpha) * gain)
    if grad == 2:
        out = out * dy
    if clamp >= 0:
        if not yref.numel():
            raise ValueError('bias_act kernel: clamp >= 0 needs yref in grad modes')
        out = torch.where(yref.abs() < clamp, out, torch.zeros_like(out))
    return out.contiguous()

class RefKernel:
    """Kernel object with the plugin's bias_act entry point, implemented in PyTorch."""
    bias_act = staticmethod(_bias_act_kernel)

ref_kernel = RefKernel()

#----------------------------------------------------------------------------
# The CPU training kernel: the same entry point for linear, relu and lrelu (gain > 0, alpha >= 0). The
# compiled CPU plugin (bias_act_cpu.cpp) does each mode in one pass; without it, fused aten passes do.
# Forward: one new tensor, activated, scaled and clamped in place. First derivative from y: y > 0 exactly
# where the biased input is (gain > 0), so leaky_relu_backward / threshold_backward with y as `self` give
# dy * act'; hardtanh_backward zeroes it where |y| >= clamp, as the kernels do. Both give the same
# elements. Other activations and grad mode 2 (zero for these) go to the reference kernel.

_PIECEWISE_LINEAR = (1, 2, 3) # linear, relu, lrelu.

def _bias_act_cpu_kernel(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp):
    if int(act) not in _PIECEWISE_LINEAR or grad not in (0, 1):
        return _bias_act_kernel(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp)
    plugin = cpu_kernels.load_cpu_plugin()
    if plugin is not None:
        out, code = plugin.bias_act(x, b, yref, grad, dim, int(act), alpha, gain, clamp)
        if code == 0:
            return out
    if grad == 0:
        y = x + _bias_shape(b, x.ndim, dim) if b.numel() else x.clone()
        return _activate_in_place(y, int(act), alpha, gain, clamp)
    if act == 1:
        out = x * gain
    else:
        if act == 2:
            out = torch.ops.aten.threshold_backward(x, yref, 0)
        else:
            out = torch.ops.aten.leaky_relu_backward(x, yref, alpha, True)
        if gain != 1:
            out.mul_(gain)
    if clamp >= 0:
        out = torch.ops.aten.hardtanh_backward(out, yref, -clamp, clamp)
    return out.contiguous()

class CpuKernel:
    """The bias_act entry point for CPU training (piecewise-linear activations)."""
    bias_act = staticmethod(_bias_act_cpu_kernel)

cpu_kernel = CpuKernel()

#----------------------------------------------------------------------------
# The kernel-parameterised autograd Functions.

def _select_kernel(x, dim, spec, alpha, gain, clamp):
    config = dict(dim=dim, act=spec.cuda_idx, alpha=alpha, gain=gain, clamp=clamp)
    try:
        from torch_utils.ops import cuda_kernels # Lazy: the CPU path never touches CUDA code.
    except ImportError:
        return ref_kernel
    return cuda_kernels.select_kernel('bias_act', config, ref_kernel, x.device, x.dtype)

@functools.cache # One Function class per static configuration (and kernel object).
def _bias_act_function(dim, act, alpha, gain, clamp, kernel):
    spec = activation_funcs[act]
    idx = spec.cuda_idx
    keep_s = spec.ref == 'x'                    # The gradient reads the biased input s = x + b ...
    keep_y = spec.ref == 'y' or clamp >= 0      # ... or the output y (always when clamping).
    empty = lambda like: like.new_empty([0])    # Placeholder for the kernel's unused tensor arguments.

    class BiasActFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, b):
            x = x.contiguous()
            bb = b.contiguous().to(x.dtype) if b is not None else empty(x)
            y = kernel.bias_act(x, bb, empty(x), empty(x), empty(x), 0, dim, idx, alpha, gain, clamp)
            s = empty(x)
            if keep_s:
                s = x + _bias_shape(bb, x.ndim, dim) if b is not None else x
            # x itself is kept only to route second-order gradients back to it.
            ctx.save_for_backward(x if spec.has_2nd_grad else empty(x), bb, s, y if keep_y else empty(x))
            ctx.has_bias = b is not None
            return y

        @staticmethod
        def backward(ctx, dy):
            x, b, s, y = ctx.saved_tensors
            if torch.is_grad_enabled(): # create_graph=True: the derivative itself is differentiated.
                dx = BiasActGrad.apply(dy.contiguous(), x, b, s, y)
            else:                       # First order: BiasActGrad's forward without its Function.
                dx = kernel.bias_act(dy.contiguous(), empty(dy), s, y, empty(dy), 1, dim, idx, alpha, gain, clamp)
            db = None
            if ctx.has_bias and ctx.needs_input_grad[1]:
                db = _sum_except(dx, dim)
            return dx, db

    class BiasActGrad(torch.autograd.Function):
        # dx = dy * gain * act'(s), zero where clamped. x and b are inputs only so that the second
        # derivative (grad mode 2) is routed to them; s and y are the saved reference tensors.
        @staticmethod
        def forward(ctx, dy, x, b, s, y):
            dx = kernel.bias_act(dy, empty(dy), s, y, empty(dy), 1, dim, idx, alpha, gain, clamp)
            ctx.save_for_backward(dy if spec.has_2nd_grad else empty(dy), x, b, s, y)
            return dx

        @staticmethod
        def backward(ctx, d_dx):
            dy, x, b, s, y = ctx.saved_tensors
            d_dx = d_dx.contiguous()
            d_dy = d_x = d_b = None
            if ctx.needs_input_grad[0]:
                d_dy = BiasActGrad.apply(d_dx, x, b, s, y)
            wants_x_or_b = any(ctx.needs_input_grad[1:3])
            if spec.has_2nd_grad and wants_x_or_b: # Piecewise-linear activations have no second derivative.
                d_x = kernel.bias_act(d_dx, empty(d_dx), s, y, dy, 2, dim, idx, alpha, gain, clamp)
                if b.numel() and ctx.needs_input_grad[2]:
                    d_b = _sum_except(d_x, dim)
            return d_dy, d_x, d_b, None, None

    return BiasActFunction

#----------------------------------------------------------------------------
