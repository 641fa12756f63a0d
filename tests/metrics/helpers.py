# Test-local helpers: tiny image folders and a tiny generator with NVIDIA's G(z, c) call signature.

import os

import numpy as np
import PIL.Image
import torch

import dnnlib

#----------------------------------------------------------------------------

def write_folder(path, num, resolution=16, seed=0, mode='RGB', offset=0):
    """`num` smooth random PNG images in `path`; returns path."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num):
        base = rng.uniform(0, 255, size=(4, 4, 3))
        img = np.asarray(PIL.Image.fromarray(base.astype(np.uint8)).resize((resolution, resolution), PIL.Image.BILINEAR))
        img = np.clip(img.astype(np.int32) + offset, 0, 255).astype(np.uint8)
        pil = PIL.Image.fromarray(img)
        if mode == 'L':
            pil = pil.convert('L')
        pil.save(os.path.join(path, f'img{i:05d}.png'))
    return str(path)

def folder_kwargs(path, **kwargs):
    return dnnlib.EasyDict(class_name='metrics.image_folder.ImageFolder', path=str(path), **kwargs)

class TinyGenerator(torch.nn.Module):
    """z -> tanh(z A) reshaped to an image; unconditional or with labels added to z."""

    def __init__(self, z_dim=8, c_dim=0, img_resolution=16, img_channels=3, seed=0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, z_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        g = torch.Generator().manual_seed(seed)
        self.register_buffer('A', torch.randn([z_dim, img_channels * img_resolution ** 2], generator=g) / np.sqrt(z_dim))
        self.register_buffer('C', torch.randn([max(c_dim, 1), z_dim], generator=g))
        self.num_calls = 0

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **_kwargs):
        self.num_calls += 1
        if self.c_dim > 0:
            z = z + c @ self.C
        img = torch.tanh(z @ self.A)
        return img.reshape([z.shape[0], self.img_channels, self.img_resolution, self.img_resolution])

#----------------------------------------------------------------------------
