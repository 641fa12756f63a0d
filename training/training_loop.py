# The training loop: small units (setup, one phase step, EMA, maintenance tick, snapshots, logging) that
# training_loop() orchestrates. One process per device; with several processes (torch.distributed) each
# rank sees a disjoint shard of every batch and gradients are averaged before each optimiser step.
#
# Determinism and exact resume. All randomness comes from seeded sources whose state is saved in every
# training-state file: two torch.Generators ('latents' for z and generator labels, identical on every
# rank; 'loss' for style mixing, PL noise and augmentation, per rank), the global torch / numpy / python
# RNGs (networks draw their noise inputs from torch's global RNG), and the data sampler position. Latents
# are drawn for the whole batch on every rank and then sharded, so a run with N processes computes the
# same batch as one process with the same total batch.

import copy
import dataclasses
import json
import os
import random
import resource
import time

import numpy as np
import PIL.Image
import torch

import dnnlib
from metrics import metric_main
from torch_utils import distributed, misc, training_stats
from torch_utils.persistence import load_network_pkl, save_network_pkl
from training import checkpoint, generate
from training.augment import AdaController
from training.run_support import RunLogger, backend_flags, interrupt_guard

#----------------------------------------------------------------------------

class TrainingDivergedError(RuntimeError):
    """A loss or a weight became non-finite; training stopped without writing a snapshot."""

#----------------------------------------------------------------------------
# Setup units.

def seed_everything(seed):
    """Seed the global RNGs (network initialisation and network noise inputs use torch's)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (1 << 32))
    random.seed(seed)

def build_training_set(training_set_kwargs, data_loader_kwargs, rank, num_gpus, items_per_step, seed, start_index, device):
    """Dataset and an endless iterator of per-rank batches (uint8 images, float labels), resumable."""
    training_set = dnnlib.construct_class_by_name(**training_set_kwargs)
    sampler = misc.InfiniteSampler(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=seed, start_index=start_index)
    loader_kwargs = dict(data_loader_kwargs or {})
    if int(loader_kwargs.get('num_workers', 0)) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    loader_kwargs['pin_memory'] = bool(loader_kwargs.get('pin_memory', False)) and torch.device(device).type == 'cuda'
    loader = torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=items_per_step,
                                         generator=torch.Generator().manual_seed(seed), **loader_kwargs)
    return training_set, iter(loader)

def build_networks(training_set, G_kwargs, D_kwargs, device):
    """G, D and G_ema (a copy of G), sized for the dataset; all parameters frozen until their phase."""
    common = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    nets = []
    for name, kwargs in (('G_kwargs', G_kwargs), ('D_kwargs', D_kwargs)):
        for key, value in common.items():
            if key in kwargs and kwargs[key] != value:
                raise ValueError(f'{name}.{key} = {kwargs[key]} does not match the dataset ({value})')
        merged = {**kwargs, **common}
        nets.append(dnnlib.construct_class_by_name(**merged).train().requires_grad_(False).to(device))
    G, D = nets
    return G, D, copy.deepcopy(G).eval() # G_ema starts as an exact copy of G, in eval mode.

def build_augment_pipe(augment_kwargs, augment_p, device):
    if augment_kwargs is None:
        return None
    pipe = dnnlib.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
    pipe.p.copy_(torch.as_tensor(augment_p))
    return pipe

def build_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval):
    """Training phases in execution order: EasyDict(name, module, opt, interval) each.

    A lazily regularised module gets a 'main' phase every minibatch and a 'reg' phase every `interval`;
    its optimiser's lr and betas are rescaled by r = interval / (interval + 1) (StyleGAN2, Appendix B).
    """
    phases = []
    for name, module, opt_kwargs, reg_interval in (('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)):
        opt_kwargs = dnnlib.EasyDict(**opt_kwargs)
        if reg_interval is None:
            opt = dnnlib.construct_class_by_name(module.parameters(), **_adam_kwargs(opt_kwargs))
            phases.append(dnnlib.EasyDict(name=name + 'both', module=module, opt=opt, interval=1))
        else:
            ratio = reg_interval / (reg_interval + 1)
            opt_kwargs.lr = opt_kwargs.lr * ratio
            if 'betas' in opt_kwargs:
                opt_kwargs.betas = tuple(beta ** ratio for beta in opt_kwargs.betas)
            opt = dnnlib.construct_class_by_name(module.parameters(), **_adam_kwargs(opt_kwargs))
            phases.append(dnnlib.EasyDict(name=name + 'main', module=module, opt=opt, interval=1))
            phases.append(dnnlib.EasyDict(name=name + 'reg', module=module, opt=opt, interval=reg_interval))
    return phases

def _adam_kwargs(opt_kwargs):
    # torch.optim.Adam rejects a list of betas on current PyTorch; JSON round trips turn tuples into lists.
    kwargs = dict(opt_kwargs)
    if 'betas' in kwargs:
        kwargs['betas'] = tuple(float(b) for b in kwargs['betas'])
    return kwargs

#----------------------------------------------------------------------------
# One training step.

def draw_latents(generator, training_set, num_phases, batch_size, z_dim, device):
    """Latents and generator labels for every phase of one step, the same on every rank.

    Returns:
        gen_z [num_phases, batch_size, z_dim], gen_c [num_phases, batch_size, c_dim] on `device`.
    """
    gen_z = torch.randn([num_phases, batch_size, z_dim], generator=generator)
    idx = torch.randint(len(training_set), [num_phases * batch_size], generator=generator)
    labels = np.stack([training_set.get_label(int(i)) for i in idx]).astype(np.float32)
    gen_c = torch.from_numpy(labels).reshape(num_phases, batch_size, -1)
    return gen_z.to(device), gen_c.to(device)

def shard(x, rank, num_gpus, dim=0):
    """This rank's share of a whole-batch tensor: every num_gpus-th sample, starting at rank."""
    return x.index_select(dim, torch.arange(rank, x.shape[dim], num_gpus, device=x.device))

def run_phase(phase, loss, real_img, real_c, gen_z, gen_c, batch_gpu, cur_nimg, generator, ada=None):
    """One optimiser step of one phase on this rank's share of the batch (split into micro-batches).

    Gradients are the mean over the whole batch: each micro-batch's loss is divided by the number of
    micro-batches, and gradients are averaged across ranks. Returns {term: float} (micro-batch means).
    """
    module, opt = phase.module, phase.opt
    module.requires_grad_(True) # Only this phase's network collects gradients.
    opt.zero_grad(set_to_none=True)
    rounds = list(zip(real_img.split(batch_gpu), real_c.split(batch_gpu), gen_z.split(batch_gpu), gen_c.split(batch_gpu)))
    totals = dict()
    for r_img, r_c, g_z, g_c in rounds:
        out = loss.phase_losses(phase=phase.name, real_img=r_img, real_c=r_c, gen_z=g_z, gen_c=g_c,
                                gain=phase.interval, cur_nimg=cur_nimg, generator=generator)
        if len(out.terms) == 0:
            continue
        total = sum(out.terms.values())
        _check_finite_loss(phase.name, cur_nimg, out.terms)
        total.div(len(rounds)).backward()
        for name, value in out.terms.items(): # Logged without the lazy-regularisation gain.
            totals[name] = totals.get(name, 0.0) + float(value.detach()) / phase.interval / len(rounds)
        if ada is not None and out.real_logits is not None and phase.name in ('Dmain', 'Dboth'):
            ada.accumulate(out.real_logits)
    module.requires_grad_(False)
    if totals:
        reduce_gradients(module)
        opt.step()
        _check_finite_weights(phase.name, cur_nimg, module)
    return totals

def reduce_gradients(module):
    """Average gradients across ranks and neutralise non-finite entries, in one flat all-reduce."""
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    distributed.all_reduce_mean_(flat)
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    grads = flat.split([p.numel() for p in params])
    for p, g in zip(params, grads):
        p.grad.copy_(g.reshape(p.shape))

def sync_running_averages(modules):
    """Average floating-point running-average buffers (names ending in _avg / _ema) across ranks."""
    if distributed.get_world_size() <= 1:
        return
    for module in modules:
        for name, buf in module.named_buffers():
            if buf.is_floating_point() and name.split('.')[-1].endswith(('_avg', '_ema')):
                distributed.all_reduce_mean_(buf.data)

@torch.no_grad()
def update_ema(G, G_ema, cur_nimg, batch_size, ema_kimg, ema_rampup):
    """G_ema <- G + beta * (G_ema - G), beta = 0.5 ** (batch / ema_nimg); buffers are copied. Returns beta."""
    # Early on (ramp-up) the half-life is capped at a fraction of the images seen so far.
    half_life = ema_kimg * 1000 if ema_rampup is None else min(ema_kimg * 1000, cur_nimg * ema_rampup)
    beta = 0.5 ** (batch_size / max(half_life, 1e-8))
    for avg, live in zip(G_ema.parameters(), G.parameters()):
        avg.copy_(live.detach().lerp(avg, beta))
    for avg, live in zip(G_ema.buffers(), G.buffers()):
        avg.copy_(live)
    return beta

def _check_finite_loss(phase_name, cur_nimg, terms):
    values = torch.stack([v.detach().float() for v in terms.values()])
    if not bool(torch.isfinite(values).all()):
        detail = ', '.join(f'{k}={float(v.detach()):g}' for k, v in terms.items())
        raise TrainingDivergedError(f'non-finite loss in phase {phase_name} at kimg {cur_nimg / 1000:.3f} ({detail}); '
                                    f'training stopped, the last snapshot in the run directory is the last good one')

def _check_finite_weights(phase_name, cur_nimg, module):
    flags = torch.stack([torch.isfinite(p).all() for p in module.parameters()])
    if not bool(flags.all()):
        names = [n for n, p in module.named_parameters() if not bool(torch.isfinite(p).all())]
        raise TrainingDivergedError(f'non-finite weights after phase {phase_name} at kimg {cur_nimg / 1000:.3f} '
                                    f'({", ".join(names[:3])}{", ..." if len(names) > 3 else ""}); training stopped, '
                                    f'the last snapshot in the run directory is the last good one')

#----------------------------------------------------------------------------
# Image grids.

def setup_snapshot_image_grid(training_set, random_seed=0, grid_size=None, device='cpu'):
    """Choose real images for the grid: random ones, or one label (grade) per row for labelled data.

    Returns (gw, gh), images uint8 [gw*gh, C, H, W], labels float [gw*gh, c_dim].
    """
    gw, gh = grid_size if grid_size is not None else _default_grid_size(training_set, device)
    gw, gh = int(gw), int(gh)
    perm_rng = np.random.RandomState(random_seed)
    n = len(training_set)
    if training_set.has_labels:
        # Group the shuffled items by label; row y shows label number y (cycling), filled from its group.
        groups = dict()
        for idx in perm_rng.permutation(n):
            key = tuple(np.asarray(training_set.get_label(idx)).flatten().tolist())
            groups.setdefault(key, []).append(int(idx))
        keys = sorted(groups)
        indices = []
        for y in range(gh):
            group = groups[keys[y % len(keys)]]
            indices += [group[x % len(group)] for x in range(gw)]
    else:
        indices = [int(i) for i in perm_rng.permutation(max(n, gw * gh))[:gw * gh] % n]
    images, labels = zip(*[training_set[i] for i in indices])
    return (gw, gh), np.stack(images), np.stack(labels).astype(np.float32)

def _default_grid_size(training_set, device):
    # Fill roughly a 7680 x 4320 canvas, with 7..32 columns and 4..32 rows.
    _C, H, W = training_set.image_shape
    cols, rows = min(max(7680 // W, 7), 32), min(max(4320 // H, 4), 32)
    if torch.device(device).type != 'cuda': # Fakes are generated on every snapshot; keep CPU grids small.
        cols, rows = min(cols, 8), min(rows, 4)
    return cols, rows

def save_image_grid(img, path, drange, grid_size):
    """Write a [N, C, H, W] array (values in drange) as one PNG grid, atomically."""
    lo, hi = drange
    img = np.rint((np.asarray(img, dtype=np.float32) - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    gw, _gh = grid_size
    grid = generate.make_grid(img.transpose(0, 2, 3, 1), cols=gw)                  # [gh*H, gw*W, C]
    image = PIL.Image.fromarray(grid[:, :, 0], 'L') if grid.shape[2] == 1 else PIL.Image.fromarray(grid[:, :, :3], 'RGB')
    dnnlib.atomic_write(path, lambda f: image.save(f, format='png'))

@torch.no_grad()
def generate_grid(G_ema, grid_z, grid_c, batch):
    images = [G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z.split(batch), grid_c.split(batch))]
    return torch.cat(images).numpy()

#----------------------------------------------------------------------------
# Snapshots and training state.

def write_network_snapshot(path, G, D, G_ema, augment_pipe, training_set_kwargs):
    data = dict(training_set_kwargs=dict(training_set_kwargs))
    for name, module in (('G', G), ('D', D), ('G_ema', G_ema), ('augment_pipe', augment_pipe)):
        data[name] = None if module is None else _frozen_cpu_copy(module)
    save_network_pkl(path, data)

def _frozen_cpu_copy(module):
    # The pickle holds inference-ready copies; the live modules keep training on their device.
    return copy.deepcopy(module).eval().requires_grad_(False).cpu()

def collect_state(options, nets, phases, ada, loss, progress, generators):
    """Everything needed to continue: state dicts, optimisers, ADA, loss state, counters, RNGs, options."""
    G, D, G_ema, augment_pipe = nets
    opts = {p.name[0]: p.opt for p in phases}
    return dict(
        format_version  = checkpoint.FORMAT_VERSION,
        options         = json.dumps(options),
        G               = _cpu_state(G),
        D               = _cpu_state(D),
        G_ema           = _cpu_state(G_ema),
        G_opt           = opts['G'].state_dict(),
        D_opt           = opts['D'].state_dict(),
        augment         = None if augment_pipe is None else (ada.state_dict() if ada is not None else dict(p=augment_pipe.p.detach().cpu().clone())),
        loss            = loss.state_dict(),
        progress        = dict(progress),
        rng             = checkpoint.capture_rng_state(generators),
    )

def apply_state(state, nets, phases, ada, loss, generators):
    G, D, G_ema, augment_pipe = nets
    for name, module in (('G', G), ('D', D), ('G_ema', G_ema)):
        module.load_state_dict(state[name])
    opts = {p.name[0]: p.opt for p in phases}
    opts['G'].load_state_dict(state['G_opt'])
    opts['D'].load_state_dict(state['D_opt'])
    if augment_pipe is not None and state.get('augment') is not None:
        if ada is not None and 'sums' in state['augment']:
            ada.load_state_dict(state['augment'])
        else:
            augment_pipe.p.copy_(state['augment']['p'])
    loss.load_state_dict(state['loss'])
    checkpoint.restore_rng_state(state['rng'], generators)
    return dict(state['progress'])

def _cpu_state(module):
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

def load_resume_pkl(resume_pkl, G, D, G_ema, log):
    log(f'Resuming from "{resume_pkl}"')
    with dnnlib.open_url(resume_pkl) as f:
        data = load_network_pkl(f)
    if data.get('G') is None and data.get('G_ema') is not None:
        data = dict(data, G=data['G_ema']) # A shipped G_ema alone: the trained G starts from it too.
        log('Resume: the pickle has no G; G starts from its G_ema')
    for name, module in (('G', G), ('D', D), ('G_ema', G_ema)):
        if data.get(name) is None:
            log(f'Resume: the pickle has no {name}; it keeps its fresh initialisation')
            continue
        source = dict(misc.named_params_and_buffers(data[name]))
        targets = [n for n, _ in misc.named_params_and_buffers(module)]
        matched = sum(n in source for n in targets)
        if matched == 0:
            raise ValueError(f'--resume={resume_pkl}: {name} shares no tensor names with this configuration\'s {name} '
                             f'({type(data[name]).__module__}.{type(data[name]).__name__} in the pickle); check --cfg')
        try:
            misc.copy_params_and_buffers(data[name], module, require_all=False)
        except ValueError as e:
            raise ValueError(f'--resume={resume_pkl}: {name} does not fit this configuration ({e}); '
                             f'the pickle\'s networks must match --cfg, --cbase, --cmax, --map-depth and the dataset') from None
        if matched < len(targets):
            log(f'Resume: {name}: {matched} of {len(targets)} tensors copied from the pickle; the rest keep their initialisation')

#----------------------------------------------------------------------------
# Progress lines.

def format_tick_line(tick, cur_nimg, elapsed, tick_time, tick_kimg, maintenance, augment_p, losses, device):
    fields = [
        f'tick {tick:<5d}',
        f'kimg {cur_nimg / 1e3:<8.3f}',
        f'time {dnnlib.format_time(elapsed):<12s}',
        f'sec/tick {tick_time:<7.1f}',
        f'sec/kimg {tick_time / max(tick_kimg, 1e-8):<7.2f}',
        f'maintenance {maintenance:<6.1f}',
        f'cpumem {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:<6.2f}',
    ]
    if torch.device(device).type == 'cuda':
        fields.append(f'gpumem {torch.cuda.max_memory_allocated(device) / 2**30:<6.2f}')
        fields.append(f'reserved {torch.cuda.max_memory_reserved(device) / 2**30:<6.2f}')
        torch.cuda.reset_peak_memory_stats(device)
    fields.append(f'augment {augment_p:.3f}')
    fields += [f'{name} {value:.4f}' for name, value in losses.items()]
    return ' '.join(fields)

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # Run directory: snapshots, logs, stats.jsonl.
    training_set_kwargs     = None,     # Options for the training set (class_name, path, ...).
    data_loader_kwargs      = None,     # Options for torch.utils.data.DataLoader.
    G_kwargs                = None,     # Options for the generator network.
    D_kwargs                = None,     # Options for the discriminator network.
    G_opt_kwargs            = None,     # Options for the generator optimiser.
    D_opt_kwargs            = None,     # Options for the discriminator optimiser.
    augment_kwargs          = None,     # Options for the augmentation pipeline; None: no augmentation.
    loss_kwargs             = None,     # Options for the loss.
    metrics                 = None,     # Metric names evaluated at network snapshots.
    random_seed             = 0,        # Seed of weights, latents, augmentation and data order.
    num_gpus                = 1,        # Number of processes taking part.
    rank                    = 0,        # This process's rank in [0, num_gpus).
    batch_size              = 4,        # Total batch over all processes.
    batch_gpu               = 4,        # Micro-batch per process (gradient accumulation below batch / num_gpus).
    ema_kimg                = 10,       # Half-life of the G_ema average, in kimg.
    ema_rampup              = 0.05,     # EMA ramp-up coefficient; None: no ramp-up.
    G_reg_interval          = None,     # Lazy-regularisation interval of G; None: regularise every step.
    D_reg_interval          = 16,       # Lazy-regularisation interval of D; None: regularise every step.
    augment_p               = 0,        # Initial augmentation probability.
    ada_target              = None,     # ADA target for r_t; None: fixed p.
    ada_interval            = 4,        # Adjust p every this many minibatches.
    ada_kimg                = 500,      # ADA speed: kimg for p to move from 0 to 1.
    total_kimg              = 25000,    # Training length in thousands of real images.
    kimg_per_tick           = 4,        # Progress-line interval in kimg.
    image_snapshot_ticks    = 50,       # Image grid interval in ticks; None: never.
    network_snapshot_ticks  = 50,       # Network snapshot (+ training state) interval in ticks; None: never.
    resume_pkl              = None,     # Network pickle to initialise G, D, G_ema from (new run).
    resume_state            = None,     # Training-state file to continue exactly (same run).
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark (CUDA only).
    device                  = 'cpu',    # Device of this process.
    deterministic           = False,    # torch.use_deterministic_algorithms during training.
    grid_size               = None,     # (gw, gh) of the snapshot image grids; None: from the resolution.
    tensorboard             = True,     # Write tfevents when torch.utils.tensorboard imports.
    progress_fn             = None,     # Called as progress_fn(cur_nimg, total_nimg) at every tick.
    tick_fn                 = None,     # Called as tick_fn(EasyDict(cur_nimg, cur_tick, run_dir, snapshot_pkl, losses, augment_p)) at every tick.
    stop_fn                 = None,     # Polled before every step; True ends the run as Ctrl-C does (grid, snapshot, state).
    options                 = None,     # The resolved configuration stored in training states.
):
    """Train G and D; returns EasyDict(cur_nimg, cur_tick, snapshot_pkl, snapshot_nimg, state_path, interrupted).

    Raises TrainingDivergedError when a loss or weight becomes non-finite.
    """
    c = dnnlib.EasyDict(locals())
    c.device = torch.device(device)
    c.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss') if loss_kwargs is None else loss_kwargs
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.0025, betas=(0, 0.99), eps=1e-8) if G_opt_kwargs is None else G_opt_kwargs
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.002, betas=(0, 0.99), eps=1e-8) if D_opt_kwargs is None else D_opt_kwargs
    c.metrics = list(metrics or [])
    if c.options is None: # Called directly (not through train.py): store what we were given.
        c.options = json.loads(json.dumps({k: v for k, v in c.items() if k not in ('options', 'progress_fn', 'tick_fn', 'stop_fn')}, default=str))
    with RunLogger(run_dir, enabled=rank == 0, tensorboard=tensorboard) as logger, \
         backend_flags(c.device, cudnn_benchmark, deterministic), interrupt_guard() as interrupt:
        s = _setup(c, logger.echo)
        return _run(s, interrupt, logger)

#----------------------------------------------------------------------------
# The state of one run in this process: built by _setup, advanced by training_step and _run.

@dataclasses.dataclass
class RunState:
    c:            dnnlib.EasyDict   # The resolved configuration (training_loop's arguments).
    device:       torch.device
    rank:         int
    training_set: object            # The dataset (training.dataset.Dataset).
    data_iter:    object            # Endless iterator of this rank's (uint8 images, labels) batches.
    G:            torch.nn.Module
    D:            torch.nn.Module
    G_ema:        torch.nn.Module
    augment_pipe: object            # AugmentPipe or None.
    ada:          object            # AdaController or None.
    loss:         object            # training.loss.StyleGAN2Loss.
    phases:       list              # EasyDict(name, module, opt, interval) in execution order.
    generators:   dict              # {'latents', 'loss'}: torch.Generators saved in training states.
    grid_size:    tuple             # (gw, gh) of the snapshot grids.
    grid_z:       torch.Tensor      # [gw*gh, z_dim] fixed latents of the snapshot grids.
    grid_c:       torch.Tensor      # [gw*gh, c_dim] their labels.
    progress:     dict              # cur_nimg, cur_tick, batch_idx, tick_start_nimg (saved as a dict).

#----------------------------------------------------------------------------

def _setup(c, log):
    """Build every object of a run and, when resuming a state, restore it. Returns a RunState."""
    if c.batch_size % c.num_gpus or (c.batch_size // c.num_gpus) % c.batch_gpu:
        raise ValueError(f'batch_size {c.batch_size} must be divisible by num_gpus {c.num_gpus} * batch_gpu {c.batch_gpu}')
    state = checkpoint.load_training_state(c.resume_state) if c.resume_state else None
    progress = dict(cur_nimg=0, cur_tick=0, batch_idx=0, tick_start_nimg=0) if state is None else dict(state['progress'])
    if c.num_gpus > 1:
        training_stats.init_multiprocessing(rank=c.rank, sync_device=c.device if c.device.type == 'cuda' else torch.device('cpu'))
    seed_everything(c.random_seed * c.num_gpus + c.rank)

    # Data: the sampler restarts where the state left off.
    per_rank = c.batch_size // c.num_gpus
    log('Loading training data...')
    training_set, data_iter = build_training_set(c.training_set_kwargs, c.data_loader_kwargs, c.rank, c.num_gpus,
                                                 per_rank, c.random_seed, progress['batch_idx'] * per_rank, c.device)
    log(f'Images: {len(training_set)}, shape {list(training_set.image_shape)}, labels {list(training_set.label_shape)}')
    s, grid_images = _build_objects(c, training_set, data_iter, progress, state, log)

    if state is not None:
        log(f'Continuing from "{c.resume_state}" at kimg {progress["cur_nimg"] / 1000:.3f}')
        apply_state(state, (s.G, s.D, s.G_ema, s.augment_pipe), s.phases, s.ada, s.loss, s.generators)
    if c.rank == 0:
        checkpoint.check_run_dir(c.run_dir, checkpoint.estimate_snapshot_bytes([s.G, s.D, s.G_ema]))
        if state is None:
            _write_initial_grids(s, grid_images)
    return s

def _build_objects(c, training_set, data_iter, progress, state, log):
    # Networks, augmentation, loss, optimisers. Every rank builds the same initial weights.
    torch.manual_seed(c.random_seed)
    G, D, G_ema = build_networks(training_set, c.G_kwargs, c.D_kwargs, c.device)
    if c.resume_pkl and state is None:
        load_resume_pkl(c.resume_pkl, G, D, G_ema, log)
    augment_pipe = build_augment_pipe(c.augment_kwargs, c.augment_p, c.device)
    ada = None
    if augment_pipe is not None and c.ada_target is not None:
        ada = AdaController(augment_pipe, target=c.ada_target, interval=c.ada_interval, kimg=c.ada_kimg, batch_size=c.batch_size)
    loss = dnnlib.construct_class_by_name(device=c.device, G=G, D=D, augment_pipe=augment_pipe, **c.loss_kwargs)
    phases = build_phases(G, D, c.G_opt_kwargs, c.D_opt_kwargs, c.G_reg_interval, c.D_reg_interval)
    generators = dict(latents=torch.Generator().manual_seed(c.random_seed),
                      loss=torch.Generator().manual_seed(c.random_seed * c.num_gpus + c.rank + (1 << 20)))
    if c.num_gpus > 1:
        for module in (G, D, G_ema, augment_pipe):
            if module is not None:
                for tensor in misc.params_and_buffers(module):
                    torch.distributed.broadcast(tensor.data, src=0)

    # Snapshot grid (fixed latents from their own seed, so it does not disturb the training streams).
    grid_size, grid_images, grid_labels = setup_snapshot_image_grid(training_set, c.random_seed, c.grid_size, c.device)
    grid_gen = torch.Generator().manual_seed(c.random_seed + 1)
    grid_z = torch.randn([grid_labels.shape[0], G.z_dim], generator=grid_gen).to(c.device)
    s = RunState(c=c, device=c.device, rank=c.rank, training_set=training_set, data_iter=data_iter, G=G, D=D,
                 G_ema=G_ema, augment_pipe=augment_pipe, ada=ada, loss=loss, phases=phases, generators=generators,
                 grid_size=grid_size, grid_z=grid_z, grid_c=torch.from_numpy(grid_labels).to(c.device), progress=progress)
    return s, grid_images

def _write_initial_grids(s, grid_images):
    save_image_grid(grid_images, os.path.join(s.c.run_dir, 'reals.png'), drange=[0, 255], grid_size=s.grid_size)
    fakes = generate_grid(s.G_ema, s.grid_z, s.grid_c, s.c.batch_gpu)
    save_image_grid(fakes, os.path.join(s.c.run_dir, 'fakes_init.png'), drange=[-1, 1], grid_size=s.grid_size)

#----------------------------------------------------------------------------

def training_step(s):
    """One minibatch: every due phase, EMA, counters, ADA. Returns {term: value} of this step."""
    c, progress = s.c, s.progress
    real_img, real_c = next(s.data_iter)
    real_img = real_img.to(s.device).to(torch.float32) / 127.5 - 1                  # [n, C, H, W]
    real_c = real_c.to(s.device).to(torch.float32)
    gen_z, gen_c = draw_latents(s.generators['latents'], s.training_set, len(s.phases), c.batch_size, s.G.z_dim, s.device)
    gen_z, gen_c = shard(gen_z, c.rank, c.num_gpus, dim=1), shard(gen_c, c.rank, c.num_gpus, dim=1)
    terms = dict()
    for phase, phase_z, phase_c in zip(s.phases, gen_z, gen_c):
        if progress['batch_idx'] % phase.interval != 0:
            continue
        terms.update(run_phase(phase, s.loss, real_img, real_c, phase_z, phase_c, c.batch_gpu,
                               progress['cur_nimg'], s.generators['loss'], ada=s.ada))
    sync_running_averages([s.G, s.D])
    update_ema(s.G, s.G_ema, progress['cur_nimg'], c.batch_size, c.ema_kimg, c.ema_rampup)
    progress['cur_nimg'] += c.batch_size
    progress['batch_idx'] += 1
    if s.ada is not None:
        s.ada.step(progress['batch_idx'])
    return terms

@dataclasses.dataclass
class _TickClock:
    # Wall-clock bookkeeping of the progress lines.
    start:       float
    tick_start:  float
    maintenance: float = 0.0    # Seconds between ticks spent on snapshots, metrics and state (not training).

def _run(s, interrupt, logger):
    c, progress, log = s.c, s.progress, logger.echo
    stats = training_stats.Collector(regex='.*')
    now = time.time()
    clock = _TickClock(start=now, tick_start=now)
    tick_terms = dict()
    result = dnnlib.EasyDict(snapshot_pkl=None, snapshot_nimg=None, state_path=None, interrupted=False)
    log(f'Training for {c.total_kimg} kimg...')
    while True:
        if interrupt.agreed(s.device, c.stop_fn):
            _write_stop_snapshots(s, result)
            result.state_path = _write_state(s, log)
            result.interrupted = True
            log(f'Interrupted at kimg {progress["cur_nimg"] / 1000:.3f}; training state written to {result.state_path}')
            break
        for name, value in training_step(s).items():
            tick_terms.setdefault(name, []).append(value)
        done = progress['cur_nimg'] >= c.total_kimg * 1000
        if not done and progress['cur_tick'] != 0 and progress['cur_nimg'] < progress['tick_start_nimg'] + c.kimg_per_tick * 1000:
            continue
        tick_end = time.time()
        network_snapshot = _maintenance(s, stats, clock, tick_terms, tick_end, done, result, logger)

        # Start the next tick; the state is written after the counters move so a resume continues here.
        progress['cur_tick'] += 1
        progress['tick_start_nimg'] = progress['cur_nimg']
        tick_terms = dict()
        if network_snapshot:
            result.state_path = _write_state(s, log)
        now = time.time() # Everything since the end of the tick (snapshots, metrics, state) is maintenance.
        clock.maintenance, clock.tick_start = now - tick_end, now
        if done:
            break
    log('Exiting...' if result.interrupted else 'Done.')
    result.cur_nimg = progress['cur_nimg']
    result.cur_tick = progress['cur_tick']
    return result

def _maintenance(s, stats, clock, tick_terms, tick_end, done, result, logger):
    """End of a tick: progress line, image grid, network snapshot, metrics, statistics, callbacks.

    Returns True when this tick wrote a network snapshot (a training state follows it).
    """
    c, progress = s.c, s.progress
    tick, tick_kimg = progress['cur_tick'], (progress['cur_nimg'] - progress['tick_start_nimg']) / 1000
    tick_time = tick_end - clock.tick_start
    losses = {k: float(np.mean(v)) for k, v in tick_terms.items()}
    augment_p = float(s.augment_pipe.p) if s.augment_pipe is not None else 0.0
    logger.echo(format_tick_line(tick, progress['cur_nimg'], tick_end - clock.start, tick_time, tick_kimg,
                                 clock.maintenance, augment_p, losses, s.device))
    for name, value in (('Progress/tick', tick), ('Progress/kimg', progress['cur_nimg'] / 1e3), ('Progress/augment', augment_p),
                        ('Timing/sec_per_tick', tick_time), ('Timing/sec_per_kimg', tick_time / max(tick_kimg, 1e-8))):
        training_stats.report0(name, value)
    _check_finite_weights('maintenance', progress['cur_nimg'], s.G_ema)
    if c.rank == 0 and c.image_snapshot_ticks is not None and (done or tick % c.image_snapshot_ticks == 0):
        _write_fakes_grid(s)
    network_snapshot = c.network_snapshot_ticks is not None and (done or tick % c.network_snapshot_ticks == 0)
    if network_snapshot:
        result.snapshot_pkl = os.path.join(c.run_dir, checkpoint.snapshot_filename(progress['cur_nimg']))
        result.snapshot_nimg = progress['cur_nimg']
        if c.rank == 0:
            write_network_snapshot(result.snapshot_pkl, s.G, s.D, s.G_ema, s.augment_pipe, c.training_set_kwargs)
        _evaluate_metrics(s, result.snapshot_pkl)
    stats.update()
    logger.log(stats.as_dict(), step=progress['cur_nimg'] / 1e3, timestamp=time.time())
    if c.progress_fn is not None:
        c.progress_fn(progress['cur_nimg'], c.total_kimg * 1000)
    if c.tick_fn is not None:
        c.tick_fn(dnnlib.EasyDict(cur_nimg=progress['cur_nimg'], cur_tick=tick, run_dir=c.run_dir, losses=losses,
                                  snapshot_pkl=result.snapshot_pkl if network_snapshot else None, augment_p=augment_p))
    return network_snapshot

def _write_fakes_grid(s):
    fakes = generate_grid(s.G_ema, s.grid_z, s.grid_c, s.c.batch_gpu)
    path = os.path.join(s.c.run_dir, f'fakes{s.progress["cur_nimg"] // 1000:06d}.png')
    save_image_grid(fakes, path, drange=[-1, 1], grid_size=s.grid_size)

def _write_stop_snapshots(s, result):
    # A stopped run (stop_fn, Ctrl-C, SIGTERM) ends like a finished one: an image grid and a network
    # snapshot of the weights it stops with, unless the last tick wrote that snapshot (no metrics: a
    # stop should not wait for them). Runs may then snapshot rarely and still end with their latest model.
    c, nimg = s.c, s.progress['cur_nimg']
    if c.network_snapshot_ticks is None or result.snapshot_nimg == nimg:
        return
    path = os.path.join(c.run_dir, checkpoint.snapshot_filename(nimg))
    if c.rank == 0:
        if c.image_snapshot_ticks is not None:
            _write_fakes_grid(s)
        write_network_snapshot(path, s.G, s.D, s.G_ema, s.augment_pipe, c.training_set_kwargs)
    result.snapshot_pkl, result.snapshot_nimg = path, nimg

def _write_state(s, log):
    path = os.path.join(s.c.run_dir, checkpoint.state_filename(s.progress['cur_nimg']))
    state = collect_state(s.c.options, (s.G, s.D, s.G_ema, s.augment_pipe), s.phases, s.ada, s.loss, s.progress, s.generators)
    if s.rank == 0:
        checkpoint.save_training_state(path, state)
    distributed.barrier()
    return path

def _evaluate_metrics(s, snapshot_pkl):
    c = s.c
    for metric in c.metrics:
        result = metric_main.calc_metric(metric=metric, G=s.G_ema, dataset_kwargs=c.training_set_kwargs,
                                         num_gpus=c.num_gpus, rank=c.rank, device=s.device)
        if c.rank == 0:
            metric_main.report_metric(result, run_dir=c.run_dir, snapshot_pkl=snapshot_pkl)

#----------------------------------------------------------------------------
