# Classifiers (torchvision ResNet-18/50 and MobileNetV3-small, plus a tiny CNN for tests and CPU studies),
# the fixed training recipe, classic fundus augmentation, and prediction.
#
# Recipe (the same for every condition, so only the training data differ): AdamW, cosine learning-rate decay
# to 0 over a fixed number of steps, batches drawn with replacement from the condition's training pool by a
# per-seed torch.Generator, cross-entropy; every `val_every` steps the model is scored on the real validation
# set and the weights with the best quadratic kappa are kept. Inputs are x / 127.5 - 1. Mixed precision
# (float16 autocast + gradient scaling) on CUDA only.

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import tqdm

from fundus.classify import stats
from fundus.classify.config import ClassifyError

#----------------------------------------------------------------------------

class TinyNet(torch.nn.Module):
    """Four conv-BN-ReLU stages (stride 2) and a linear head: a fast CPU model for small images."""
    def __init__(self, num_classes, width=16):
        super().__init__()
        layers, c_in = [], 3
        for i in range(4):
            c_out = width * 2 ** min(i, 2)
            layers += [torch.nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), torch.nn.BatchNorm2d(c_out), torch.nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(c_in, num_classes)

    def forward(self, x):                                                   # x: [N, 3, H, W]
        return self.head(self.features(x).mean(dim=(2, 3)))                 # [N, K]

def build_model(arch, num_classes, seed, width=16, weights=None):
    """A fresh model whose initial weights depend only on `seed` (the global RNG is restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == 'tiny':
            net = TinyNet(num_classes, width)
        elif arch == 'resnet18':
            net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
        elif arch == 'resnet50':
            net = torchvision.models.resnet50(weights=None, num_classes=num_classes)
        elif arch == 'mobilenet_v3_small':
            net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes)
        else:
            raise ClassifyError(f'model.arch={arch!r}: unknown model')
    if weights is not None:
        load_weights(net, weights)
    return net

def load_weights(net, path):
    """Start from a local state dict (e.g. ImageNet weights saved earlier); the classifier head is kept fresh
    when its shape differs."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise ClassifyError(f'model.weights: cannot load {path} ({type(e).__name__})') from None
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ClassifyError(f'model.weights: {path} has no tensor that fits this model')
    net.load_state_dict(usable, strict=False)

#----------------------------------------------------------------------------
# Classic augmentation for fundus photographs: flips, any rotation (the field of view is a circle), and mild
# brightness (multiplicative, so the black surround stays black), contrast and saturation jitter. Random numbers come from the caller's generator.

def classic_augment(x, gen):
    """x: float [N, 3, H, W] in [-1, 1] -> augmented copy."""
    n = x.shape[0]
    r = torch.rand(n, 6, generator=gen)                                      # [N, 6] uniform
    x = torch.where((r[:, 0] < 0.5)[:, None, None, None], x.flip(3), x)
    x = torch.where((r[:, 1] < 0.5)[:, None, None, None], x.flip(2), x)
    angle = r[:, 2] * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1, grid, mode='bilinear', padding_mode='zeros', align_corners=False) - 1 # Black outside.
    bright = 1 + (r[:, 3] - 0.5) * 0.4                                       # x0.8 .. 1.2 of the intensity: black stays black
    contrast = 1 + (r[:, 4] - 0.5) * 0.4                                     # 0.8 .. 1.2 about the image mean
    sat = 1 + (r[:, 5] - 0.5) * 0.3                                          # 0.85 .. 1.15
    gray = x.mean(dim=1, keepdim=True)
    x = gray + (x - gray) * sat[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * contrast[:, None, None, None]
    x = (x + 1) * bright[:, None, None, None] - 1
    return x.clamp(-1, 1)

#----------------------------------------------------------------------------

def to_input(images_u8, device):
    return images_u8.to(device=device, dtype=torch.float32) / 127.5 - 1

@torch.no_grad()
def predict(net, images, device, batch=64):
    """Class probabilities float64 [N, K] for uint8 images [N, 3, R, R] (numpy or tensor)."""
    net.eval()
    images = torch.as_tensor(images)
    out = []
    for i in range(0, images.shape[0], batch):
        logits = net(to_input(images[i:i + batch], device))
        out.append(torch.softmax(logits.float(), dim=1).cpu().double())
    return torch.cat(out).numpy() if out else np.zeros((0, 0))

def _sampler(grades, balanced, gen, batch):
    # Indices of one batch: uniform over the pool, or class-balanced (each grade equally likely).
    if not balanced:
        return torch.randint(0, len(grades), (batch,), generator=gen)
    counts = torch.bincount(grades)
    weights = (1.0 / counts.clamp(min=1).double())[grades]
    return torch.multinomial(weights, batch, replacement=True, generator=gen)

def train(net, images, grades, recipe, seed, val, device, balanced=False, augment=False, progress=False, desc=None):
    """Train `net` on uint8 images [N, 3, R, R] with int grades [N]; returns (best state dict, val history).

    Args:
        recipe:   model options (steps, batch, lr, weight_decay, val_every, amp).
        seed:     seeds the batch order and the augmentation (init is seeded in build_model).
        val:      (images, grades) of the real validation set, for picking the kept weights.
        balanced: class-balanced sampling (the real+oversample condition).
        augment:  classic augmentation (the real+classic condition).
    """
    if len(grades) == 0:
        raise ClassifyError('a condition has no training images')
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    images, grades = torch.as_tensor(images), torch.as_tensor(grades, dtype=torch.int64)
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe['lr'], weight_decay=recipe['weight_decay'])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, recipe['steps']) / recipe['steps'])))
    amp = bool(recipe['amp']) and device.type == 'cuda'
    scaler = torch.amp.GradScaler('cuda', enabled=amp)
    best, history = (-float('inf'), None), []
    bar = tqdm.tqdm(total=recipe['steps'], desc=desc, unit='step', leave=False, disable=not progress, dynamic_ncols=True)
    for step in range(recipe['steps']):
        net.train()
        idx = _sampler(grades, balanced, gen, recipe['batch'])
        x = to_input(images[idx], device)
        x = classic_augment(x.cpu(), gen).to(device) if augment else x
        with torch.autocast(device_type='cuda', dtype=torch.float16, enabled=amp):
            loss = F.cross_entropy(net(x).float(), grades[idx].to(device))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        bar.update(1)
        if (step + 1) % recipe['val_every'] == 0 or step + 1 == recipe['steps']:
            best = _validate(net, val, device, step + 1, best, history, recipe)
    bar.close()
    return best[1], history

def _validate(net, val, device, step, best, history, recipe):
    probs = predict(net, val[0], device)
    num_classes = probs.shape[1]
    kappa = stats.quadratic_kappa(val[1], probs.argmax(1), num_classes)
    history.append(dict(step=step, val_kappa=float(kappa)))
    if kappa > best[0]:
        return kappa, copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
    return best

#----------------------------------------------------------------------------
