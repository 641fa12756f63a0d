# Fused multiply-add, `c + a * b` with broadcasting (StyleGAN2 noise injection uses it).
#
# NVIDIA's version is a custom autograd Function whose backward sums each gradient over the broadcast
# dimensions. torch.addcmul does exactly that, supports any order of derivatives, and is one fused kernel
# on CPU and CUDA, so this module is a documented wrapper.

import torch

#----------------------------------------------------------------------------

def fma(a, b, c):
    r"""Return `c + a * b`, broadcasting all three.

    Args:
        a: Tensor.
        b: Tensor broadcastable with `a`.
        c: Tensor broadcastable with `a * b`.

    Returns:
        Tensor of the broadcast shape.
    """
    for name, t in (('a', a), ('b', b), ('c', c)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f'fma: {name} must be a tensor, got {type(t).__name__}')
    return torch.addcmul(c, a, b)

#----------------------------------------------------------------------------
