"""Signs of mode collapse in training snapshots: per grade, 32 latents through G_ema (and G where the
snapshot has it). Results go to docs/collapse.md (the diagnostic runs).

    python bench/collapse.py runs/00000-*/network-snapshot-*.pkl      # ours or NVIDIA's snapshots
    python bench/collapse.py phantoms-4000-32.zip                     # the same measures on the reals

Printed per snapshot and network, one value per grade:
  std    the pixel std across the 32 images (values in [-1, 1]), averaged over pixels and channels;
  left   the share of images whose optic disc, the brightest spot of the luminance blurred with a
         Gaussian of sigma = width / 20, lies in the left half (the phantoms: half left eyes, half right);
  style  (StyleGAN3 only, one value) the std across latents of every synthesis layer's styles divided by
         their mean absolute value, averaged over layers and grades: how much of each layer's modulation
         z still moves.
"""

import json
import os
import pickle
import sys

import click
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_utils.persistence import load_network_pkl # pylint: disable=wrong-import-position
from training.dataset import ImageFolderDataset # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def gaussian_blur(img, sigma):                                                # img: [N, C, H, W]
    r = int(3 * sigma) + 1
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t.square() / (2 * sigma ** 2))
    k = k / k.sum()
    ch = img.shape[1]
    x = F.conv2d(img, k.view(1, 1, 1, -1).expand(ch, 1, 1, -1), padding=(0, r), groups=ch)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(ch, 1, -1, 1), padding=(r, 0), groups=ch)

def left_share(img):                                                          # img: [N, 3, H, W] in [-1, 1]
    width = img.shape[-1]
    lum = gaussian_blur(img.mean(1, keepdim=True), width / 20)[:, 0]          # [N, H, W]
    column = lum.flatten(1).argmax(1) % width
    return float((column < width / 2).float().mean())

def style_ratio(G, ws):                                                       # ws: [N, num_ws, w_dim]
    syn = G.synthesis
    if not hasattr(syn, 'layer_names'): # StyleGAN2: its styles sit in blocks; not measured.
        return None
    ratios = []
    for i, name in enumerate(syn.layer_names):
        styles = getattr(syn, name).affine(ws[:, i + 1])                      # [N, in_channels]
        ratios.append(float(styles.std(0).mean() / styles.abs().mean()))
    return float(np.mean(ratios))

def measure_network(G, num=32, seed=123):
    torch.manual_seed(seed) # StyleGAN2's noise inputs draw from the global generator.
    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    stds, lefts, ratios = [], [], []
    for grade in range(max(G.c_dim, 1)):
        c = torch.zeros(num, G.c_dim)
        if G.c_dim:
            c[:, grade] = 1
        with torch.no_grad():
            ws = G.mapping(z, c)
            img = G.synthesis(ws).clamp(-1, 1)
            ratios.append(style_ratio(G, ws))
        stds.append(round(float(img.std(0).mean()), 3))
        lefts.append(round(left_share(img), 2))
    style = None if ratios[0] is None else round(float(np.mean(ratios)), 3)
    return dict(std=stds, left=lefts, style=style)

def read_reals(path, num):
    dataset = ImageFolderDataset(path=path)
    images = [dataset[i][0] for i in range(min(num, len(dataset)))]            # uint8 [C, H, W] each
    return torch.from_numpy(np.stack(images)).float() / 127.5 - 1

#----------------------------------------------------------------------------

@click.command()
@click.argument('paths', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True, help='torch threads (training may share the machine)')
def main(paths, threads):
    """Collapse measures of network snapshots (.pkl) or of a dataset zip's first images."""
    torch.set_num_threads(threads)
    for path in paths:
        if path.endswith('.zip'):
            try:
                reals = read_reals(path, 160)
            except (OSError, ValueError) as e:
                raise click.ClickException(f'{path}: not a dataset zip ({e})') from None
            print(os.path.basename(path), json.dumps(dict(std=round(float(reals[:32].std(0).mean()), 3),
                                                          left=round(left_share(reals), 3))))
            continue
        try:
            with open(path, 'rb') as f:
                data = load_network_pkl(f)
        except (OSError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as e: # Not a network pickle: name the file, write nothing more.
            raise click.ClickException(f'{path}: not a network snapshot ({e})') from None
        result = {key: measure_network(data[key].eval()) for key in ('G_ema', 'G') if key in data}
        print(os.path.basename(path), json.dumps(result))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
