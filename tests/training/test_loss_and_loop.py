# Loss terms and loop units on tiny 16-px networks: D loss falls on a fixed batch, every parameter that
# received a gradient changes, G_ema moves toward G, R1 is positive, lazy regularisation runs on
# schedule, non-finite losses stop training, and a short run writes every output file.

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
from tests.support import tiny_configs
from tests.training import helpers
from training import launch, training_loop
from training import loss as loss_module
from training.augment import AugmentPipe

#----------------------------------------------------------------------------

def _nets(augment=False):
    torch.manual_seed(0)
    G = tiny_configs.build(tiny_configs.sg2_generator_kwargs()).train().requires_grad_(False)
    D = tiny_configs.build(tiny_configs.sg2_discriminator_kwargs()).train().requires_grad_(False)
    pipe = AugmentPipe(xflip=1, brightness=1) if augment else None
    return G, D, pipe

def _batch(G, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    reals = torch.rand([n, 3, 16, 16], generator=gen) * 2 - 1
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.zeros([n, 0])
    return reals, c, z, c

def _phase(module, name, lr=2e-3, interval=1):
    opt = torch.optim.Adam(module.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
    return dnnlib.EasyDict(name=name, module=module, opt=opt, interval=interval)

#----------------------------------------------------------------------------

def test_loss_returns_named_scalars_and_does_not_touch_gradients():
    G, D, _ = _nets()
    loss = loss_module.StyleGAN2Loss('cpu', G, D, r1_gamma=1)
    reals, rc, z, gc = _batch(G)
    D.requires_grad_(True)
    out = loss.phase_losses('Dboth', reals, rc, z, gc, gain=1, cur_nimg=0)
    assert set(out.terms) == {'Dgen', 'Dreal', 'Dr1'}
    assert all(t.ndim == 0 for t in out.terms.values())
    assert all(p.grad is None for p in D.parameters()) # The loop calls backward, not the loss.
    assert out.real_logits.shape == (4, 1)
    # Closed form of the main terms from the returned logits.
    torch.testing.assert_close(out.terms.Dreal, torch.nn.functional.softplus(-out.real_logits).mean())

def test_reported_d_loss_is_the_sum_of_fake_and_real_halves():
    from torch_utils import training_stats
    G, D, _ = _nets()
    loss = loss_module.StyleGAN2Loss('cpu', G, D, r1_gamma=0)
    reals, rc, z, gc = _batch(G)
    collector = training_stats.Collector(regex='Loss/D/loss')
    out = loss.phase_losses('Dmain', reals, rc, z, gc, gain=1, cur_nimg=0)
    collector.update()
    assert collector.num('Loss/D/loss') == 4
    assert collector.mean('Loss/D/loss') == pytest.approx(float(out.terms.Dgen + out.terms.Dreal), rel=1e-5)

def test_r1_is_positive_and_scales_with_gamma_and_gain():
    G, D, _ = _nets()
    reals, rc, z, gc = _batch(G)
    r1 = lambda gamma, gain: float(loss_module.StyleGAN2Loss('cpu', G, D, r1_gamma=gamma).phase_losses('Dreg', reals, rc, z, gc, gain=gain, cur_nimg=0).terms.Dr1.detach())
    assert r1(1.0, 1) > 0
    assert r1(4.0, 1) == pytest.approx(4 * r1(1.0, 1), rel=1e-5)
    assert r1(1.0, 16) == pytest.approx(16 * r1(1.0, 1), rel=1e-5)
    assert loss_module.StyleGAN2Loss('cpu', G, D, r1_gamma=0).phase_losses('Dreg', reals, rc, z, gc, gain=1, cur_nimg=0).terms == {}

def test_r1_matches_plain_autograd_and_directional_finite_differences():
    G, D, _ = _nets()
    reals, rc, z, gc = _batch(G, n=2)
    out = loss_module.StyleGAN2Loss('cpu', G, D, r1_gamma=2.0).phase_losses('Dreg', reals, rc, z, gc, gain=1, cur_nimg=0)
    x = reals.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, rc).sum(), x)
    expected = grad.square().sum(dim=[1, 2, 3]).mean() # gamma / 2 = 1.
    assert float(out.terms.Dr1.detach()) == pytest.approx(float(expected), rel=1e-5)
    # The gradient itself against central differences along random directions (D is piecewise linear).
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(reals.shape, generator=gen)
        with torch.no_grad():
            fd = (D(reals + 1e-3 * v, rc) - D(reals - 1e-3 * v, rc)).sum() / 2e-3
        assert float((grad * v).sum()) == pytest.approx(float(fd), rel=0.1, abs=2e-3) # fp32 network: FD noise ~1e-3.

def test_pl_and_style_mixing_run_for_stylegan2():
    G, D, _ = _nets()
    loss = loss_module.StyleGAN2Loss('cpu', G, D, pl_weight=2, style_mixing_prob=0.9)
    reals, rc, z, gc = _batch(G)
    gen = torch.Generator().manual_seed(3)
    G.requires_grad_(True)
    out = loss.phase_losses('Greg', reals, rc, z, gc, gain=4, cur_nimg=0, generator=gen)
    assert float(out.terms.Gpl.detach()) > 0
    assert float(loss.pl_mean) > 0 # Running mean moved from 0 by pl_decay * mean length.

def test_blur_sigma_fades_linearly_to_zero():
    G, D, _ = _nets()
    loss = loss_module.StyleGAN2Loss('cpu', G, D, blur_init_sigma=10, blur_fade_kimg=200)
    assert loss.blur_sigma(0) == 10
    assert loss.blur_sigma(100_000) == pytest.approx(5)
    assert loss.blur_sigma(250_000) == 0
    reals, rc, z, gc = _batch(G)
    blurred = loss.run_D(reals, rc, blur_sigma=2)
    assert not torch.equal(blurred, D(reals, rc))

#----------------------------------------------------------------------------

def test_discriminator_loss_decreases_on_a_fixed_batch():
    G, D, pipe = _nets(augment=True)
    loss = loss_module.StyleGAN2Loss('cpu', G, D, augment_pipe=pipe, r1_gamma=0.1)
    reals, rc, z, gc = _batch(G)
    phase = _phase(D, 'Dboth')
    first = training_loop.run_phase(phase, loss, reals, rc, z, gc, 4, 0, torch.Generator().manual_seed(0))
    for _ in range(9):
        last = training_loop.run_phase(phase, loss, reals, rc, z, gc, 4, 0, torch.Generator().manual_seed(0))
    assert last['Dgen'] + last['Dreal'] < 0.9 * (first['Dgen'] + first['Dreal'])

def test_generator_step_changes_every_parameter_that_received_a_gradient():
    G, D, _ = _nets()
    loss = loss_module.StyleGAN2Loss('cpu', G, D)
    reals, rc, z, gc = _batch(G)
    before = {n: p.detach().clone() for n, p in G.named_parameters()}
    d_before = {n: p.detach().clone() for n, p in D.named_parameters()}
    phase = _phase(G, 'Gmain')
    training_loop.run_phase(phase, loss, reals, rc, z, gc, 2, 0, None) # Two micro-batches.
    with_grad = [n for n, p in G.named_parameters() if p.grad is not None]
    assert len(with_grad) >= 0.8 * len(before)
    for name, p in G.named_parameters():
        if p.grad is not None and p.grad.abs().sum() > 0:
            assert not torch.equal(p, before[name]), name
    assert all(torch.equal(p, d_before[n]) for n, p in D.named_parameters()) # D untouched in a G phase.

def test_micro_batches_give_the_same_gradient_as_one_batch():
    G, D, _ = _nets()
    loss = loss_module.StyleGAN2Loss('cpu', G, D, r1_gamma=1)
    reals, rc, z, gc = _batch(G)
    grads = []
    for batch_gpu in (4, 2):
        phase = _phase(D, 'Dmain', lr=0)
        training_loop.run_phase(phase, loss, reals, rc, z, gc, batch_gpu, 0, None)
        grads.append(torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None]))
    # Minibatch-std groups differ (4 vs 2 samples), so compare loosely; the scale must agree.
    assert grads[0].norm() == pytest.approx(float(grads[1].norm()), rel=0.3)

def test_ema_moves_toward_generator_and_ramp_up_speeds_it():
    G, _, _ = _nets()
    G_ema = tiny_configs.build(tiny_configs.sg2_generator_kwargs())
    params = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])
    dist0 = float((params(G_ema) - params(G)).norm())
    beta = training_loop.update_ema(G, G_ema, cur_nimg=1000, batch_size=4, ema_kimg=10, ema_rampup=None)
    assert beta == pytest.approx(0.5 ** (4 / 10000))
    assert float((params(G_ema) - params(G)).norm()) == pytest.approx((beta) * dist0, rel=1e-4)
    beta_ramp = training_loop.update_ema(G, G_ema, cur_nimg=1000, batch_size=4, ema_kimg=10, ema_rampup=0.05)
    assert beta_ramp == pytest.approx(0.5 ** (4 / 50))
    assert all(torch.equal(b, be) for b, be in zip(G.buffers(), G_ema.buffers()))

def test_lazy_regularisation_intervals_and_optimizer_rescaling():
    G, D, _ = _nets()
    phases = training_loop.build_phases(G, D, dict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8),
                                        dict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8), 4, 16)
    assert [(p.name, p.interval) for p in phases] == [('Gmain', 1), ('Greg', 4), ('Dmain', 1), ('Dreg', 16)]
    group = phases[2].opt.param_groups[0]
    assert group['lr'] == pytest.approx(0.002 * 16 / 17)
    assert group['betas'] == pytest.approx((0, 0.99 ** (16 / 17)))
    assert isinstance(group['betas'], tuple)
    phases = training_loop.build_phases(G, D, dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99]),
                                        dict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99]), None, 16)
    assert [p.name for p in phases] == ['Gboth', 'Dmain', 'Dreg']

def test_reg_phases_run_only_on_their_interval(tmp_path, monkeypatch):
    calls = []
    original = loss_module.StyleGAN2Loss.phase_losses
    def spy(self, phase, *args, **kwargs):
        calls.append(phase)
        return original(self, phase, *args, **kwargs)
    monkeypatch.setattr(loss_module.StyleGAN2Loss, 'phase_losses', spy)
    c = helpers.tiny_config(helpers.make_dataset(str(tmp_path)), kimg=0.02, tick=1)
    c.D_reg_interval = 2
    launch.launch_training(c, outdir=str(tmp_path))
    # 5 steps: Gmain x5, Greg at steps 0 and 4, Dmain x5, Dreg at steps 0, 2, 4.
    assert calls.count('Gmain') == 5 and calls.count('Greg') == 2
    assert calls.count('Dmain') == 5 and calls.count('Dreg') == 3

#----------------------------------------------------------------------------

def test_short_run_writes_every_output(tmp_path):
    data = helpers.make_dataset(str(tmp_path), num_grades=2)
    c = helpers.tiny_config(data, kimg=0.008, tick=0.004, cond=True)
    c.tensorboard = True
    run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'))
    files = set(os.listdir(run_dir))
    for name in ('training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.png',
                 'network-snapshot-000000.pkl', 'training-state-000000.pt'):
        assert name in files, name
    assert any(f.startswith('events.out.tfevents') for f in files)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 2 and 'Loss/D/loss' in lines[0] and 'Progress/kimg' in lines[-1]
    with open(os.path.join(run_dir, 'log.txt')) as f:
        log = f.read()
    assert 'sec/kimg' in log and 'augment' in log and 'cpumem' in log
    # Conditional grid: one grade per row, 2 x 2 tiles of 16 px.
    import PIL.Image
    assert PIL.Image.open(os.path.join(run_dir, 'reals.png')).size == (32, 32)
    from torch_utils import persistence
    snap = persistence.load_network_pkl(os.path.join(run_dir, 'network-snapshot-000000.pkl'))
    assert snap['G_ema'].c_dim == 2 and snap['augment_pipe'] is not None
    assert snap['augment_pipe'].init_kwargs.xflip == 1
    assert snap['training_set_kwargs']['use_labels'] is True

def test_snapshot_grid_rows_hold_one_grade_each(tmp_path):
    from training.dataset import ImageFolderDataset
    ds = ImageFolderDataset(helpers.make_dataset(str(tmp_path), num_images=12, num_grades=3), use_labels=True)
    (gw, gh), images, labels = training_loop.setup_snapshot_image_grid(ds, grid_size=(4, 3))
    rows = labels.reshape(gh, gw, -1)
    for y in range(gh):
        assert (rows[y] == rows[y, 0]).all()
    assert len({tuple(r[0]) for r in rows}) == 3

#----------------------------------------------------------------------------

def test_non_finite_loss_stops_training_naming_phase_and_keeps_last_snapshot(tmp_path, monkeypatch):
    data = helpers.make_dataset(str(tmp_path))
    c = helpers.tiny_config(data, kimg=0.02, tick=0.004)
    original = loss_module.StyleGAN2Loss._D_gen
    calls = []
    def poisoned(self, *args, **kwargs): # NaN from the second step on.
        calls.append(1)
        value = original(self, *args, **kwargs)
        return value * float('nan') if len(calls) >= 2 else value
    monkeypatch.setattr(loss_module.StyleGAN2Loss, '_D_gen', poisoned)
    with pytest.raises(training_loop.TrainingDivergedError, match=r'phase Dmain at kimg 0\.004'):
        launch.launch_training(c, outdir=str(tmp_path / 'runs'))
    run_dir = os.path.join(str(tmp_path / 'runs'), os.listdir(str(tmp_path / 'runs'))[0])
    from torch_utils import persistence
    from training import checkpoint
    snap = persistence.load_network_pkl(os.path.join(run_dir, 'network-snapshot-000000.pkl'))
    assert all(torch.isfinite(p).all() for p in snap['G'].parameters())
    state = checkpoint.load_training_state(checkpoint.find_latest_state(run_dir))
    assert state['progress']['cur_nimg'] == 4 # The good state after step 1 was never replaced.

def test_non_finite_weights_are_detected():
    G, _, _ = _nets()
    with torch.no_grad():
        next(G.parameters())[0] = float('inf')
    with pytest.raises(training_loop.TrainingDivergedError, match='non-finite weights after phase Gmain at kimg 1.000'):
        training_loop._check_finite_weights('Gmain', 1000, G)

def test_unwritable_or_full_run_dir_fails_before_training(tmp_path):
    from training import checkpoint
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(OSError, match='not writable'):
        checkpoint.check_run_dir(str(blocker / 'run'), 0)
    with pytest.raises(OSError, match='MiB free'):
        checkpoint.check_run_dir(str(tmp_path / 'run'), 1 << 60)

def test_snapshot_grid_tiles_row_by_row(tmp_path):
    # Four 2x3 images with values 0, 1, 2, 3 (drange [0, 3]) on a 2 x 2 grid: image k at row k // 2, column k % 2.
    img = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones([4, 3, 2, 3], dtype=np.float32)
    path = str(tmp_path / 'grid.png')
    training_loop.save_image_grid(img, path, drange=[0, 3], grid_size=(2, 2))
    grid = np.asarray(PIL.Image.open(path))
    assert grid.shape == (4, 6, 3)
    for k in range(4):
        r, c = divmod(k, 2)
        assert (grid[r * 2:(r + 1) * 2, c * 3:(c + 1) * 3] == k * 85).all()

#----------------------------------------------------------------------------
