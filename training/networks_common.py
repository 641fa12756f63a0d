# What the StyleGAN2 and StyleGAN3 networks share: the argument validators and the generator wrapper
# (z, c -> mapping -> ws -> synthesis -> image). Each architecture module keeps its own `Generator`
# class (its name, parameters and pickle layout are what official pickles and our fixtures record);
# both derive from GeneratorBase.

import numpy as np
from torch import nn

#----------------------------------------------------------------------------
# Validators: a bad network argument is a ValueError with a one-line message naming it.

def require(condition, message):
    if not condition:
        raise ValueError(message)

def is_int(value, minimum):
    return isinstance(value, (int, np.integer)) and value >= minimum

def is_power_of_two(n):
    return is_int(n, 1) and (n & (n - 1)) == 0

#----------------------------------------------------------------------------

class GeneratorBase(nn.Module):
    """The full generator: z (and c) -> mapping -> ws -> synthesis -> image. Subclasses call _build."""

    def _build(self, synthesis_class, mapping_class, z_dim, c_dim, w_dim, img_resolution, img_channels,
               mapping_kwargs, synthesis_kwargs):
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # Synthesis is built (and randomly initialised) before mapping; seeded goldens depend on it.
        self.synthesis = synthesis_class(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = mapping_class(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {}))

    def forward(self,
        z,                          # [N, z_dim]
        c,                          # [N, c_dim]; ignored when c_dim == 0.
        truncation_psi      = 1,    # See MappingNetwork.forward.
        truncation_cutoff   = None, # See MappingNetwork.forward.
        update_emas         = False,# Update w_avg (and, in StyleGAN3, every magnitude_ema) while training.
        **synthesis_kwargs,         # noise_mode, force_fp32 (and fused_modconv in StyleGAN2) for the layers.
    ):
        """Generate images [N, img_channels, img_resolution, img_resolution], nominally in [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

#----------------------------------------------------------------------------
