# grid_sample that supports double backward (ADA's geometric augmentation under R1 regularisation).
#
# NVIDIA wrapped aten::grid_sampler_2d_backward in a custom Function because torch < 1.11 had no
# derivative for it, and their wrapper broke on every change of that private signature. On the torch
# versions we support, native `torch.nn.functional.grid_sample` has first and second derivatives with
# respect to both the input and the grid (tests/ops/test_gradfix.py checks this with gradgradcheck), so
# this module is a thin wrapper that fixes NVIDIA's mode: bilinear, zero padding, align_corners=False.

import torch

#----------------------------------------------------------------------------

enabled = True # Kept for compatibility with code that sets it; the native op is always used.

def grid_sample(input, grid): # pylint: disable=redefined-builtin
    r"""Bilinear sampling of `input` at `grid` (zeros outside, align_corners=False), double-backward capable.

    Args:
        input: [N, C, H, W] floating point.
        grid:  [N, H_out, W_out, 2] sample positions in [-1, 1] (x, y).

    Returns:
        Tensor [N, C, H_out, W_out].
    """
    if not isinstance(input, torch.Tensor) or input.ndim != 4:
        raise ValueError(f'grid_sample: input must be 4-D [N, C, H, W], got {getattr(input, "shape", input)}')
    if not isinstance(grid, torch.Tensor) or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(f'grid_sample: grid must be [N, H_out, W_out, 2] with N = {input.shape[0]}, got {getattr(grid, "shape", grid)}')
    return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros', align_corners=False)

#----------------------------------------------------------------------------
