# Encoder training (pSp-style w+ inversion, or FundusGAN's encoder + dilated generator) with periodic
# validation and exact resume.
#
# Run directory: training_options.json, stats.jsonl (one JSON line per logged step), validation.jsonl,
# TensorBoard events, recon-<step>.png (rows: input | reconstruction), encoder-snapshot-<step>.pkl
# (E, G and options in our safe-pickle format), training-state.pt (everything needed to continue:
# weights, optimiser states, step; loads with torch.load(weights_only=True)). Every file is written
# atomically. Randomness is a function of (seed, step) alone (batch choice), so a run killed with
# SIGKILL and resumed from its last state continues bit-identically on CPU.

import copy
import io
import json
import os

import numpy as np
import torch
import tqdm

import dnnlib
from fundus.fundusgan import common
from fundus.fundusgan import encoder as encoder_lib
from fundus.fundusgan import generator as generator_lib
from fundus.fundusgan import loss as loss_lib
from fundus.fundusgan import paired
from torch_utils import persistence
from training import dataset as dataset_lib
from training import generate
from training import launch
from training import networks_stylegan2
from training import run_support

STATE_FILE = 'training-state.pt'
ARCHS = ('psp', 'fundusgan')

#----------------------------------------------------------------------------

def default_options(**overrides):
    """Every training option with its default (the CLI documents each)."""
    opts = dnnlib.EasyDict(
        generator='', data='', arch='psp', steps=1000, batch=4, lr=1e-4, train_g=False, g_lr=1e-4,
        l2=1.0, lpips=0.8, wreg=0.005, adv=0.0, d_lr=2e-4, lpips_net='vgg',
        backbone='resnet34', width=64, fpn_channels=512, coarse_end=3, middle_end=7, backbone_weights=None,
        dilation=8, skips='delta', post_layers=2,
        val=0.1, val_every=100, snap_every=100, log_every=10, seed=0, device='cpu', grid_rows=8,
    )
    unknown = set(overrides) - set(opts)
    if unknown:
        raise common.FundusGANError(f'unknown training option(s): {", ".join(sorted(unknown))}')
    opts.update(overrides)
    if opts.arch not in ARCHS:
        raise common.FundusGANError(f'--arch={opts.arch}: must be one of {", ".join(ARCHS)}')
    return opts

#----------------------------------------------------------------------------
# Data: the readable images of a zip/folder, split once into train and held-out validation indices.

def open_dataset(path, resolution):
    """(dataset, usable raw indices, skipped [(file, reason)]); corrupt images are skipped and listed."""
    if not os.path.exists(path):
        raise common.FundusGANError(f'--data={path}: no such file or folder')
    try:
        ds = dataset_lib.ImageFolderDataset(path=path)
    except dataset_lib.DatasetError as e:
        raise common.FundusGANError(f'--data={path}: {str(e).splitlines()[0]}') from None
    if ds.resolution != resolution:
        raise common.FundusGANError(f'--data={path}: images are {ds.resolution}x{ds.resolution}, but the generator makes '
                                    f'{resolution}x{resolution}; rebuild with dataset_tool.py --resolution={resolution}')
    good, skipped = [], []
    for i in range(len(ds)):
        try:
            ds[i]
            good.append(i)
        except dataset_lib.DatasetError as e:
            skipped.append((common.dataset_file(ds, i), str(e).splitlines()[0]))
    if not good:
        raise common.FundusGANError(f'--data={path}: none of the {len(ds)} images could be read')
    return ds, good, skipped

def split_indices(indices, val, seed):
    """(train, val) lists: a seeded permutation; val is a fraction (< 1) or a count (>= 1)."""
    perm = np.random.default_rng([int(seed), 11]).permutation(np.asarray(indices))
    n_val = int(round(val * len(perm))) if val < 1 else int(val)
    n_val = min(max(n_val, 1), len(perm) - 1) if len(perm) > 1 else 0
    if len(perm) - n_val < 1:
        raise common.FundusGANError(f'--val={val}: leaves no training images out of {len(perm)}')
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())

def load_batch(ds, indices, device):
    """Images [N, C, R, R] in [-1, 1]."""
    arr = np.stack([ds[i][0] for i in indices])
    return torch.from_numpy(arr).to(device, torch.float32) / 127.5 - 1

def batch_indices(train_idx, batch, seed, step):
    rng = np.random.default_rng([int(seed), 23, int(step)])
    return rng.choice(np.asarray(train_idx), size=batch, replace=len(train_idx) < batch).tolist()

#----------------------------------------------------------------------------
# Networks.

def load_base_generator(path, device='cpu'):
    """G_ema (else G) of a generator snapshot, ours or official, float32 on device."""
    data = common.load_snapshot(path, '--generator')
    G = data.get('G_ema') or data.get('G')
    if G is None:
        raise common.FundusGANError(f'--generator={path}: the pickle holds no generator (G_ema or G)')
    common.w_avg_of(G, f'--generator={path}')
    return G.to(device).float()

def build_networks(opts, G_base):
    """(E, G) for opts.arch; the generator is G_base itself (psp) or the dilated one initialised from it."""
    G = copy.deepcopy(G_base)
    if opts.arch == 'fundusgan':
        G = generator_lib.build_fundusgan(G_base, fpn_channels=opts.fpn_channels, dilation=opts.dilation,
                                          skips=opts.skips, post_layers=opts.post_layers, seed=opts.seed)
    E = encoder_lib.build_encoder(G, backbone=opts.backbone, width=opts.width, fpn_channels=opts.fpn_channels,
                                  coarse_end=opts.coarse_end, middle_end=opts.middle_end, seed=opts.seed)
    if opts.backbone_weights:
        encoder_lib.load_backbone_weights(E, opts.backbone_weights)
    trains_g = opts.train_g or opts.arch == 'fundusgan'
    G.eval().requires_grad_(False)
    if trains_g:
        for name, p in G.named_parameters():
            p.requires_grad_(not name.startswith('mapping.') and (opts.train_g or generator_lib.is_new_param(G, name)))
    return E.train(), G

def build_discriminator(G, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return networks_stylegan2.Discriminator(c_dim=0, img_resolution=G.img_resolution, img_channels=G.img_channels,
                                                channel_base=min(16384, 256 * G.img_resolution), channel_max=256, num_fp16_res=0)

#----------------------------------------------------------------------------
# One run's live objects.

class Run:
    def __init__(self, opts, run_dir, progress=True):
        self.opts, self.run_dir, self.progress = opts, run_dir, progress
        self.device = torch.device(opts.device)
        G_base = load_base_generator(opts.generator, self.device)
        self.ds, usable, self.skipped = open_dataset(opts.data, int(G_base.img_resolution))
        self.train_idx, self.val_idx = split_indices(usable, opts.val, opts.seed)
        self.E, self.G = build_networks(opts, G_base)
        self.E.to(self.device)
        self.G.to(self.device)
        needs_lpips = opts.lpips > 0 or len(self.val_idx) > 0
        self.lpips_fn = paired.lpips_model(opts.lpips_net, self.device) if needs_lpips else None
        self.D = build_discriminator(self.G, opts.seed).to(self.device) if opts.adv > 0 else None
        self.loss = loss_lib.ReconstructionLoss(l2=opts.l2, lpips=opts.lpips, wreg=opts.wreg, adv=opts.adv,
                                                lpips_fn=self.lpips_fn, D=self.D)
        self.opt_E = torch.optim.Adam(self.E.parameters(), lr=opts.lr)
        g_params = [p for p in self.G.parameters() if p.requires_grad]
        self.opt_G = torch.optim.Adam(g_params, lr=opts.g_lr) if g_params else None
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=opts.d_lr, betas=(0.0, 0.99)) if self.D is not None else None
        self.step = 0

    def state(self):
        opt = lambda o: None if o is None else o.state_dict()
        return dict(step=self.step, E=self.E.state_dict(), G=self.G.state_dict(),
                    D=None if self.D is None else self.D.state_dict(),
                    opt_E=opt(self.opt_E), opt_G=opt(self.opt_G), opt_D=opt(self.opt_D), options=dict(self.opts))

    def load_state(self, state):
        self.step = int(state['step'])
        self.E.load_state_dict(state['E'])
        self.G.load_state_dict(state['G'])
        for name in ('D', 'opt_E', 'opt_G', 'opt_D'):
            target = getattr(self, name)
            if (target is None) != (state[name] is None):
                raise common.FundusGANError(f'{self.run_dir}: the training state does not match the options ({name})')
            if target is not None:
                target.load_state_dict(state[name])

#----------------------------------------------------------------------------
# Steps.

def train_step(run):
    """One optimiser step on a (seed, step)-determined batch; returns the loss terms as floats."""
    real = load_batch(run.ds, batch_indices(run.train_idx, run.opts.batch, run.opts.seed, run.step), run.device)
    fake, ws = generator_lib.reconstruct(run.E, run.G, real)
    terms = run.loss(real, fake, ws, common.w_avg_of(run.G))
    for opt in (run.opt_E, run.opt_G):
        if opt is not None:
            opt.zero_grad(set_to_none=True)
    terms.total.backward()
    for opt in (run.opt_E, run.opt_G):
        if opt is not None:
            opt.step()
    if run.D is not None:
        run.opt_D.zero_grad(set_to_none=True)
        run.D.requires_grad_(True)
        d_loss = loss_lib.discriminator_loss(run.D, real, fake)
        d_loss.backward()
        run.opt_D.step()
        terms.d = d_loss.detach()
    run.step += 1
    return {f'loss/{k}': float(v.detach()) for k, v in terms.items()}

@torch.no_grad()
def evaluate(E, G, ds, indices, lpips_fn, device, batch=8):
    """Mean SSIM, LPIPS, L2 of reconstructions (and of the w_avg image as baseline) over indices."""
    was_training = E.training
    E.eval()
    sums = dict(ssim=0.0, lpips=0.0, l2=0.0, base_ssim=0.0, base_lpips=0.0, base_l2=0.0)
    w_avg = common.w_avg_of(G)
    for k in range(0, len(indices), batch):
        real = load_batch(ds, indices[k:k + batch], device)
        fake, ws = generator_lib.reconstruct(E, G, real)
        base_ws = w_avg[None, None, :].expand_as(ws)
        base = generator_lib.synthesize_ws(G, base_ws, E(real, return_pyramid=True)[1] if generator_lib.takes_pyramid(G) else None)
        for prefix, img in (('', fake), ('base_', base)):
            sums[prefix + 'ssim'] += float(paired.ssim(paired.to_uint8(img), paired.to_uint8(real)).sum())
            sums[prefix + 'lpips'] += float(lpips_fn(img.clamp(-1, 1), real).sum())
            sums[prefix + 'l2'] += float((img - real).square().mean(dim=[1, 2, 3]).sum())
    E.train(was_training)
    return {k: v / max(1, len(indices)) for k, v in sums.items()}

@torch.no_grad()
def recon_grid(run, rows):
    """[2 * R, rows * R, C] uint8: inputs on top, reconstructions below."""
    idx = run.val_idx[:rows] or run.train_idx[:rows]
    real = load_batch(run.ds, idx, run.device)
    run.E.eval()
    fake, _ws = generator_lib.reconstruct(run.E, run.G, real)
    run.E.train()
    images = torch.cat([real, fake]).clamp(-1, 1)
    return generate.make_grid(generate.to_uint8(images), cols=len(idx))

#----------------------------------------------------------------------------
# Files of a run.

def _atomic_torch_save(path, obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    dnnlib.atomic_write(path, lambda f: f.write(buf.getvalue()))

def _truncate_jsonl(path, max_step):
    # Drop lines logged after the state we resume from (the killed run wrote them, the resumed run repeats them).
    if not os.path.isfile(path):
        return
    with open(path, encoding='utf-8') as f:
        lines = [ln for ln in f if ln.strip() and json.loads(ln).get('step', 0) <= max_step]
    dnnlib.atomic_write(path, lambda f: f.write(''.join(lines)), mode='w')

def snapshot_data(run):
    """The encoder snapshot dict: E, G, options, the served generator's facts, the training set."""
    return dict(E=run.E, G=run.G, fundusgan=dict(arch=run.opts.arch, step=run.step, options=dict(run.opts),
                                                generator=common.describe_generator(run.G)),
                training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=run.opts.data,
                                         resolution=int(run.G.img_resolution)))

def save_snapshot(run):
    path = os.path.join(run.run_dir, f'encoder-snapshot-{run.step:06d}.pkl')
    persistence.save_network_pkl(path, snapshot_data(run))
    return path

def new_run_dir(outdir, arch, data):
    """outdir/<next free number>-fundusgan-<arch>-<dataset name>, numbered like train.py's run directories."""
    name = os.path.splitext(os.path.basename(os.path.normpath(data)))[0]
    return launch.next_run_dir(outdir, f'fundusgan-{arch}-{name}')

def read_run_options(run_dir):
    path = os.path.join(run_dir, 'training_options.json')
    if not os.path.isfile(path):
        raise common.FundusGANError(f'--resume={run_dir}: not an encoder run directory (no training_options.json)')
    with open(path, encoding='utf-8') as f:
        return default_options(**json.load(f))

#----------------------------------------------------------------------------

def _validate(run, logger):
    if run.val_idx:
        res = evaluate(run.E, run.G, run.ds, run.val_idx, run.lpips_fn, run.device)
        logger.log({f'val/{k}': v for k, v in res.items()}, step=run.step, file='validation.jsonl', fields=dict(step=run.step))
    grid = recon_grid(run, run.opts.grid_rows)
    generate.save_png(os.path.join(run.run_dir, f'recon-{run.step:06d}.png'), grid)

def _checkpoint(run):
    save_snapshot(run)
    _atomic_torch_save(os.path.join(run.run_dir, STATE_FILE), run.state())

def training_loop(opts=None, run_dir=None, resume=None, progress=True):
    """Train (or, with resume=RUN_DIR, continue) one run; returns the run directory."""
    if resume is not None:
        opts, run_dir = read_run_options(resume), resume
    run = Run(opts, run_dir, progress)
    if resume is not None:
        state_path = os.path.join(run_dir, STATE_FILE)
        if os.path.isfile(state_path): # Killed before its first state: start again from step 0.
            run.load_state(torch.load(state_path, map_location=run.device, weights_only=True))
        for name in ('stats.jsonl', 'validation.jsonl'):
            _truncate_jsonl(os.path.join(run_dir, name), run.step)
    else:
        os.makedirs(run_dir, exist_ok=True)
        dnnlib.atomic_write(os.path.join(run_dir, 'training_options.json'), lambda f: f.write(json.dumps(opts, indent=2)), mode='w')
        if run.skipped:
            text = ''.join(f'{name}\t{reason}\n' for name, reason in run.skipped)
            dnnlib.atomic_write(os.path.join(run_dir, 'skipped-images.txt'), lambda f: f.write(text), mode='w')
            print(f'skipped {len(run.skipped)} unreadable image(s), listed in {os.path.join(run_dir, "skipped-images.txt")}')
    logger = run_support.RunLogger(run_dir, purge_step=run.step)
    try:
        if run.step == 0:
            _validate(run, logger)
            _checkpoint(run)
        bar = tqdm.tqdm(total=opts.steps, initial=run.step, disable=not progress, desc='encoder', unit='step')
        while run.step < opts.steps:
            terms = train_step(run)
            bar.update(1)
            if run.step % opts.log_every == 0 or run.step == opts.steps:
                logger.log(terms, step=run.step, fields=dict(step=run.step))
            if run.step % opts.val_every == 0 or run.step == opts.steps:
                _validate(run, logger)
            if run.step % opts.snap_every == 0 or run.step == opts.steps:
                _checkpoint(run)
        bar.close()
    finally:
        logger.close()
    return run_dir

#----------------------------------------------------------------------------
