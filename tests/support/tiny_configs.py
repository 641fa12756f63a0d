# Tiny network configurations for CPU tests. Every engineer builds test networks from here, so the sizes
# stay in one place: a 16-px forward pass costs well under 0.1 s on one core.
#
# Each *_kwargs() returns a fresh EasyDict with `class_name` (for dnnlib.construct_class_by_name);
# build() constructs it. Overrides replace top-level keys:
#
#     G = tiny_configs.build(tiny_configs.sg3_generator_kwargs(), c_dim=4)

import copy

import dnnlib

#----------------------------------------------------------------------------

TINY_RESOLUTION = 16   # Image size of every tiny network.
TINY_Z_DIM      = 32   # Latent size (the real networks use 512).
TINY_W_DIM      = 32   # Intermediate latent size (the real networks use 512).

#----------------------------------------------------------------------------

def sg2_generator_kwargs(**overrides):
    """StyleGAN2 generator at 16 px: channel_base 256, channel_max 32, mapping depth 2 (about 40k parameters)."""
    kwargs = dnnlib.EasyDict(
        class_name      = 'training.networks_stylegan2.Generator',
        z_dim           = TINY_Z_DIM,
        c_dim           = 0,
        w_dim           = TINY_W_DIM,
        img_resolution  = TINY_RESOLUTION,
        img_channels    = 3,
        channel_base    = 256,
        channel_max     = 32,
        num_fp16_res    = 0,
        conv_clamp      = None,
        mapping_kwargs  = dnnlib.EasyDict(num_layers=2),
    )
    kwargs.update(copy.deepcopy(overrides))
    return kwargs

def sg2_discriminator_kwargs(**overrides):
    """StyleGAN2 residual discriminator at 16 px: channel_base 256, channel_max 32, mbstd group 4."""
    kwargs = dnnlib.EasyDict(
        class_name      = 'training.networks_stylegan2.Discriminator',
        c_dim           = 0,
        img_resolution  = TINY_RESOLUTION,
        img_channels    = 3,
        channel_base    = 256,
        channel_max     = 32,
        num_fp16_res    = 0,
        conv_clamp      = None,
        mapping_kwargs  = dnnlib.EasyDict(num_layers=2),
        epilogue_kwargs = dnnlib.EasyDict(mbstd_group_size=4),
    )
    kwargs.update(copy.deepcopy(overrides))
    return kwargs

def sg3_generator_kwargs(**overrides):
    """StyleGAN3-T generator at 16 px: channel_base 512, channel_max 32, 4 layers, margin 2."""
    kwargs = dnnlib.EasyDict(
        class_name      = 'training.networks_stylegan3.Generator',
        z_dim           = TINY_Z_DIM,
        c_dim           = 0,
        w_dim           = TINY_W_DIM,
        img_resolution  = TINY_RESOLUTION,
        img_channels    = 3,
        channel_base    = 512,
        channel_max     = 32,
        num_layers      = 4,
        margin_size     = 2,
        num_fp16_res    = 0,
        conv_clamp      = None,
        mapping_kwargs  = dnnlib.EasyDict(num_layers=2),
    )
    kwargs.update(copy.deepcopy(overrides))
    return kwargs

def sg3r_generator_kwargs(**overrides):
    """StyleGAN3-R generator at 16 px: 1x1 convolutions, radial filters, doubled channel_base/max."""
    kwargs = sg3_generator_kwargs(channel_base=1024, channel_max=64, conv_kernel=1, use_radial_filters=True)
    kwargs.update(copy.deepcopy(overrides))
    return kwargs

def build(kwargs, **overrides):
    """Construct a network from one of the kwargs dicts above (overrides replace top-level keys)."""
    kwargs = copy.deepcopy(dict(kwargs))
    kwargs.update(overrides)
    return dnnlib.construct_class_by_name(**kwargs)

#----------------------------------------------------------------------------
