# Shared fixtures of the fundus.fundusgan tests: tiny generator snapshots with a real w_avg, phantom zips
# from dataset_tool.py, and a tiny training configuration (32 px, <= 16 channels).

import os
import subprocess
import sys

import torch
from click.testing import CliRunner

import dataset_tool
from fundus.fundusgan import train as train_lib
from tests.support import tiny_configs
from torch_utils import persistence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY_ENCODER = dict(backbone='resnet18', width=8, fpn_channels=16)

#----------------------------------------------------------------------------

def tiny_generator(kind='sg2', res=32, seed=0):
    """A tiny generator with w_avg set to the mean of 256 mapped latents."""
    kwargs = dict(sg2=tiny_configs.sg2_generator_kwargs, sg3=tiny_configs.sg3_generator_kwargs,
                  sg3r=tiny_configs.sg3r_generator_kwargs)[kind](img_resolution=res)
    torch.manual_seed(seed)
    G = tiny_configs.build(kwargs).eval()
    with torch.no_grad():
        z = torch.randn([256, G.z_dim], generator=torch.Generator().manual_seed(seed))
        G.mapping.w_avg.copy_(G.mapping(z, None)[:, 0].mean(dim=0))
    return G

def generator_pkl(path, kind='sg2', res=32, seed=0):
    G = tiny_generator(kind, res, seed)
    persistence.save_network_pkl(path, dict(G=G, G_ema=G, D=None, augment_pipe=None, training_set_kwargs=None))
    return str(path)

def phantom_zip(path, count, res=32, seed=0):
    r = CliRunner().invoke(dataset_tool.main, ['--source', f'phantom:{count}', '--dest', str(path),
                                               '--resolution', f'{res}x{res}', '--seed', str(seed)])
    assert r.exit_code == 0, r.output
    return str(path)

def tiny_options(generator, data, **overrides):
    kwargs = dict(generator=generator, data=data, steps=4, batch=2, lr=1e-3, val=2, val_every=2, snap_every=2,
                  log_every=1, grid_rows=2, **TINY_ENCODER)
    kwargs.update(overrides)
    return train_lib.default_options(**kwargs)

def cli(*args, env=None, **popen_kwargs):
    """Start `python -m fundus.fundusgan ARGS` with one CPU thread; returns the Popen."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=ROOT)
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, '-m', 'fundus.fundusgan', *map(str, args)], cwd=ROOT, env=full_env, **popen_kwargs)

#----------------------------------------------------------------------------
