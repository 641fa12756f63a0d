# Encoder training: run files, validation, the w regulariser, exact resume after SIGKILL, and bad data
# (corrupt image skipped and listed, empty folder, wrong resolution) as one-line errors.

import json
import os
import signal
import time

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from fundus.fundusgan import __main__ as cli
from fundus.fundusgan import common
from fundus.fundusgan import loss as loss_lib
from fundus.fundusgan import train as train_lib
from tests.fundus.fundusgan import helpers

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp('fundusgan')
    return dict(root=root, G=helpers.generator_pkl(root / 'g32.pkl', 'sg2', 32), data=helpers.phantom_zip(root / 'ph.zip', 10, 32))

def test_run_writes_stats_validation_grids_snapshots_and_state(assets, tmp_path):
    opts = helpers.tiny_options(assets['G'], assets['data'], lpips=0.0)
    run_dir = train_lib.training_loop(opts, str(tmp_path / 'run'), progress=False)
    files = set(os.listdir(run_dir))
    assert {'training_options.json', 'stats.jsonl', 'validation.jsonl', train_lib.STATE_FILE,
            'encoder-snapshot-000004.pkl', 'recon-000000.png', 'recon-000004.png'} <= files
    assert any(f.startswith('events.out.tfevents') for f in files)
    stats = [json.loads(l) for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert [s['step'] for s in stats] == [1, 2, 3, 4] and {'loss/l2', 'loss/lpips', 'loss/wreg', 'loss/total'} <= set(stats[0])
    val = [json.loads(l) for l in open(os.path.join(run_dir, 'validation.jsonl'))]
    assert [v['step'] for v in val] == [0, 2, 4] and {'val/ssim', 'val/lpips', 'val/l2', 'val/base_ssim'} <= set(val[0])
    grid = np.asarray(PIL.Image.open(os.path.join(run_dir, 'recon-000004.png')))
    assert grid.shape == (64, 64, 3) # 2 rows (input | reconstruction) of 2 images of 32 px.
    state = torch.load(os.path.join(run_dir, train_lib.STATE_FILE), weights_only=True)
    assert state['step'] == 4 and state['opt_G'] is None # psp: the generator stays frozen.

def test_training_lowers_the_loss_and_moves_only_the_encoder(assets, tmp_path):
    opts = helpers.tiny_options(assets['G'], assets['data'], lpips=0.0, steps=12, val_every=100, snap_every=100, log_every=1)
    run = train_lib.Run(opts, str(tmp_path), progress=False)
    g_before = {k: v.clone() for k, v in run.G.state_dict().items()}
    losses = [train_lib.train_step(run)['loss/l2'] for _ in range(12)]
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])
    assert all(torch.equal(g_before[k], v) for k, v in run.G.state_dict().items())

def test_w_regulariser_pulls_ws_toward_w_avg():
    torch.manual_seed(0)
    w_avg = torch.randn([8])
    ws = (w_avg + torch.randn([2, 3, 8]) * 2).requires_grad_(True)
    loss = loss_lib.ReconstructionLoss(l2=0, lpips=0, wreg=1.0)
    opt = torch.optim.SGD([ws], lr=5.0)
    dist = [float((ws - w_avg).detach().norm())]
    for _ in range(20):
        terms = loss(torch.zeros([2, 3, 4, 4]), torch.zeros([2, 3, 4, 4]), ws, w_avg)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        dist.append(float((ws - w_avg).detach().norm()))
    assert dist[-1] < 0.1 * dist[0] and all(b < a for a, b in zip(dist, dist[1:]))

def test_stronger_wreg_keeps_trained_ws_closer_to_w_avg(assets, tmp_path):
    offsets = []
    for wreg in (0.0, 1000.0):
        opts = helpers.tiny_options(assets['G'], assets['data'], lpips=0.0, wreg=wreg, steps=8)
        run = train_lib.Run(opts, str(tmp_path / str(wreg)), progress=False)
        for _ in range(8):
            train_lib.train_step(run)
        with torch.no_grad():
            x = train_lib.load_batch(run.ds, run.train_idx[:4], 'cpu')
            offsets.append(float(run.E.eval()(x).square().mean()))
    assert offsets[1] < 0.5 * offsets[0]

#----------------------------------------------------------------------------

def _train_args(assets, outdir, steps):
    return ['train', f'--generator={assets["G"]}', f'--data={assets["data"]}', f'--outdir={outdir}', f'--steps={steps}',
            '--batch=2', '--lr=1e-3', '--backbone=resnet18', '--width=8', '--fpn-channels=16', '--val=2', '--val-every=3',
            '--snap-every=2', '--log-every=1', '--lpips=0', '--lpips-net=alex', '--no-progress']

def _final(run_dir):
    return torch.load(os.path.join(run_dir, train_lib.STATE_FILE), weights_only=True)

def _in_process(args):
    # The uninterrupted reference and the resume run here, on one thread like the killed child.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = CliRunner().invoke(cli.main, args)
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    return r.output.strip().splitlines()[-1]

def test_kill9_and_resume_is_bit_identical(assets, tmp_path):
    steps = 10
    ref_dir = _in_process(_train_args(assets, tmp_path / 'ref', steps))
    child = helpers.cli(*_train_args(assets, tmp_path / 'killed', steps), stdout=open(tmp_path / 'k.log', 'wb'), stderr=open(tmp_path / 'k.err', 'wb'))
    deadline = time.time() + 240
    while time.time() < deadline and child.poll() is None:
        runs = list((tmp_path / 'killed').glob('*/encoder-snapshot-000002.pkl')) if (tmp_path / 'killed').exists() else []
        if runs:
            break
        time.sleep(0.01)
    assert child.poll() is None, 'the run finished before it could be killed'
    time.sleep(0.3) # Somewhere inside a later step.
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (run_dir,) = [str(p) for p in (tmp_path / 'killed').iterdir()]
    assert _final(run_dir)['step'] < steps
    assert _in_process(['train', f'--resume={run_dir}', '--no-progress']) == run_dir
    a, b = _final(ref_dir), _final(run_dir)
    assert a['step'] == b['step'] == steps
    for key in ('E', 'G'):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f'{key}.{name} differs'
    assert a['opt_E']['state'].keys() == b['opt_E']['state'].keys()
    for k in a['opt_E']['state']:
        assert torch.equal(a['opt_E']['state'][k]['exp_avg'], b['opt_E']['state'][k]['exp_avg'])
    steps_logged = [json.loads(l)['step'] for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert steps_logged == list(range(1, steps + 1))
    loss_a = [json.loads(l)['loss/total'] for l in open(os.path.join(ref_dir, 'stats.jsonl'))]
    loss_b = [json.loads(l)['loss/total'] for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert loss_a == loss_b

#----------------------------------------------------------------------------

def _png_folder(root, count, res=32, corrupt=()):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        path = root / f'img{i:02d}.png'
        if i in corrupt:
            path.write_bytes(b'not a png at all')
        else:
            PIL.Image.fromarray(rng.integers(0, 255, [res, res, 3], dtype=np.uint8)).save(path)
    return str(root)

def test_corrupt_image_is_skipped_and_listed(assets, tmp_path):
    data = _png_folder(tmp_path / 'imgs', 6, corrupt=(3,))
    opts = helpers.tiny_options(assets['G'], data, lpips=0.0, steps=2)
    run_dir = train_lib.training_loop(opts, str(tmp_path / 'run'), progress=False)
    listed = open(os.path.join(run_dir, 'skipped-images.txt')).read()
    assert listed.startswith('img03.png\t') and listed.count('\n') == 1

def test_empty_folder_and_wrong_resolution_are_one_line_errors(assets, tmp_path):
    (tmp_path / 'empty').mkdir()
    for data, pattern in ((str(tmp_path / 'empty'), 'no image files'),
                          (_png_folder(tmp_path / 'big', 3, res=64), r'64x64, but the generator makes 32x32')):
        opts = helpers.tiny_options(assets['G'], data)
        with pytest.raises(common.FundusGANError, match=pattern) as info:
            train_lib.training_loop(opts, str(tmp_path / 'run-bad'), progress=False)
        assert '\n' not in str(info.value)
        assert not (tmp_path / 'run-bad').exists() # Nothing half-written.

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_phantom_training_beats_the_w_avg_baseline_clearly(tmp_path):
    # 150 steps, batch 8, 32 px, frozen random SG2: measured SSIM 0.027 -> 0.364, LPIPS 1.006 -> 0.280
    # (docs/fundusgan.md); the margins below leave room for other seeds and thread counts.
    G = helpers.generator_pkl(tmp_path / 'g32.pkl', 'sg2', 32)
    data = helpers.phantom_zip(tmp_path / 'ph.zip', 200, 32, seed=5)
    opts = helpers.tiny_options(G, data, steps=150, batch=8, val=24, val_every=150, snap_every=150, log_every=50)
    run_dir = train_lib.training_loop(opts, str(tmp_path / 'run'), progress=False)
    last = [json.loads(l) for l in open(os.path.join(run_dir, 'validation.jsonl'))][-1]
    assert last['val/ssim'] > last['val/base_ssim'] + 0.15
    assert last['val/lpips'] < 0.6 * last['val/base_lpips']
