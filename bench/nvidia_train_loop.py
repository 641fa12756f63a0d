"""NVIDIA's whole training loop on the CPU, as an oracle for ours: their `training_loop.training_loop`,
networks, loss and data pipeline, from a local NVlabs/stylegan3 checkout, with the options of one of our
train.py runs. Results go to docs/collapse.md ("Our whole training loop against NVIDIA's").

    python bench/nvidia_train_loop.py --nvidia=~/src/stylegan3 --data=phantoms-4000-32.zip --outdir=nv-run \\
        --cfg=stylegan2 --batch=32 --gamma=0.05 --cbase=2048 --cmax=32 --map-depth=2 --zdim=128 --kimg=64
    # the same run with ours, for comparison (rows of the same options):
    python train.py --outdir=runs --data=phantoms-4000-32.zip --gpus=1 --cfg=stylegan2 --batch=32 --gamma=0.05 \\
        --cbase=2048 --cmax=32 --map-depth=2 --zdim=128 --cond=1 --aug=noaug --metrics=none --tick=4 --snap=1 \\
        --fp32=1 --workers=0 --device=cpu

Their loop is written for CUDA. Nothing of theirs is copied or edited: this process imports their tree as it
is and puts stand-ins in front of the few CUDA-only calls (the device it picks, timing events, peak-memory
counters, pinned memory) and of the old torch Sampler signature. Their snapshots load with our loader, so
`bench/collapse.py` measures both runs the same way.
"""

import json
import os
import sys
import types

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))) # bench/ only: their packages must not meet ours.
from nvidia_reference import _stand_in_for_unused_imports, checkout_problem # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------
# Stand-ins for the CUDA-only parts of their loop.

class _CpuCuda:
    # The torch.cuda calls their loop makes: per-phase timing events (None disables them there) and the
    # peak-memory fields of the status line.
    Event = staticmethod(lambda **_: None)
    max_memory_allocated = staticmethod(lambda *_: 0)
    max_memory_reserved = staticmethod(lambda *_: 0)
    reset_peak_memory_stats = staticmethod(lambda *_: None)

    def __getattr__(self, name):
        return getattr(torch.cuda, name)

class _CpuTorch(types.ModuleType):
    # What their training_loop module sees as `torch`: the real one, except that a CUDA device is the CPU.
    def __init__(self):
        super().__init__('torch')
        self.cuda = _CpuCuda()

    @staticmethod
    def device(kind, *_):
        return torch.device('cpu' if str(kind).startswith('cuda') else kind)

    def __getattr__(self, name):
        return getattr(torch, name)

def _stand_in_for_imports():
    _stand_in_for_unused_imports()
    try:
        import psutil # pylint: disable=unused-import,import-outside-toplevel
    except ImportError: # Only the status line's cpumem field uses it.
        stand_in = types.ModuleType('psutil')
        stand_in.Process = lambda _pid: types.SimpleNamespace(memory_info=lambda: types.SimpleNamespace(rss=0))
        sys.modules['psutil'] = stand_in

def _stand_in_for_cuda(loop_module):
    loop_module.torch = _CpuTorch()
    torch.Tensor.pin_memory = lambda self, *_, **__: self       # Pinned memory needs CUDA; on the CPU it is a no-op.
    torch.utils.data.Sampler.__init__ = lambda self, *_, **__: None # Recent torch dropped Sampler(data_source).

#----------------------------------------------------------------------------
# Their config for our options (the values their train.py would set; z and w size as our --zdim).

def nvidia_config(data, outdir, cfg, batch, gamma, cbase, cmax, map_depth, zdim, mbstd_group, glr, dlr, kimg, tick, seed):
    import dnnlib # pylint: disable=import-outside-toplevel
    E = dnnlib.EasyDict
    G = E(z_dim=zdim, w_dim=zdim, mapping_kwargs=E(num_layers=map_depth), channel_base=cbase, channel_max=cmax,
          num_fp16_res=0, conv_clamp=None)
    loss = E(class_name='training.loss.StyleGAN2Loss', r1_gamma=gamma)
    if cfg == 'stylegan2':
        G.update(class_name='training.networks_stylegan2.Generator', fused_modconv_default='inference_only')
        loss.update(style_mixing_prob=0.9, pl_weight=2, pl_no_weight_grad=True)
    else:
        G.update(class_name='training.networks_stylegan3.Generator', magnitude_ema_beta=0.5 ** (batch / 20e3))
    adam = lambda lr: E(class_name='torch.optim.Adam', lr=lr, betas=[0, 0.99], eps=1e-8)
    return E(
        G_kwargs=G,
        D_kwargs=E(class_name='training.networks_stylegan2.Discriminator', block_kwargs=E(freeze_layers=0), mapping_kwargs=E(),
                   epilogue_kwargs=E(mbstd_group_size=mbstd_group), channel_base=cbase, channel_max=cmax, num_fp16_res=0,
                   conv_clamp=None),
        G_opt_kwargs=adam(glr if glr is not None else (0.002 if cfg == 'stylegan2' else 0.0025)), D_opt_kwargs=adam(dlr),
        loss_kwargs=loss,
        data_loader_kwargs=E(pin_memory=False, prefetch_factor=None, num_workers=0),
        training_set_kwargs=E(class_name='training.dataset.ImageFolderDataset', path=os.path.abspath(data), use_labels=True,
                              max_size=None, xflip=False, random_seed=seed),
        num_gpus=1, batch_size=batch, batch_gpu=batch, metrics=[], total_kimg=kimg, kimg_per_tick=tick,
        image_snapshot_ticks=1, network_snapshot_ticks=1, random_seed=seed, ema_kimg=batch * 10 / 32,
        G_reg_interval=4 if cfg == 'stylegan2' else None, run_dir=os.path.abspath(outdir))

#----------------------------------------------------------------------------

@click.command()
@click.option('--nvidia',      required=True, metavar='DIR', help='A local NVlabs/stylegan3 checkout')
@click.option('--data',        required=True, metavar='ZIP', help='Training set (dataset_tool.py zip with grade labels)')
@click.option('--outdir',      required=True, metavar='DIR', help='Their run directory (snapshots, fakes grids, log)')
@click.option('--cfg',         type=click.Choice(['stylegan2', 'stylegan3-t']), default='stylegan2', show_default=True, help='Architecture')
@click.option('--batch',       type=click.IntRange(min=1), default=32, show_default=True, help='Batch size')
@click.option('--gamma',       type=click.FloatRange(min=0), default=0.05, show_default=True, help='R1 weight')
@click.option('--cbase',       type=click.IntRange(min=1), default=2048, show_default=True, help='channel_base of G and D')
@click.option('--cmax',        type=click.IntRange(min=1), default=32, show_default=True, help='channel_max of G and D')
@click.option('--map-depth',   type=click.IntRange(min=1), default=2, show_default=True, help='Mapping layers')
@click.option('--zdim',        type=click.IntRange(min=1), default=128, show_default=True, help='Size of z and w')
@click.option('--mbstd-group', type=click.IntRange(min=1), default=4, show_default=True, help='Minibatch-std group size')
@click.option('--glr',         type=float, default=None, help='G learning rate  [default: 0.002 for stylegan2, 0.0025 for stylegan3-t]')
@click.option('--dlr',         type=float, default=0.002, show_default=True, help='D learning rate')
@click.option('--kimg',        type=click.IntRange(min=1), default=64, show_default=True, help='Length of the run')
@click.option('--tick',        type=click.IntRange(min=1), default=4, show_default=True, help='kimg per tick (a snapshot and a grid every tick)')
@click.option('--seed',        type=click.IntRange(min=0), default=0, show_default=True, help='Their random seed')
def main(nvidia, outdir, **opts):
    """Train with NVIDIA's training loop on the CPU (no augmentation, conditional on the dataset's labels)."""
    problem = checkout_problem(nvidia, ('training_loop', 'loss', 'networks_stylegan2', 'networks_stylegan3', 'dataset'))
    if problem:
        raise click.BadParameter(problem, param_hint='--nvidia')
    if not os.path.isfile(opts['data']):
        raise click.BadParameter(f'{opts["data"]}: no such file', param_hint='--data')
    sys.path.insert(0, os.path.abspath(os.path.expanduser(nvidia)))
    _stand_in_for_imports()
    from torch_utils import custom_ops, training_stats # pylint: disable=import-outside-toplevel
    from training import training_loop # pylint: disable=import-outside-toplevel
    _stand_in_for_cuda(training_loop)
    c = nvidia_config(outdir=outdir, **opts)
    os.makedirs(c.run_dir, exist_ok=True)
    with open(os.path.join(c.run_dir, 'training_options.json'), 'w') as f:
        json.dump(c, f, indent=2)
    training_stats.init_multiprocessing(rank=0, sync_device=None)
    custom_ops.verbosity = 'none'
    training_loop.training_loop(rank=0, **c)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
