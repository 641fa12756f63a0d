"""Latent interpolation videos: a grid of cells, each looping smoothly through keyframe seeds in W space."""

import os
import random
import re

import click
import numpy as np
import scipy.interpolate
import torch
import tqdm

import dnnlib
from fundus import grades
from torch_utils.device import DeviceError, resolve_device
from training import generate
from training.generate import GenerateError

#----------------------------------------------------------------------------
# Keyframes and interpolation.

def parse_grid(text):
    """'2x3' or '2,3' -> (2, 3) as (columns, rows)."""
    match = re.fullmatch(r'\s*(\d+)\s*[x,]\s*(\d+)\s*', str(text))
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise GenerateError(f'--grid: expected WxH or W,H with positive integers, got "{text}"')
    return int(match.group(1)), int(match.group(2))

def keyframe_seeds(seeds, grid_w, grid_h, num_keyframes=None, shuffle_seed=None):
    """Seeds of every keyframe of every cell. Returns an int array [grid_h, grid_w, num_keyframes]."""
    seeds = list(seeds)
    cells = grid_w * grid_h
    if num_keyframes is None:
        if len(seeds) % cells != 0:
            raise GenerateError(f'--seeds: {len(seeds)} seeds do not fill a {grid_w}x{grid_h} grid evenly; give a multiple of {cells} or set --num-keyframes')
        num_keyframes = len(seeds) // cells
    if num_keyframes < 1:
        raise GenerateError('--num-keyframes: must be at least 1')
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(seeds)
    # Keyframe k of cell i uses the (k * cells + i)-th seed, wrapping around when there are too few seeds.
    flat = [seeds[(k * cells + i) % len(seeds)] for k in range(num_keyframes) for i in range(cells)]
    return np.array(flat, dtype=np.int64).reshape(num_keyframes, grid_h, grid_w).transpose(1, 2, 0)

def map_seeds(G, seeds, class_idx=None, truncation_psi=1.0, device=torch.device('cpu')):
    """ws of every seed. Returns float32 ndarray [N, num_ws, w_dim]."""
    z = torch.from_numpy(generate.seed_latents(seeds, G.z_dim)).to(device=device, dtype=torch.float32) # [N, z_dim]
    c = generate.one_hot(class_idx, G.c_dim, len(seeds), device)                                         # [N, c_dim]
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=truncation_psi)                                                # [N, num_ws, w_dim]
    return ws.cpu().numpy()

def make_interpolator(ws_keys, wraps=2):
    """Cubic, looping interpolation through keyframes [K, num_ws, w_dim]; t is measured in keyframes.

    The keyframes are repeated `wraps` times before and after, so the curve near either end bends as it does
    in the middle and frame K*w_frames joins frame 0 without a kink.
    """
    num_keys = ws_keys.shape[0]
    if num_keys == 1:
        return lambda t: ws_keys[0]
    x = np.arange(-num_keys * wraps, num_keys * (wraps + 1))
    y = np.tile(ws_keys, [wraps * 2 + 1, 1, 1])
    kind = 'cubic' if len(x) >= 4 else 'linear'
    return scipy.interpolate.interp1d(x, y, kind=kind, axis=0)

#----------------------------------------------------------------------------
# Frames and the video file.

def render_frames(G, key_seeds, w_frames, class_idx=None, truncation_psi=1.0, device=torch.device('cpu'), progress=False):
    """Yield video frames as [grid_h*H, grid_w*W, C] uint8 arrays.

    Args:
        G:              Generator in eval mode on `device`.
        key_seeds:      [grid_h, grid_w, K] keyframe seeds (see keyframe_seeds()).
        w_frames:       Frames between two keyframes; the video has K * w_frames frames and loops.
        class_idx:      Class for conditional networks.
        truncation_psi: Truncation applied when mapping the keyframes.
        device:         Where to run.
        progress:       tqdm bar on stderr.
    """
    grid_h, grid_w, num_keys = key_seeds.shape
    ws = map_seeds(G, key_seeds.reshape(-1).tolist(), class_idx, truncation_psi, device) # [h*w*K, num_ws, w_dim]
    ws = ws.reshape(grid_h * grid_w, num_keys, *ws.shape[1:])
    interps = [make_interpolator(ws[i]) for i in range(grid_h * grid_w)]
    for frame_idx in tqdm.tqdm(range(num_keys * w_frames), unit='frame', disable=not progress, leave=False):
        t = frame_idx / w_frames
        w = np.stack([f(t) for f in interps]).astype(np.float32)                       # [cells, num_ws, w_dim]
        with torch.no_grad():
            img = G.synthesis(torch.from_numpy(w).to(device), noise_mode='const')    # [cells, C, H, W]
        tiles = generate.to_uint8(img)                                                 # [cells, H, W, C]
        frame = generate.make_grid(tiles, cols=grid_w)
        if frame.shape[2] == 1:
            frame = np.repeat(frame, 3, axis=2) # H.264 in yuv420p wants RGB input.
        yield frame

def write_video(path, frames, fps=60, bitrate='12M'):
    """Encode frames with libx264 (imageio-ffmpeg) to a temp file, then rename it into place. Returns frame count."""
    import imageio.v2 as imageio # The ffmpeg binary comes from the imageio-ffmpeg wheel.
    count = 0
    # The encoder picks the container from the extension; a name without one is written as .mp4.
    with dnnlib.atomic_path(path, suffix=os.path.splitext(path)[1] or '.mp4') as tmp:
        with imageio.get_writer(tmp, format='FFMPEG', mode='I', fps=fps, codec='libx264', bitrate=bitrate, macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(frame)
                count += 1
    return count

def run(network, seeds, shuffle_seed=None, grid='1x1', num_keyframes=None, w_frames=120, trunc=1.0, output='out.mp4',
        class_text=None, device='auto', progress=True):
    """The whole tool as a function. Returns the number of frames written."""
    seed_list = generate.parse_range(seeds)
    grid_w, grid_h = parse_grid(grid)
    if w_frames < 1:
        raise GenerateError(f'--w-frames={w_frames}: must be at least 1')
    key_seeds = keyframe_seeds(seed_list, grid_w, grid_h, num_keyframes, shuffle_seed)
    dev = resolve_device(device)
    G = generate.load_generator(network, dev)
    class_idx = grades.class_index(class_text, G.c_dim)
    frames = render_frames(G, key_seeds, w_frames, class_idx=class_idx, truncation_psi=trunc, device=dev, progress=progress)
    return write_video(output, frames)

#----------------------------------------------------------------------------

@click.command()
@click.option('--network',          help='Network pickle: path or URL (G_ema is used)', metavar='PATH', required=True)
@click.option('--seeds',            help='Keyframe seeds, e.g. 0-31 or 0,5,9', metavar='LIST', required=True)
@click.option('--shuffle-seed',     help='Shuffle the seeds with this random seed', type=int, default=None)
@click.option('--grid',             help='Grid of cells, WxH or W,H', metavar='WxH', default='1x1', show_default=True)
@click.option('--num-keyframes',    help='Keyframes per cell [default: seeds / cells]', type=int, default=None)
@click.option('--w-frames',         help='Frames between two keyframes', type=int, default=120, show_default=True)
@click.option('--trunc', 'trunc',   help='Truncation psi', type=float, default=1, show_default=True)
@click.option('--class', 'class_text', help='Class for conditional networks: an index or a grade name such as DR1', metavar='NAME')
@click.option('--output',           help='Output video (.mp4, H.264, 60 fps)', metavar='FILE', required=True)
@click.option('--device',           help='Where to run', type=click.Choice(['auto', 'cpu', 'cuda']), default='auto', show_default=True)
def main(network, seeds, shuffle_seed, grid, num_keyframes, w_frames, trunc, class_text, output, device):
    """Render a latent-space interpolation video (looping) from a network pickle.

    \b
    Examples:
    # A 4x2 grid, each cell moving through 4 keyframes (32 seeds), 2 seconds per keyframe.
    python gen_video.py --network=network-snapshot-000200.pkl --seeds=0-31 --grid=4x2 --output=lerp.mp4
    """
    try:
        count = run(network, seeds, shuffle_seed=shuffle_seed, grid=grid, num_keyframes=num_keyframes, w_frames=w_frames,
                    trunc=trunc, output=output, class_text=class_text, device=device)
    except (GenerateError, DeviceError, grades.GradeError) as e:
        raise click.ClickException(str(e)) from None
    print(f'Wrote {count} frames to {output}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
