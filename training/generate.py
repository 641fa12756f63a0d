"""Generation library: load a generator, turn seeds into latents and latents into images, tile grids.

A seed always gives the same picture: its latent is `numpy.random.RandomState(seed).randn(1, z_dim)`, as in
NVIDIA's tool, and each image is computed from its own latent only, whatever the batch it lands in.
`gen_images.py`, `gen_video.py`, the report, the demo and the fundus tools all render through this module.
"""

import math
import os
import re

import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
from torch_utils import distributed
from torch_utils import persistence

#----------------------------------------------------------------------------

class GenerateError(Exception):
    """Bad input to the generator tools; the CLI prints the message as one line."""

#----------------------------------------------------------------------------
# Option parsing. Each parser raises GenerateError with a message that names the option.

def parse_range(text, option='--seeds'):
    """Parse '0,1,4-6' into [0, 1, 4, 5, 6] (ranges are inclusive at both ends)."""
    values = []
    for part in str(text).split(','):
        part = part.strip()
        match = re.fullmatch(r'(\d+)(?:\s*-\s*(\d+))?', part)
        if match is None:
            raise GenerateError(f'{option}: cannot read "{part}" in "{text}"; expected non-negative integers and ranges like 0,3,10-19')
        lo = int(match.group(1))
        hi = lo if match.group(2) is None else int(match.group(2))
        if hi < lo:
            raise GenerateError(f'{option}: range "{part}" ends before it starts')
        if hi >= 2 ** 32:
            raise GenerateError(f'{option}: {hi} is too large; seeds must be below 2**32')
        values.extend(range(lo, hi + 1))
    return values

def parse_vec2(text, option='--translate'):
    """Parse 'x,y' into a tuple of two floats."""
    parts = str(text).split(',')
    try:
        if len(parts) != 2:
            raise ValueError
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        raise GenerateError(f'{option}: expected two comma-separated numbers like 0.1,-0.2, got "{text}"') from None

#----------------------------------------------------------------------------
# Network loading.

def load_generator(network, device=torch.device('cpu')):
    """Load G_ema from a network pickle (path or URL), in eval mode, as float32 on `device`."""
    if not dnnlib.util.is_url(network, allow_file_urls=True) and not os.path.isfile(network):
        raise GenerateError(f'--network: no such file: {network}')
    try:
        with dnnlib.open_url(network, verbose=False) as f:
            data = persistence.load_network_pkl(f)
    except Exception as e:
        raise GenerateError(f'--network: cannot load {network}: {_one_line(e)}') from e
    if not isinstance(data, dict) or 'G_ema' not in data:
        raise GenerateError(f'--network: {network} holds no G_ema generator')
    G = data['G_ema']
    return G.eval().requires_grad_(False).to(device)

def _one_line(e):
    text = str(e).strip().splitlines()
    return f'{type(e).__name__}: {text[0]}' if text else type(e).__name__

#----------------------------------------------------------------------------
# Latents, input transforms and pixel conversion.

def seed_latents(seeds, z_dim):
    """One latent per seed exactly as NVIDIA's gen_images.py draws it. Returns float64 [N, z_dim]."""
    return np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds], axis=0)

def make_transform(translate, angle_deg):
    """The 3x3 matrix m that moves the SG3 input by `translate` (fraction of the image) and turns it by `angle_deg`."""
    a = angle_deg / 360.0 * 2 * math.pi
    s, c = math.sin(a), math.cos(a)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], dtype=np.float64)

def set_input_transform(G, translate=(0, 0), rotate=0.0):
    """Point a StyleGAN3 generator's input grid at (translate, rotate); networks without one must get 0, 0."""
    has_input = hasattr(G, 'synthesis') and hasattr(getattr(G.synthesis, 'input', None), 'transform')
    if not has_input:
        if tuple(translate) != (0, 0) or rotate != 0:
            raise GenerateError('--translate/--rotate: only StyleGAN3 networks have a movable input; this one does not')
        return
    # The buffer holds the inverse: it maps output coordinates back to the input grid.
    m = np.linalg.inv(make_transform(translate, rotate))
    G.synthesis.input.transform.copy_(torch.from_numpy(m))

def to_uint8(img):
    """[N, C, H, W] float in [-1, 1] -> [N, H, W, C] uint8, NVIDIA's rounding (x * 127.5 + 128, clamped)."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()

def to_pil(arr):
    """[H, W, C] uint8 -> PIL image; one channel becomes a grayscale ('L') PNG."""
    if arr.shape[2] == 1:
        return PIL.Image.fromarray(arr[:, :, 0], 'L')
    if arr.shape[2] == 3:
        return PIL.Image.fromarray(arr, 'RGB')
    if arr.shape[2] == 4:
        return PIL.Image.fromarray(arr, 'RGBA')
    raise GenerateError(f'cannot write a PNG with {arr.shape[2]} channels (1, 3 or 4 expected)')

def save_png(path, arr):
    """Write an image atomically (temp file + rename), so a crash never leaves a truncated PNG."""
    image = arr if isinstance(arr, PIL.Image.Image) else to_pil(arr)
    dnnlib.atomic_write(path, lambda f: image.save(f, format='PNG'))

def make_grid(images, cols=None):
    """Tile [N, H, W, C] uint8 images row by row; missing cells stay black. Returns [rows*H, cols*W, C]."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.zeros([rows * h, cols * w, c], dtype=images.dtype)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = img
    return grid

#----------------------------------------------------------------------------
# Generation.

def one_hot(class_idx, c_dim, n, device):
    c = torch.zeros([n, c_dim], device=device)
    if class_idx is not None:
        c[:, class_idx] = 1
    return c

def generate_images(G, seeds, class_idx=None, truncation_psi=1.0, noise_mode='const', batch_size=4, device=torch.device('cpu'), progress=False):
    """Render one image per seed.

    Args:
        G:              Generator (G_ema) in eval mode on `device`.
        seeds:          List of integer seeds; seed s uses z = RandomState(s).randn(1, z_dim).
        class_idx:      Class index for conditional networks, None for unconditional ones.
        truncation_psi: Truncation toward w_avg (1 = none).
        noise_mode:     'const', 'random' or 'none' (per-pixel noise of StyleGAN2 layers).
        batch_size:     Images per forward pass; results do not depend on it beyond float rounding.
        device:         Where to run.
        progress:       Show a tqdm bar on stderr.

    Returns:
        Iterator of (seed, [H, W, C] uint8 ndarray), in the order of `seeds`.
    """
    seeds = list(seeds)
    # Random per-pixel noise would otherwise depend on the batch; draw it per seed from the seed itself.
    if noise_mode == 'random':
        batch_size = 1
    bar = tqdm.tqdm(total=len(seeds), unit='img', disable=not progress, leave=False, dynamic_ncols=True)
    with bar:
        for start in range(0, len(seeds), batch_size):
            chunk = seeds[start:start + batch_size]
            z = torch.from_numpy(seed_latents(chunk, G.z_dim)).to(device=device, dtype=torch.float32) # [N, z_dim]
            c = one_hot(class_idx, G.c_dim, len(chunk), device)                                         # [N, c_dim]
            with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                if noise_mode == 'random':
                    torch.manual_seed(chunk[0])
                img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode)                  # [N, C, H, W]
            for seed, arr in zip(chunk, to_uint8(img)):
                yield seed, arr
            bar.update(len(chunk))

def shard(seeds, rank, world_size):
    """Seeds handled by one rank: every world_size-th seed starting at rank."""
    return list(seeds)[rank::world_size]

def seed_filename(seed):
    return f'seed{seed:04d}.png'

def write_grid(outdir, seeds, cols=None, name='grid.png'):
    """Tile the per-seed PNGs already in `outdir` (in seed order) into one grid PNG. Returns its path."""
    images = [np.asarray(PIL.Image.open(os.path.join(outdir, seed_filename(s)))) for s in seeds]
    images = [img[:, :, None] if img.ndim == 2 else img for img in images]
    path = os.path.join(outdir, name)
    save_png(path, make_grid(np.stack(images), cols=cols))
    return path

#----------------------------------------------------------------------------
# The whole gen_images tool as a function.

def write_images(G, seed_list, outdir, class_idx=None, trunc=1.0, noise_mode='const', batch=4, grid=False,
                 device=torch.device('cpu'), progress=True):
    """Render `seed_list` with G into outdir/seedNNNN.png (this rank's share under torchrun).

    Args:
        G:          Generator in eval mode on `device` (see load_generator).
        seed_list:  Integer seeds; seed s is written to seed_filename(s).
        outdir:     Output folder, created if missing.
        class_idx:  Class of a conditional network, None for an unconditional one.
        trunc:      Truncation psi (1 = none).
        noise_mode: 'const', 'random' or 'none'.
        batch:      Images per forward pass (does not change the images).
        grid:       Also tile every seed into outdir/grid.png (rank 0, after all ranks wrote theirs).
        device:     Where G runs.
        progress:   tqdm bar on rank 0.

    Returns:
        The list of PNG paths this rank wrote.
    """
    if batch < 1:
        raise GenerateError(f'--batch={batch}: must be at least 1')
    rank, world = distributed.get_rank(), distributed.get_world_size()
    mine = shard(seed_list, rank, world)
    os.makedirs(outdir, exist_ok=True)
    written = []
    images = generate_images(G, mine, class_idx=class_idx, truncation_psi=trunc, noise_mode=noise_mode,
                             batch_size=batch, device=device, progress=progress and rank == 0)
    for seed, arr in images:
        path = os.path.join(outdir, seed_filename(seed))
        save_png(path, arr)
        written.append(path)
    distributed.barrier()
    if grid and rank == 0:
        written.append(write_grid(outdir, seed_list))
    return written

#----------------------------------------------------------------------------
