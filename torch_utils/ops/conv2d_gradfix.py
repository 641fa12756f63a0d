# conv2d / conv_transpose2d with higher-order gradients, and the no_weight_gradients() context.
#
# NVIDIA needed custom Functions because old cuDNN convolutions lacked double backward through the
# weights (R1 and path-length regularisation differentiate gradients). Native convolutions have supported
# arbitrary-order derivatives for years, so the functions here are thin wrappers with NVIDIA's signatures.
#
# no_weight_gradients(): NVIDIA's custom backward skipped the weight gradient inside this context, because
# a custom Function computes every gradient it is not told to skip. Native autograd already skips it: the
# engine computes the weight gradient of a convolution only when some requested input depends on it, e.g.
# `torch.autograd.grad(img, ws)` (the path-length regulariser) never computes one. The context manager
# therefore only records the request (readable through weight_gradients_disabled(), restored on exit)
# and costs nothing.

import contextlib
import contextvars

import torch

#----------------------------------------------------------------------------

enabled = True # Kept for compatibility with code that sets it; the native ops are always used.

_weight_gradients_disabled = contextvars.ContextVar('weight_gradients_disabled', default=False)

@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Context in which weight gradients of convolutions are not needed (see the module comment)."""
    token = _weight_gradients_disabled.set(bool(disable) or _weight_gradients_disabled.get())
    try:
        yield
    finally:
        _weight_gradients_disabled.reset(token)

def weight_gradients_disabled():
    return _weight_gradients_disabled.get()

#----------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1): # pylint: disable=redefined-builtin
    """torch.nn.functional.conv2d with any order of derivatives."""
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups)

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1): # pylint: disable=redefined-builtin
    """torch.nn.functional.conv_transpose2d with any order of derivatives."""
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)

#----------------------------------------------------------------------------
