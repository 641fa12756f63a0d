# train.py: --help equals the committed docs, --dry-run constructs every object for every --cfg, option
# checks raise errors that name the option, and the resolved configuration follows NVIDIA's presets.

import json
import os

import click
import pytest
import torch
from click.testing import CliRunner

import train
from tests.support import write_help_docs
from torch_utils import persistence
from tests.training import helpers
from training import checkpoint, config, launch, training_loop

#----------------------------------------------------------------------------

def test_help_matches_committed_docs():
    with open(os.path.join(helpers.ROOT, 'docs', 'train-help.txt')) as f:
        assert write_help_docs.help_text('train.py') == f.read()

@pytest.mark.parametrize('cfg', ['stylegan3-t', 'stylegan3-r', 'stylegan2'])
def test_dry_run_constructs_every_object_for_every_cfg(tmp_path, cfg):
    c = helpers.tiny_config(helpers.make_dataset(str(tmp_path)), cfg=cfg)
    c.G_opt_kwargs.betas = (0, 0.99) # Int and float mixed, as NVIDIA writes it: must still construct.
    objs = launch.construct_objects(c)
    assert objs.G.img_resolution == 16 and objs.D.img_resolution == 16
    assert isinstance(objs.G_opt, torch.optim.Adam) and isinstance(objs.D_opt, torch.optim.Adam)
    assert objs.augment_pipe is not None and type(objs.loss).__name__ == 'StyleGAN2Loss'
    img = objs.G(torch.zeros([2, objs.G.z_dim]), torch.zeros([2, 0]))
    assert objs.D(img, torch.zeros([2, 0])).shape == (2, 1)
    if cfg == 'stylegan3-r':
        assert objs.loss.blur_init_sigma == 10

def test_resolved_config_follows_presets(tmp_path):
    data = helpers.make_dataset(str(tmp_path))
    c = config.make_config(cfg='stylegan3-r', data=data, gpus=2, batch=32, gamma=8, metrics='none', device='cpu')
    assert c.G_kwargs.channel_base == 65536 and c.D_kwargs.channel_base == 32768
    assert c.G_kwargs.conv_kernel == 1 and c.G_kwargs.use_radial_filters
    assert c.loss_kwargs.blur_fade_kimg == 200 and c.batch_gpu == 16
    assert c.G_kwargs.magnitude_ema_beta == pytest.approx(0.5 ** (32 / 20000))
    assert c.G_opt_kwargs.lr == 0.0025 and tuple(c.G_opt_kwargs.betas) == (0, 0.99)
    assert c.ema_kimg == 10 and c.ada_target == 0.6 and c.augment_kwargs.hue == 1
    assert c.desc == 'stylegan3-r-data-gpus2-batch32-gamma8'
    c = config.make_config(cfg='stylegan2', data=data, gpus=1, batch=8, gamma=1, metrics='none', device='cpu',
                          aug='fixed', p=0.3, augpipe='fundus', resume='x.pkl')
    assert c.G_reg_interval == 4 and c.loss_kwargs.pl_weight == 2 and c.G_kwargs.mapping_kwargs.num_layers == 8
    assert c.augment_p == 0.3 and c.ada_target is None and 'hue' not in c.augment_kwargs
    assert c.resume_pkl == 'x.pkl' and c.ada_kimg == 100 and c.ema_rampup is None
    json.dumps(c) # The whole configuration is JSON-serialisable.

def test_synthesis_size_options_reach_the_generator(tmp_path):
    data = helpers.make_dataset(str(tmp_path))
    c = config.make_config(cfg='stylegan3-t', data=data, gpus=1, batch=4, gamma=1, metrics='none', device='cpu',
                           cbase=256, cmax=16, zdim=24, layers=4, margin=2)
    G = launch.construct_objects(c).G
    assert (G.z_dim, G.w_dim, G.synthesis.num_layers, G.synthesis.margin_size) == (24, 24, 4, 2)
    assert G.num_ws == 4 + 2 # Input + layers + output ToRGB, as in NVIDIA's layout (num_layers + 2).
    assert config.changed_resume_options(c, dict(layers=4, zdim=24, margin=2)) == []
    assert config.changed_resume_options(c, dict(layers=5)) == [('layers', 4, 5)]
    default = config.make_config(cfg='stylegan3-t', data=data, gpus=1, batch=4, gamma=1, metrics='none', device='cpu')
    assert 'num_layers' not in default.G_kwargs # Unset sizes stay out of the options, as in NVIDIA's train.py.
    assert config.changed_resume_options(default, dict(layers=6, margin=10)) == [('layers', 14, 6)] # Defaults count.
    with pytest.raises(config.ConfigError, match='--layers and --margin: only stylegan3'):
        config.make_config(cfg='stylegan2', data=data, gpus=1, batch=4, gamma=1, metrics='none', device='cpu', layers=4)

@pytest.mark.parametrize('args, option', [
    (['--batch=6', '--gpus=4'], '--batch=6'),
    (['--batch=8', '--batch-gpu=2'], '--batch-gpu=2'),
    (['--metrics=not_a_metric'], '--metrics'),
    (['--cond=1'], '--data'),
])
def test_bad_options_name_the_option(tmp_path, args, option):
    data = helpers.make_dataset(str(tmp_path))
    base = {'--outdir': str(tmp_path / 'runs'), '--cfg': 'stylegan2', '--data': data, '--gpus': '1', '--batch': '8', '--gamma': '1', '--device': 'cpu'}
    for a in args:
        k, v = a.split('=')
        base[k] = v
    result = CliRunner().invoke(train.main, [f'{k}={v}' for k, v in base.items()] + ['--dry-run'])
    assert result.exit_code != 0
    assert option in result.output
    assert 'Traceback' not in result.output

def test_cli_dry_run_prints_options_and_constructed_objects(tmp_path):
    data = helpers.make_dataset(str(tmp_path))
    args = [f'--outdir={tmp_path}/runs', '--cfg=stylegan2', f'--data={data}', '--gpus=1', '--batch=4', '--gamma=1',
            '--cbase=256', '--cmax=32', '--map-depth=2', '--metrics=none', '--device=cpu', '--fp32=1', '-n']
    result = CliRunner().invoke(train.main, args)
    assert result.exit_code == 0, result.output
    assert '"r1_gamma": 1.0' in result.output and 'Constructed G: Generator' in result.output
    assert not os.path.exists(tmp_path / 'runs')

def _tiny_run_and_its_command(tmp_path):
    # A stopped run (one step, a training state) and the train.py command line that describes it.
    data = helpers.make_dataset(str(tmp_path))
    c = helpers.tiny_config(data, cfg='stylegan2', kimg=0.004, tick=0.004, deterministic=True)
    c.run_dir = str(tmp_path / 'runs' / '00000-run')
    launch.launch_training(c)
    command = [f'--outdir={tmp_path}/runs', '--cfg=stylegan2', f'--data={data}', '--gpus=1', '--batch=4', '--gamma=1',
               '--cbase=256', '--cmax=32', '--map-depth=2', '--aug=ada', '--metrics=none', '--workers=0',
               '--device=cpu', '--fp32=1', '--seed=0', '--deterministic=1']
    return c.run_dir, command

def test_same_command_with_resume_appended_continues_the_run(tmp_path):
    run_dir, command = _tiny_run_and_its_command(tmp_path)
    before = checkpoint.load_training_state(checkpoint.find_latest_state(run_dir))['progress']['cur_nimg']
    result = CliRunner().invoke(train.main, command + [f'--resume={run_dir}'])
    assert result.exit_code == 0, result.output
    assert 'Continuing from' in result.output
    after = checkpoint.load_training_state(checkpoint.find_latest_state(run_dir))['progress']['cur_nimg']
    assert after == before + 4 # One more step of batch 4 in the same run directory.
    assert os.listdir(tmp_path / 'runs') == ['00000-run']

def test_resume_refuses_a_changed_option_naming_old_and_new_value(tmp_path):
    run_dir, command = _tiny_run_and_its_command(tmp_path)
    result = CliRunner().invoke(train.main, [a for a in command if not a.startswith('--gamma')] + ['--gamma=3', f'--resume={run_dir}'])
    assert result.exit_code != 0
    assert '--gamma: the run used 1.0, the command says 3.0' in result.output
    for unchanged in ('--cfg', '--data', '--batch', '--cbase', '--cmax', '--seed'):
        assert unchanged + ':' not in result.output
    assert 'Traceback' not in result.output

def test_unknown_option_and_unknown_config_key_are_errors_naming_them(tmp_path):
    data = helpers.make_dataset(str(tmp_path))
    with pytest.raises(config.ConfigError, match='gama: unknown training option'):
        config.make_config(cfg='stylegan2', data=data, gpus=1, batch=4, gamma=1, metrics='none', device='cpu', gama=2)
    c = helpers.tiny_config(data)
    c.kimg_per_tik = 1
    with pytest.raises(config.ConfigError, match='kimg_per_tik: unknown training config key'):
        launch.launch_training(c, outdir=str(tmp_path / 'runs'), dry_run=True, echo=lambda *_: None)
    assert not os.path.exists(tmp_path / 'runs')

def test_launch_callbacks_report_ticks_and_stop_writes_a_state(tmp_path):
    c = helpers.tiny_config(helpers.make_dataset(str(tmp_path)), kimg=0.04, tick=0.008)
    ticks, progress = [], []
    run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'), echo=lambda *_: None,
                                     progress_fn=lambda cur, total: progress.append((cur, total)),
                                     tick_fn=ticks.append, stop_fn=lambda: len(ticks) >= 2)
    assert [t.cur_tick for t in ticks] == [0, 1] and progress == [(4, 40), (12, 40)]
    assert ticks[1].snapshot_pkl.endswith('network-snapshot-000000.pkl') and 'Dreal' in ticks[1].losses
    state = checkpoint.load_training_state(checkpoint.find_latest_state(run_dir))
    assert state["progress"]["cur_nimg"] == 12 # Stopped after the second tick, with a state to resume from.

def test_stop_writes_the_final_grid_and_snapshot_when_the_last_tick_did_not(tmp_path):
    # Snapshots every 100 ticks: only tick 0 writes one (kimg 0.004); the stop after tick 2 (kimg 0.020)
    # adds a grid and a snapshot of the weights it stops with, equal to the state's G_ema.
    c = helpers.tiny_config(helpers.make_dataset(str(tmp_path)), kimg=0.04, tick=0.008)
    c.network_snapshot_ticks = c.image_snapshot_ticks = 100
    ticks = []
    run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'), echo=lambda *_: None,
                                     tick_fn=ticks.append, stop_fn=lambda: len(ticks) >= 3)
    assert sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-')) == ['network-snapshot-000000.pkl']
    state = checkpoint.load_training_state(checkpoint.find_latest_state(run_dir))
    assert state['progress']['cur_nimg'] == 20
    snapshot = os.path.join(run_dir, 'network-snapshot-000000.pkl') # Both at kimg 0: the stop's replaced tick 0's.
    G_ema = persistence.load_network_pkl(snapshot)['G_ema']
    for name, value in G_ema.state_dict().items():
        assert torch.equal(value, state['G_ema'][name]), name
    assert os.path.isfile(os.path.join(run_dir, 'fakes000000.png'))

def test_stop_right_after_a_snapshot_tick_does_not_write_it_again(tmp_path, monkeypatch):
    c = helpers.tiny_config(helpers.make_dataset(str(tmp_path)), kimg=0.04, tick=0.008)
    written = []
    real_write = training_loop.write_network_snapshot
    monkeypatch.setattr(training_loop, 'write_network_snapshot', lambda path, *a: written.append(path) or real_write(path, *a))
    ticks = []
    launch.launch_training(c, outdir=str(tmp_path / 'runs'), echo=lambda *_: None,
                           tick_fn=ticks.append, stop_fn=lambda: len(ticks) >= 2)
    assert len(written) == 2 # Ticks 0 and 1 (every tick, --snap=1); none added by the stop.
