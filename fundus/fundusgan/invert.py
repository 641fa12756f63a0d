# Inversion and variants from an encoder snapshot.
#
# Output layout (read by dataset_tool.py --source=DIR and by the classifier study): OUTDIR/<name>.png, one
# image per input (or per pair / variant), OUTDIR/dataset.json {"labels": [[file, label], ...]} with the
# source's labels when it has a dataset.json (else "labels": null), and OUTDIR/ws.npz (names, ws) for
# invert. Inputs are all read and checked before the first file is written; every file is written
# atomically, so a bad input leaves nothing half-written.

import io
import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch

import dnnlib
from fundus.fundusgan import common
from fundus.fundusgan import encoder as encoder_lib
from fundus.fundusgan import generator as generator_lib
from fundus.fundusgan import train as train_lib
from torch_utils import device as device_lib
from training import generate

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.webp')

#----------------------------------------------------------------------------

def resolve_device(device):
    try:
        return str(device_lib.resolve_device(device))
    except device_lib.DeviceError as e:
        raise common.FundusGANError(str(e)) from None

def load_encoder_snapshot(path, device='cpu', generator=None):
    """(E, G, info) of an encoder snapshot; `generator` = another generator snapshot to pair E with."""
    data = common.load_snapshot(path, '--network')
    if not isinstance(data.get('E'), encoder_lib.Encoder) or data.get('G') is None:
        raise common.FundusGANError(f'--network={path}: not an encoder snapshot (no E and G; made by python -m fundus.fundusgan train?)')
    E, G = data['E'], data['G']
    if generator is not None:
        G = train_lib.load_base_generator(generator, device)
    encoder_lib.check_pairing(E, G, f'--network={path}')
    common.w_avg_of(G, f'--network={path}')
    return E.eval().requires_grad_(False).to(device), G.eval().requires_grad_(False).to(device).float(), data.get('fundusgan', {})

#----------------------------------------------------------------------------
# Reading images: folder (recursive) or zip; wrong sizes are errors, unreadable files are skipped and listed.

def _list_sources(path):
    if os.path.isdir(path):
        names = sorted(os.path.relpath(os.path.join(d, f), path).replace(os.sep, '/') for d, _s, fs in os.walk(path) for f in fs)
        return names, lambda n: open(os.path.join(path, n), 'rb').read(), 'dataset.json' in names
    if os.path.isfile(path) and path.lower().endswith(IMAGE_EXTS):
        return [os.path.basename(path)], lambda n: open(path, 'rb').read(), False
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        z = zipfile.ZipFile(path)
        names = sorted(z.namelist())
        return names, z.read, 'dataset.json' in names
    raise common.FundusGANError(f'--images={path}: no such folder, zip or image file')

def read_images(path, resolution, option='--images'):
    """(names, uint8 [N, 3, R, R], labels {name: label} or None, skipped [(name, reason)])."""
    names, read, has_json = _list_sources(path)
    images, kept, skipped = [], [], []
    for name in (n for n in names if n.lower().endswith(IMAGE_EXTS)):
        try:
            with PIL.Image.open(io.BytesIO(read(name))) as im:
                arr = np.asarray(im.convert('RGB'))
        except (OSError, ValueError, PIL.UnidentifiedImageError) as e:
            skipped.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        if arr.shape[0] != resolution or arr.shape[1] != resolution:
            raise common.FundusGANError(f'{option}={path}: {name} is {arr.shape[1]}x{arr.shape[0]}, but the generator makes '
                                        f'{resolution}x{resolution}; resize with dataset_tool.py --resolution={resolution}')
        images.append(arr.transpose(2, 0, 1))
        kept.append(name)
    if not kept:
        raise common.FundusGANError(f'{option}={path}: no readable images (PNG, JPEG, WebP)' + (f'; {len(skipped)} unreadable' if skipped else ''))
    labels = None
    if has_json:
        meta = json.loads(read('dataset.json'))
        labels = {k: v for k, v in (meta.get('labels') or [])} if isinstance(meta, dict) and meta.get('labels') else None
    return kept, np.stack(images), labels, skipped

def to_float(images, device):
    return torch.as_tensor(images).to(device, torch.float32) / 127.5 - 1

#----------------------------------------------------------------------------
# Writing.

def out_name(name, suffix=''):
    return os.path.splitext(name)[0].replace('/', '_') + suffix + '.png'

def write_outputs(outdir, files, labels):
    """files: [(file name, uint8 [H, W, C])]; labels: [label or None] per file. Returns the paths."""
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for fname, arr in files:
        paths.append(os.path.join(outdir, fname))
        generate.save_png(paths[-1], arr)
    pairs = [[f, l] for (f, _a), l in zip(files, labels)] if any(l is not None for l in labels) else None
    dnnlib.atomic_write(os.path.join(outdir, 'dataset.json'), lambda f: f.write(json.dumps({'labels': pairs}, indent=1)), mode='w')
    return paths

def write_skipped(outdir, skipped):
    if skipped:
        text = ''.join(f'{n}\t{r}\n' for n, r in skipped)
        dnnlib.atomic_write(os.path.join(outdir, 'skipped-images.txt'), lambda f: f.write(text), mode='w')

#----------------------------------------------------------------------------
# The three operations.

@torch.no_grad()
def invert_images(E, G, images, device, batch=8):
    """(reconstructions uint8 [N, H, W, C], ws float32 [N, num_ws, w_dim])."""
    recons, all_ws = [], []
    for k in range(0, len(images), batch):
        img, ws = generator_lib.reconstruct(E, G, to_float(images[k:k + batch], device))
        recons.append(generate.to_uint8(img))
        all_ws.append(ws.cpu().numpy().astype(np.float32))
    return np.concatenate(recons), np.concatenate(all_ws)

def mix_ws(ws_a, ws_b, coarse_end):
    """ws [N, num_ws, w_dim]: ws_a's first coarse_end ws (anatomy), ws_b's others (fine detail, lesions)."""
    if not 0 < coarse_end < ws_a.shape[1]:
        raise common.FundusGANError(f'--coarse-end={coarse_end}: must be between 1 and num_ws - 1 = {ws_a.shape[1] - 1}')
    return torch.cat([ws_a[:, :coarse_end], ws_b[:, coarse_end:]], dim=1)

def w_std(G, seed=0, num=2000):
    """Per-dimension spread of w [w_dim] from mapped seeded latents (the perturbation scale of vary)."""
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(common.w_avg_of(G).device)
    return G.mapping(z, None)[:, 0].std(dim=0)

def vary_ws(ws, layers, count, strength, scale, seed):
    """count variants of each ws [N, num_ws, w_dim]: Gaussian offsets (strength * scale) on `layers` only."""
    gen = torch.Generator().manual_seed(int(seed))
    mask = torch.zeros([ws.shape[1], 1])
    mask[list(layers)] = 1
    noise = torch.randn([ws.shape[0], count, ws.shape[1], ws.shape[2]], generator=gen)
    delta = noise * mask * strength * scale.cpu()
    return ws[:, None] + delta.to(ws.device)                             # [N, count, num_ws, w_dim]

#----------------------------------------------------------------------------

def run_invert(network, images, outdir, device='cpu', generator=None):
    E, G, _info = load_encoder_snapshot(network, device, generator)
    names, arr, labels, skipped = read_images(images, int(G.img_resolution))
    recons, ws = invert_images(E, G, arr, device)
    files = [(out_name(n), r) for n, r in zip(names, recons)]
    paths = write_outputs(outdir, files, [None if labels is None else labels.get(n) for n in names])
    dnnlib.atomic_write(os.path.join(outdir, 'ws.npz'), lambda f: np.savez(f, names=np.array(names), ws=ws))
    write_skipped(outdir, skipped)
    return paths, skipped

@torch.no_grad()
def run_mix(network, coarse, fine, outdir, coarse_end=None, device='cpu'):
    E, G, _info = load_encoder_snapshot(network, device)
    coarse_end = coarse_end or E.levels.count('low')
    na, a, _la, sa = read_images(coarse, int(G.img_resolution), '--coarse')
    nb, b, lb, sb = read_images(fine, int(G.img_resolution), '--fine')
    files, labels = [], []
    for i, name_a in enumerate(na):
        xa = to_float(a[i:i + 1], device)
        off_a, feats_a = E(xa, return_pyramid=True)
        ws_a = common.w_avg_of(G)[None, None] + off_a
        for j, name_b in enumerate(nb):
            ws_b = encoder_lib.encode(E, G, to_float(b[j:j + 1], device))
            img = generator_lib.synthesize_ws(G, mix_ws(ws_a, ws_b, coarse_end), feats_a)
            files.append((f'mix-{out_name(name_a, "")[:-4]}-{out_name(name_b)}', generate.to_uint8(img)[0]))
            labels.append(None if lb is None else lb.get(name_b)) # Lesions (the grade) come from the fine source.
    write_skipped(outdir, sa + sb)
    return write_outputs(outdir, files, labels)

@torch.no_grad()
def run_vary(network, images, outdir, count=8, layers=None, strength=1.0, seed=0, device='cpu'):
    E, G, _info = load_encoder_snapshot(network, device)
    layers = list(range(E.levels.count('low'))) if layers is None else list(layers)
    bad = [l for l in layers if not 0 <= l < E.num_ws]
    if bad:
        raise common.FundusGANError(f'--layers: {bad} out of range; the generator has ws 0..{E.num_ws - 1}')
    names, arr, labels, skipped = read_images(images, int(G.img_resolution))
    scale = w_std(G, seed)
    files, out_labels = [], []
    for i, name in enumerate(names):
        x = to_float(arr[i:i + 1], device)
        off, feats = E(x, return_pyramid=True)
        variants = vary_ws(common.w_avg_of(G)[None, None] + off, layers, count, strength, scale, seed * 100003 + i)[0]
        imgs = generator_lib.synthesize_ws(G, variants, {k: v.expand(count, -1, -1, -1) for k, v in feats.items()})
        for k, im in enumerate(generate.to_uint8(imgs)):
            files.append((out_name(name, f'-var{k:02d}'), im))
            out_labels.append(None if labels is None else labels.get(name))
    write_skipped(outdir, skipped)
    return write_outputs(outdir, files, out_labels)

#----------------------------------------------------------------------------
