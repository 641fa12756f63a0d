# Two CPU processes (gloo) with per-rank data and latent shards and averaged gradients reproduce the
# one-process run with the same total batch, within float tolerance.

import json
import os

import torch

import dnnlib
from tests.training import helpers
from training import checkpoint
from training import launch

#----------------------------------------------------------------------------

LR = 0.01 # SGD step of G and D.

def _config(tmp_path, data, name, gpus):
    # Per-rank randomness (network noise inputs, style mixing, PL and augmentation draws) is switched off:
    # those streams are per rank by design. mbstd groups of 2 cover the same samples in both layouts.
    # SGD with momentum instead of Adam: what is tested is the sharding and the gradient averaging. Adam
    # divides each gradient element by its own running magnitude (its first step is lr * sign(g)), so
    # rounding noise on a gradient near zero moves a weight by up to a whole step (seen on an AVX2 EPYC:
    # 4e-4 on one weight); SGD keeps the weights linear in the gradients.
    c = helpers.tiny_config(data, cfg='stylegan2', batch=4, gpus=gpus, kimg=0.008, tick=1, aug='noaug', mbstd_group=2)
    c.G_kwargs.use_noise = False
    c.loss_kwargs.pl_weight = 0
    c.loss_kwargs.style_mixing_prob = 0
    c.G_reg_interval = None
    for key in ('G_opt_kwargs', 'D_opt_kwargs'):
        c[key] = dnnlib.EasyDict(class_name='torch.optim.SGD', lr=LR, momentum=0.9)
    c.run_dir = os.path.join(tmp_path, name)
    return c

def _buffer_tolerances(one, two):
    # Per tensor: the momentum buffers (0.9 * g1 + g2, the gradients summed over 4 samples in one process,
    # over 2 + 2 averaged across two) must agree to 1e-3 of their largest element: fp32 sums in another
    # order, and a ToRGB bias's gradient sums over every pixel and cancels (measured 1.8e-4 there, <= 7e-5
    # elsewhere; D <= 1.4e-6). A wrong shard or a missing average is off by O(1).
    # Returns {param index: that tolerance}.
    tols = {}
    for idx, sa in one['state'].items():
        buf = sa['momentum_buffer']
        tol = 1e-3 * float(buf.abs().max())
        torch.testing.assert_close(two['state'][idx]['momentum_buffer'], buf, atol=tol, rtol=0)
        tols[idx] = tol
    assert max(tols.values()) > 0 # Gradients were non-zero, so the comparison is not vacuous.
    return tols

def test_two_gloo_processes_match_one_process_with_the_same_total_batch(tmp_path):
    tmp_path = str(tmp_path)
    data = helpers.make_dataset(tmp_path)
    one = _config(tmp_path, data, 'one', gpus=1)
    two = _config(tmp_path, data, 'two', gpus=2)
    assert two.batch_gpu == 2 and one.batch_gpu == 4
    launch.launch_training(one)
    launch.launch_training(two)
    a = checkpoint.load_training_state(checkpoint.find_latest_state(one.run_dir))
    b = checkpoint.load_training_state(checkpoint.find_latest_state(two.run_dir))
    assert a['progress'] == b['progress'] and a['progress']['cur_nimg'] == 8
    tol_G = _buffer_tolerances(a['G_opt'], b['G_opt'])
    tol_D = _buffer_tolerances(a['D_opt'], b['D_opt'])
    # Two SGD steps move a weight by lr * (g1 + (0.9 g1 + g2)): the weights differ by about lr * 2 * the
    # buffers' tolerance (g1 and g2 are of one size), plus the weights' own rounding (1e-6). Measured:
    # <= 2.4e-7, i.e. rounding.
    for key, tols in (('G', tol_G), ('D', tol_D), ('G_ema', tol_G)):
        atol = 2 * LR * max(tols.values()) + 1e-6
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, atol=atol, rtol=1e-5, msg=f'{key}.{name}')
    # Statistics were aggregated over both ranks: the last tick (one step) counts 2 reals per rank.
    with open(os.path.join(two.run_dir, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert stats[-1]['Loss/D/loss']['num'] == 2 * 2

#----------------------------------------------------------------------------
