# Generators an encoder drives. `reconstruct` is the one entry point used by training, inversion and the
# metrics: psp = w_avg + E(x) into any of our generators (SG2, SG3-T/R, official pickles); fundusgan =
# the dilated generator below, which also takes the encoder's pyramid.

import numpy as np
import torch
from torch import nn

from fundus.fundusgan import common
from fundus.fundusgan import encoder as encoder_lib
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from training import networks_stylegan2 as sg2

#----------------------------------------------------------------------------

def takes_pyramid(G):
    return bool(getattr(G, 'takes_pyramid', False))

def reconstruct(E, G, img):
    """(image [N, C, R, R], ws [N, num_ws, w_dim]) reconstructed from img [N, C, R, R] in [-1, 1]."""
    if takes_pyramid(G):
        offsets, feats = E(img, return_pyramid=True)
        ws = common.w_avg_of(G)[None, None, :] + offsets
        return G.synthesis(ws, feats, noise_mode='const'), ws
    ws = encoder_lib.encode(E, G, img)
    return common.synthesize(G, ws), ws

def synthesize_ws(G, ws, feats=None):
    """Image from given ws (and, for fundusgan, the pyramid of the photo they came from)."""
    if takes_pyramid(G):
        if feats is None:
            raise common.FundusGANError('the fundusgan generator needs encoder features next to the ws')
        return G.synthesis(ws, feats, noise_mode='const')
    return common.synthesize(G, ws)

#----------------------------------------------------------------------------
# The FundusGAN generator (our reading of arXiv 2503.17831; choices in docs/fundusgan.md):
#   input      the encoder's mid level [N, F, R/16, R/16] through a 1x1 convolution replaces the constant;
#   layer 0    a modulated 3x3 convolution with dilation `dilation` (8) at R/16;
#   blocks     StyleGAN2 SynthesisBlocks b{R/8} ... b{R} (upsampling conv0, conv1, ToRGB; same names and
#              shapes as in an SG2 generator of resolution R, so they initialise from its snapshot);
#   post       `post_layers` modulated 3x3 convolutions at R with dilations 2, 4, ... and no upsampling,
#              plus a ToRGB; at 512 px the upsampling ends with layer 8 and these are layers 9, 10, ...;
#   skips      'delta': zero-initialised 1x1 convolutions add the mid level after layer 0 and the high
#              level [N, F, R/8, R/8] into b{R/8}'s features (the generator starts as the plain one).
# ws: [layer 0, then 2 per block (the ToRGB w shared with the next conv0, as SG2), the last ToRGB,
#      one per post layer, the post ToRGB].

SKIPS = ('delta', 'none')

class DilatedModulatedConv(nn.Module):
    """Modulated, demodulated 3x3 convolution with dilation (no resampling), noise, bias, lrelu."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, dilation=1):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.dilation = in_channels, out_channels, resolution, dilation
        self.affine = sg2.FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.register_buffer('noise_const', torch.randn([resolution, resolution]))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='const'):                    # x: [N, I, r, r], w: [N, w_dim]
        N, I, r = x.shape[0], self.in_channels, self.resolution
        misc.assert_shape(x, [None, I, r, r], 'x')
        styles = self.affine(w)                                     # [N, I]
        k = self.weight[None] * styles[:, None, :, None, None]      # [N, O, I, 3, 3]
        k = k * (k.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        y = torch.nn.functional.conv2d(x.reshape(1, N * I, r, r), k.reshape(-1, I, 3, 3), padding=self.dilation,
                                       dilation=self.dilation, groups=N).reshape(N, self.out_channels, r, r)
        if noise_mode == 'const':
            y = y + self.noise_const * self.noise_strength
        return bias_act.bias_act(y, self.bias, act='lrelu', gain=np.sqrt(2))

    def extra_repr(self):
        return f'in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, dilation={self.dilation}'

#----------------------------------------------------------------------------

class FundusSynthesis(nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, fpn_channels, channel_base=32768, channel_max=512,
                 dilation=8, skips='delta', post_layers=2):
        super().__init__()
        if skips not in SKIPS:
            raise common.FundusGANError(f'--skips={skips}: must be one of {", ".join(SKIPS)}')
        self.w_dim, self.img_resolution, self.img_channels, self.skips = w_dim, img_resolution, img_channels, skips
        self.start = img_resolution // 16
        self.block_resolutions = [self.start * 2 ** i for i in range(1, 5)]             # R/8, R/4, R/2, R
        ch = {res: min(channel_base // res, channel_max) for res in [self.start] + self.block_resolutions}
        self.input = nn.Conv2d(fpn_channels, ch[self.start], 1)
        self.layer0 = DilatedModulatedConv(ch[self.start], ch[self.start], w_dim, self.start, dilation)
        for res in self.block_resolutions:
            block = sg2.SynthesisBlock(ch[res // 2], ch[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                                       is_last=(res == img_resolution), conv_clamp=None)
            self.add_module(f'b{res}', block)
        self.post = nn.ModuleList([DilatedModulatedConv(ch[img_resolution], ch[img_resolution], w_dim, img_resolution, 2 ** (i + 1))
                                   for i in range(post_layers)])
        self.post_torgb = sg2.ToRGBLayer(ch[img_resolution], img_channels, w_dim) if post_layers else None
        if skips == 'delta':
            self.skip_mid = nn.Conv2d(fpn_channels, ch[self.start], 1)
            self.skip_high = nn.Conv2d(fpn_channels, ch[self.start * 2], 1)
            for conv in (self.skip_mid, self.skip_high):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.num_ws = 1 + 2 * len(self.block_resolutions) + 1 + post_layers + (1 if post_layers else 0)

    def forward(self, ws, feats, noise_mode='const', **_kwargs):   # ws: [N, num_ws, w_dim]
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        misc.assert_shape(feats['mid'], [ws.shape[0], None, self.start, self.start], 'mid level')
        x = self.layer0(self.input(feats['mid']), ws[:, 0], noise_mode=noise_mode)    # [N, C, R/16, R/16]
        if self.skips == 'delta':
            x = x + self.skip_mid(feats['mid'])
        img, k = None, 1
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x, img = block(x, img, ws[:, k:k + block.num_conv + block.num_torgb], noise_mode=noise_mode, force_fp32=True)
            if self.skips == 'delta' and res == self.start * 2:
                x = x + self.skip_high(feats['high'])                                 # [N, C, R/8, R/8]
            k += block.num_conv
        k += 1
        for layer in self.post:
            x = layer(x, ws[:, k], noise_mode=noise_mode)
            k += 1
        if self.post_torgb is not None:
            img = img + self.post_torgb(x, ws[:, k])
        return img

#----------------------------------------------------------------------------

@persistence.persistent_class
class FundusGenerator(nn.Module):
    """Mapping (for w_avg) + FundusSynthesis; synthesis(ws, pyramid) -> [N, C, R, R]."""
    takes_pyramid = True

    def __init__(self,
        z_dim,                  # Latent size of the base generator (kept for its mapping network).
        w_dim,                  # Length of w.
        img_resolution,         # Output side; a power of two >= 32.
        img_channels,           # Output channels.
        fpn_channels,           # Channels of the encoder's pyramid levels.
        channel_base    = 32768,# As the base SG2 generator (shapes must match to initialise from it).
        channel_max     = 512,  # As the base SG2 generator.
        dilation        = 8,    # Dilation of layer 0.
        skips           = 'delta', # 'delta' or 'none'.
        post_layers     = 2,    # Dilated layers at full resolution.
        c_dim           = 0,    # Labels are not used; kept for a uniform interface.
        mapping_kwargs  = None, # Options of the base generator's mapping network.
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = FundusSynthesis(w_dim, img_resolution, img_channels, fpn_channels, channel_base, channel_max,
                                         dilation, skips, post_layers)
        self.num_ws = self.synthesis.num_ws
        self.mapping = sg2.MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {}))

#----------------------------------------------------------------------------

def build_fundusgan(G_base, fpn_channels, dilation=8, skips='delta', post_layers=2, seed=0):
    """A FundusGenerator initialised from a StyleGAN2 generator wherever names and shapes match."""
    if not isinstance(getattr(G_base, 'synthesis', None), sg2.SynthesisNetwork):
        raise common.FundusGANError('--arch=fundusgan builds on StyleGAN2 synthesis blocks: --generator must be a StyleGAN2 snapshot '
                                    f'(got {type(G_base.synthesis).__module__}.{type(G_base.synthesis).__qualname__})')
    kw = G_base.init_kwargs
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2)
        G = FundusGenerator(z_dim=G_base.z_dim, w_dim=G_base.w_dim, img_resolution=G_base.img_resolution,
                            img_channels=G_base.img_channels, fpn_channels=fpn_channels,
                            channel_base=kw.get('channel_base', 32768), channel_max=kw.get('channel_max', 512),
                            dilation=dilation, skips=skips, post_layers=post_layers, c_dim=G_base.c_dim,
                            mapping_kwargs=kw.get('mapping_kwargs'))
    base = G_base.state_dict()
    own = G.state_dict()
    copied = {k: v for k, v in base.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    G.load_state_dict(copied, strict=False)
    G._copied_from_base = set(copied)
    return G.to(common.w_avg_of(G_base).device)

def is_new_param(G, name):
    """True for parameters build_fundusgan did not copy from the base generator."""
    return name not in getattr(G, '_copied_from_base', set())

#----------------------------------------------------------------------------
