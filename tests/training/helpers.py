# Shared pieces of the training tests: a tiny dataset and a tiny resolved config built through
# training.config.make_config (so the real option handling is exercised) with networks from tests/support.

import json
import os
import subprocess
import sys

import dnnlib
from tests.support import synth_fundus, tiny_configs
from training import config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NET_KEYS = ('img_resolution', 'img_channels', 'c_dim')

#----------------------------------------------------------------------------

def make_dataset(tmp_path, num_images=16, num_grades=None):
    return synth_fundus.write_dataset(os.path.join(tmp_path, 'data'), num_images=num_images, num_grades=num_grades)

def tiny_config(data, cfg='stylegan2', batch=4, gpus=1, kimg=1, tick=1, snap=1, aug='ada', gamma=1.0, **options):
    """A resolved config for a 16-px run; ticks and lengths may be fractional kimg (tests only)."""
    c = config.make_config(cfg=cfg, data=data, gpus=gpus, batch=batch, gamma=gamma, aug=aug, metrics='none',
                          kimg=1, tick=1, snap=snap, workers=0, device='cpu', fp32=True, **options)
    if cfg == 'stylegan2':
        G = tiny_configs.sg2_generator_kwargs()
    elif cfg == 'stylegan3-t':
        G = tiny_configs.sg3_generator_kwargs()
    else:
        G = tiny_configs.sg3r_generator_kwargs()
    D = tiny_configs.sg2_discriminator_kwargs()
    for key in _NET_KEYS:
        G.pop(key)
        D.pop(key)
    if cfg != 'stylegan2':
        G.magnitude_ema_beta = c.G_kwargs.magnitude_ema_beta
    else:
        G.fused_modconv_default = c.G_kwargs.fused_modconv_default
    D.block_kwargs = c.D_kwargs.block_kwargs
    D.epilogue_kwargs.mbstd_group_size = c.D_kwargs.epilogue_kwargs.mbstd_group_size
    c.G_kwargs, c.D_kwargs = G, D
    c.total_kimg = kimg
    c.kimg_per_tick = tick
    c.grid_size = (2, 2)
    c.tensorboard = False
    return c

def run_in_subprocess(code, env=None, **popen_kwargs):
    """Start `python -c code` in the repository root with one CPU thread."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=ROOT)
    full_env.update(env or {})
    prelude = 'import torch; torch.set_num_threads(1); torch.set_num_interop_threads(1)\n'
    return subprocess.Popen([sys.executable, '-c', prelude + code], cwd=ROOT, env=full_env, **popen_kwargs)

def config_json(c):
    return json.dumps(json.loads(json.dumps(c)))

#----------------------------------------------------------------------------
