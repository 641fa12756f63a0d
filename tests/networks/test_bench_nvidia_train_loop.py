# bench/nvidia_train_loop.py without an NVIDIA checkout: the config it hands their loop (our options,
# their train.py's values), the CPU stand-ins for their CUDA-only calls, and the option checks that run
# before anything is imported.

import os

import click.testing
import torch

from tests.support.bench import load_bench

def _load():
    return load_bench('nvidia_train_loop')

def _config(bench, cfg, batch=32):
    import dnnlib # Ours stands in for theirs: the config only uses EasyDict.
    c = bench.nvidia_config(data='d.zip', outdir='out', cfg=cfg, batch=batch, gamma=0.05, cbase=2048, cmax=32, map_depth=2,
                            zdim=128, mbstd_group=4, glr=None, dlr=0.002, kimg=64, tick=4, seed=0)
    assert isinstance(c, dnnlib.EasyDict)
    return c

def test_stylegan2_config_has_its_regularisers_and_rates():
    c = _config(_load(), 'stylegan2')
    assert c.G_kwargs.class_name.endswith('stylegan2.Generator') and c.G_kwargs.z_dim == c.G_kwargs.w_dim == 128
    assert c.loss_kwargs == dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0.05, style_mixing_prob=0.9, pl_weight=2,
                                 pl_no_weight_grad=True)
    assert c.G_reg_interval == 4 and c.G_opt_kwargs.lr == 0.002 and c.D_opt_kwargs.lr == 0.002
    assert c.ema_kimg == 10 and c.D_kwargs.epilogue_kwargs.mbstd_group_size == 4
    assert c.training_set_kwargs.use_labels and not c.training_set_kwargs.xflip
    assert 'augment_kwargs' not in c and c.run_dir == os.path.abspath('out')

def test_stylegan3_config_has_its_magnitude_ema_and_no_path_length():
    c = _config(_load(), 'stylegan3-t', batch=8)
    assert c.G_kwargs.class_name.endswith('stylegan3.Generator') and c.G_kwargs.magnitude_ema_beta == 0.5 ** (8 / 20e3)
    assert c.G_reg_interval is None and c.loss_kwargs == dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0.05)
    assert c.G_opt_kwargs.lr == 0.0025 and c.ema_kimg == 2.5

def test_cpu_stand_ins_map_cuda_to_the_cpu():
    bench = _load()
    fake_torch = bench._CpuTorch()
    assert fake_torch.device('cuda', 0) == torch.device('cpu') and fake_torch.device('cpu') == torch.device('cpu')
    assert fake_torch.cuda.Event(enable_timing=True) is None and fake_torch.cuda.max_memory_allocated('cpu') == 0
    assert fake_torch.randn is torch.randn and fake_torch.cuda.is_available is torch.cuda.is_available

def test_bad_options_are_named_before_anything_runs(tmp_path):
    main = _load().main
    result = click.testing.CliRunner().invoke(main, ['--nvidia=/nonexistent/stylegan3', f'--data={tmp_path}/d.zip', f'--outdir={tmp_path}/o'])
    assert result.exit_code == 2 and '--nvidia' in result.output and 'no training/training_loop.py' in result.output
    fake = tmp_path / 'sg3' / 'training'
    fake.mkdir(parents=True)
    for module in ('training_loop', 'loss', 'networks_stylegan2', 'networks_stylegan3', 'dataset'):
        (fake / f'{module}.py').write_text('')
    result = click.testing.CliRunner().invoke(main, [f'--nvidia={tmp_path}/sg3', f'--data={tmp_path}/d.zip', f'--outdir={tmp_path}/o'])
    assert result.exit_code == 2 and '--data' in result.output and 'no such file' in result.output
    assert not (tmp_path / 'o').exists()
