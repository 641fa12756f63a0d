# The CLI: committed help text, and the fundusgan architecture end to end (train, reload, vary, mix).

import os

import numpy as np
import torch
from click.testing import CliRunner

from fundus.fundusgan import __main__ as cli
from fundus.fundusgan import invert as invert_lib
from fundus.fundusgan import train as train_lib
from tests.fundus.fundusgan import help_doc
from tests.fundus.fundusgan import helpers

#----------------------------------------------------------------------------

def test_help_matches_docs():
    with open(help_doc.PATH, encoding='utf-8') as f:
        assert f.read() == help_doc.help_text(), 'regenerate with: python -m tests.fundus.fundusgan.help_doc'

def test_every_option_is_documented():
    for command in cli.main.commands.values():
        for param in command.params:
            assert param.help, f'{command.name} {param.name} has no help'

def test_fundusgan_arch_trains_reloads_and_varies(tmp_path):
    G = helpers.generator_pkl(tmp_path / 'g.pkl', 'sg2', 32)
    data = helpers.phantom_zip(tmp_path / 'ph.zip', 6, 32)
    opts = helpers.tiny_options(G, data, arch='fundusgan', lpips=0.0, steps=2, val_every=100, snap_every=100)
    run_dir = train_lib.training_loop(opts, str(tmp_path / 'run'), progress=False)
    pkl = os.path.join(run_dir, 'encoder-snapshot-000002.pkl')
    state = torch.load(os.path.join(run_dir, train_lib.STATE_FILE), weights_only=True)
    E, G2, info = invert_lib.load_encoder_snapshot(pkl)
    assert info['arch'] == 'fundusgan' and G2.num_ws == E.num_ws == 1 + 2 * 4 + 1 + 2 + 1
    assert all(torch.equal(state['G'][k], v) for k, v in G2.state_dict().items())
    assert state['opt_G'] is not None # New generator layers train.
    r = CliRunner().invoke(cli.main, ['vary', f'--network={pkl}', f'--images={data}', f'--outdir={tmp_path / "v"}', '--count=2'])
    assert r.exit_code == 0, r.output
    assert len([f for f in os.listdir(tmp_path / 'v') if f.endswith('.png')]) == 12

def test_train_g_fine_tunes_the_generator(tmp_path):
    G = helpers.generator_pkl(tmp_path / 'g.pkl', 'sg2', 32)
    data = helpers.phantom_zip(tmp_path / 'ph.zip', 6, 32)
    opts = helpers.tiny_options(G, data, lpips=0.0, steps=2, train_g=True)
    run = train_lib.Run(opts, str(tmp_path), progress=False)
    before = run.G.synthesis.b32.conv1.weight.clone()
    w_avg = run.G.mapping.w_avg.clone()
    train_lib.train_step(run)
    assert not torch.equal(before, run.G.synthesis.b32.conv1.weight)
    assert torch.equal(w_avg, run.G.mapping.w_avg) # The mapping (and w_avg) stay fixed.

#----------------------------------------------------------------------------

def test_adversarial_term_trains_a_discriminator(tmp_path):
    G = helpers.generator_pkl(tmp_path / 'g.pkl', 'sg2', 32)
    data = helpers.phantom_zip(tmp_path / 'ph.zip', 6, 32)
    run = train_lib.Run(helpers.tiny_options(G, data, lpips=0.0, adv=0.1), str(tmp_path), progress=False)
    before = {k: v.clone() for k, v in run.D.state_dict().items()}
    terms = train_lib.train_step(run)
    assert terms['loss/adv'] > 0 and terms['loss/d'] > 0
    assert any(not torch.equal(before[k], v) for k, v in run.D.state_dict().items())
    assert run.state()['opt_D'] is not None
