# Shared pieces of fundus.fundusgan: the package error, and the few generator facts every module needs
# (w_avg, num_ws, synthesis from ws) in one place, so SG2, SG3 and official-layout generators look alike.

import os

import torch

from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

class FundusGANError(ValueError):
    """Bad input for fundus.fundusgan (a file, an option, a network); the CLI prints it as one line."""

def load_snapshot(path, option):
    """The dict of a network snapshot through our safe loader; a missing or unreadable file is one line naming `option`."""
    if not os.path.isfile(path):
        raise FundusGANError(f'{option}={path}: no such file')
    try:
        return persistence.load_network_pkl(path)
    except Exception as e: # A bad pickle may raise anything; report it as one line.
        raise FundusGANError(f'{option}={path}: cannot load ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})') from None

#----------------------------------------------------------------------------

def w_avg_of(G, where='generator'):
    """The generator's mean latent [w_dim]; a clear error when the snapshot does not track one."""
    mapping = getattr(G, 'mapping', None)
    w_avg = getattr(mapping, 'w_avg', None)
    if not isinstance(w_avg, torch.Tensor):
        raise FundusGANError(f'{where}: the generator has no mapping.w_avg (it was built with w_avg_beta=None?); '
                             'the encoder predicts offsets from w_avg and needs it')
    return w_avg

def num_ws_of(G):
    return int(G.num_ws) if hasattr(G, 'num_ws') else int(G.synthesis.num_ws)

def synthesize(G, ws):
    """Image [N, C, R, R] from ws [N, num_ws, w_dim] without noise randomness (noise_mode='const')."""
    misc.assert_shape(ws, [None, num_ws_of(G), G.w_dim], 'ws')
    return G.synthesis(ws, noise_mode='const', force_fp32=True)

def check_image_size(images, resolution, where='input'):
    """Square images of the generator's resolution, else one error naming both sizes."""
    if images.ndim != 4 or images.shape[2] != resolution or images.shape[3] != resolution:
        got = f'{images.shape[-1]}x{images.shape[-2]}' if images.ndim >= 2 else str(list(images.shape))
        raise FundusGANError(f'{where}: images are {got}, but the generator makes {resolution}x{resolution}; '
                             f'resize them (dataset_tool.py --resolution={resolution})')

def describe_generator(G):
    """Plain facts identifying the generator an encoder serves (stored in encoder snapshots)."""
    return dict(class_name=f'{type(G).__module__}.{type(G).__qualname__}', img_resolution=int(G.img_resolution),
                img_channels=int(G.img_channels), w_dim=int(G.w_dim), num_ws=num_ws_of(G))

#----------------------------------------------------------------------------

def dataset_file(ds, idx):
    """File name (inside the zip/folder) of item idx of a training.dataset.ImageFolderDataset."""
    return ds._image_fnames[ds.get_details(idx).raw_idx] # No public accessor yet; one place to change.

#----------------------------------------------------------------------------
