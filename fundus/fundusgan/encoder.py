# The w+ encoder: a ResNet trunk (torchvision's BasicBlock/Bottleneck definitions, ResNet-18/34/50 layer
# counts, a configurable base width), a feature pyramid (Lin et al. 2017: lateral 1x1 convolutions and a
# top-down upsample-add path) with three levels, and one map-to-style head per w (pSp, Richardson et al.
# 2021, GradualStyleBlock: stride-2 3x3 convolutions down to 1x1, then a linear layer).
#
# Pyramid levels for an R x R input (l = stride exponent):
#   low  (coarse ws, optic disc / macula)        p5 = lat5(c5)             [N, F, R/2^5, R/2^5]
#   mid  (middle ws, vessels)                    p4 = up(p5) + lat4(c4)    [N, F, R/2^4, R/2^4]
#   high (fine ws, microvasculature / lesions)   p3 = up(p4) + lat3(c3)    [N, F, R/2^3, R/2^3]
# Style split as pSp: ws[0:coarse_end] from low, ws[coarse_end:middle_end] from mid, the rest from high.
# The encoder predicts offsets; ws = w_avg + offsets (pSp's start_from_latent_avg).

import math

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import resnet as tv_resnet

from fundus.fundusgan import common
from torch_utils import misc
from torch_utils import persistence

BACKBONES = {
    'resnet18': (tv_resnet.BasicBlock, (2, 2, 2, 2)),
    'resnet34': (tv_resnet.BasicBlock, (3, 4, 6, 3)),
    'resnet50': (tv_resnet.Bottleneck, (3, 4, 6, 3)),
}
MIN_RESOLUTION = 32 # The low level sits at R/32 and must be at least 1x1.

#----------------------------------------------------------------------------

class ResNetTrunk(nn.Module):
    """torchvision's ResNet stem and layer1-4 without pooling/fc; parameter names match torchvision's,
    so at width 64 a torchvision ResNet state dict loads into it."""

    def __init__(self, arch, width=64, in_channels=3):
        super().__init__()
        block, layers = BACKBONES[arch]
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.channels = [width * k * block.expansion for k in (2, 4, 8)] # c3, c4, c5

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(tv_resnet.conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):                                       # x: [N, 3, R, R]
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))    # [N, w, R/4, R/4]
        c2 = self.layer1(x)
        c3 = self.layer2(c2)                                    # [N, C_3, R/2^3, R/2^3]
        c4 = self.layer3(c3)                                    # [N, C_4, R/2^4, R/2^4]
        c5 = self.layer4(c4)                                    # [N, C_5, R/2^5, R/2^5]
        return c3, c4, c5

#----------------------------------------------------------------------------

class MapToStyle(nn.Module):
    """log2(side) stride-2 3x3 convolutions with LeakyReLU(0.01) down to 1x1, then Linear -> w."""

    def __init__(self, channels, side, w_dim):
        super().__init__()
        convs = []
        for _ in range(max(0, int(math.log2(side)))):
            convs += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*convs)
        self.linear = nn.Linear(channels, w_dim)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):                                       # x: [N, F, side, side]
        x = F.adaptive_avg_pool2d(self.convs(x), 1).flatten(1)  # [N, F]
        return self.linear(x)                                   # [N, w_dim]

#----------------------------------------------------------------------------

def style_levels(num_ws, coarse_end, middle_end):
    """Level ('low'/'mid'/'high') of every w index; checks the split."""
    if not 0 < coarse_end <= middle_end <= num_ws:
        raise common.FundusGANError(f'style split: need 0 < coarse_end ({coarse_end}) <= middle_end ({middle_end}) '
                                    f'<= num_ws ({num_ws})')
    return ['low' if i < coarse_end else 'mid' if i < middle_end else 'high' for i in range(num_ws)]

@persistence.persistent_class
class Encoder(nn.Module):
    """Image [N, 3, R, R] in [-1, 1] -> w offsets [N, num_ws, w_dim] (+ the pyramid levels)."""

    def __init__(self,
        img_resolution,             # Side of the (square) input, equal to the generator's output.
        num_ws,                     # How many ws the served generator takes (G.num_ws).
        w_dim,                      # Length of each w.
        backbone        = 'resnet34',# 'resnet18', 'resnet34' or 'resnet50'.
        width           = 64,       # Base width of the trunk (64 = torchvision's ResNets).
        fpn_channels    = 512,      # Channels F of every pyramid level.
        coarse_end      = 3,        # ws[0:coarse_end] come from the low level (pSp: 3).
        middle_end      = 7,        # ws[coarse_end:middle_end] from the mid level (pSp: 7); the rest from high.
        img_channels    = 3,        # Channels of the input image.
        generator_info  = None,     # Facts of the served generator (common.describe_generator), checked on load.
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise common.FundusGANError(f'--backbone={backbone}: must be one of {", ".join(BACKBONES)}')
        if img_resolution < MIN_RESOLUTION or img_resolution % 32:
            raise common.FundusGANError(f'encoder: resolution {img_resolution} must be a multiple of 32 (>= {MIN_RESOLUTION})')
        self.img_resolution, self.num_ws, self.w_dim = img_resolution, num_ws, w_dim
        self.img_channels, self.fpn_channels = img_channels, fpn_channels
        self.levels = style_levels(num_ws, min(coarse_end, num_ws), min(middle_end, num_ws))
        self.generator_info = dict(generator_info or {})
        self.trunk = ResNetTrunk(backbone, width, img_channels)
        c3, c4, c5 = self.trunk.channels
        self.lat3, self.lat4, self.lat5 = nn.Conv2d(c3, fpn_channels, 1), nn.Conv2d(c4, fpn_channels, 1), nn.Conv2d(c5, fpn_channels, 1)
        sides = dict(low=img_resolution // 32, mid=img_resolution // 16, high=img_resolution // 8)
        self.heads = nn.ModuleList([MapToStyle(fpn_channels, sides[level], w_dim) for level in self.levels])
        # Small initial offsets: training starts at the w_avg image.
        for head in self.heads:
            head.linear.weight.data.mul_(0.1)

    def pyramid(self, img):
        """Pyramid levels {'low', 'mid', 'high'} (shapes in the module header)."""
        common.check_image_size(img, self.img_resolution, 'encoder input')
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        c3, c4, c5 = self.trunk(img)
        p5 = self.lat5(c5)                                                         # [N, F, R/32, R/32]
        p4 = F.interpolate(p5, size=c4.shape[2:], mode='bilinear', align_corners=False) + self.lat4(c4) # [N, F, R/16, R/16]
        p3 = F.interpolate(p4, size=c3.shape[2:], mode='bilinear', align_corners=False) + self.lat3(c3) # [N, F, R/8, R/8]
        return dict(low=p5, mid=p4, high=p3)

    def forward(self, img, return_pyramid=False):
        feats = self.pyramid(img)
        offsets = torch.stack([head(feats[level]) for head, level in zip(self.heads, self.levels)], dim=1) # [N, num_ws, w_dim]
        return (offsets, feats) if return_pyramid else offsets

    def extra_repr(self):
        return f'img_resolution={self.img_resolution}, num_ws={self.num_ws}, w_dim={self.w_dim}, fpn_channels={self.fpn_channels}'

#----------------------------------------------------------------------------

def build_encoder(G, backbone='resnet34', width=64, fpn_channels=512, coarse_end=3, middle_end=7, seed=0):
    """An encoder for generator G, initialised from `seed` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Encoder(img_resolution=int(G.img_resolution), num_ws=common.num_ws_of(G), w_dim=int(G.w_dim),
                       backbone=backbone, width=width, fpn_channels=fpn_channels, coarse_end=coarse_end,
                       middle_end=middle_end, img_channels=int(G.img_channels), generator_info=common.describe_generator(G))

def load_backbone_weights(E, path):
    """Copy conv/bn weights of a torchvision ResNet state dict (local file) into E.trunk; returns the count."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise common.FundusGANError(f'--backbone-weights={path}: cannot read ({str(e).splitlines()[0]})') from None
    state = state.get('state_dict', state) if isinstance(state, dict) else {}
    own = E.trunk.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    needed = [k for k in own if not k.endswith('num_batches_tracked')]
    if not all(k in matched for k in needed):
        raise common.FundusGANError(f'--backbone-weights={path}: no tensor matches for {sum(k not in matched for k in needed)} of the '
                                    f'{len(needed)} trunk tensors (a torchvision ResNet state dict of the same depth, at --width=64, is expected)')
    E.trunk.load_state_dict(matched, strict=False)
    return len(matched)

def encode(E, G, img):
    """ws [N, num_ws, w_dim] = w_avg + E(img)."""
    return common.w_avg_of(G)[None, None, :] + E(img)

def check_pairing(E, G, where='encoder snapshot'):
    """The encoder must serve this generator: same num_ws, w_dim and resolution."""
    info = common.describe_generator(G)
    for key, mine in (('num_ws', E.num_ws), ('w_dim', E.w_dim), ('img_resolution', E.img_resolution)):
        if int(info[key]) != int(mine):
            raise common.FundusGANError(f'{where}: the encoder was built for a generator with {key}={mine}, '
                                        f'this generator has {key}={info[key]}')

#----------------------------------------------------------------------------
