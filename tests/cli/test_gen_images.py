# gen_images.py on tiny snapshots: pictures equal an independent forward pass with upstream's latents,
# batch composition does not change them, grayscale nets write 'L' PNGs, grade names, bad input, --help.

import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import gen_images
from training import generate
from tests.support import tiny_configs
from tests.support.write_help_docs import help_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------
# Tiny snapshots, written once per module with our persistence format.

def _save_snapshot(path, G):
    from torch_utils import persistence
    G = G.eval().requires_grad_(False)
    persistence.save_network_pkl(path, dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None))
    return str(path)

@pytest.fixture(scope='module')
def snapshots(tmp_path_factory):
    folder = tmp_path_factory.mktemp('snapshots')
    torch.manual_seed(1)
    return dict(
        sg3=_save_snapshot(folder / 'sg3.pkl', tiny_configs.build(tiny_configs.sg3_generator_kwargs())),
        sg3_cond=_save_snapshot(folder / 'sg3c.pkl', tiny_configs.build(tiny_configs.sg3_generator_kwargs(), c_dim=5)),
        sg3_gray=_save_snapshot(folder / 'sg3g.pkl', tiny_configs.build(tiny_configs.sg3_generator_kwargs(), img_channels=1)),
        sg2=_save_snapshot(folder / 'sg2.pkl', tiny_configs.build(tiny_configs.sg2_generator_kwargs())),
        sg2_noisy=_save_snapshot(folder / 'sg2n.pkl', _with_noise(tiny_configs.build(tiny_configs.sg2_generator_kwargs()))),
    )

def _with_noise(G):
    # Freshly built SG2 layers have noise_strength 0, so noise would change nothing; give every layer some.
    for name, param in G.named_parameters():
        if name.endswith('noise_strength'):
            param.data.fill_(0.5)
    return G

def reference_images(pkl, seeds, class_idx=None):
    """Upstream's recipe written out independently: z from RandomState(seed), one forward per seed."""
    from torch_utils import persistence
    G = persistence.load_network_pkl(pkl)['G_ema'].eval()
    out = []
    for seed in seeds:
        z = torch.tensor(np.random.RandomState(seed).randn(1, G.z_dim), dtype=torch.float32)
        c = torch.zeros([1, G.c_dim])
        if class_idx is not None:
            c[0, class_idx] = 1
        with torch.no_grad():
            img = G(z, c, truncation_psi=1, noise_mode='const')
        out.append((img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy())
    return out

def run_cli(args):
    result = CliRunner().invoke(gen_images.main, args)
    return result

def read_pngs(outdir, seeds):
    return [np.asarray(PIL.Image.open(os.path.join(outdir, f'seed{s:04d}.png'))) for s in seeds]

def assert_close_uint8(a, b):
    # Batched and single forwards differ by ~1e-7 in float; that can flip a rounding step, never more.
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01

#----------------------------------------------------------------------------

def test_images_equal_upstream_recipe_and_file_names(snapshots, tmp_path):
    seeds = [0, 1, 2, 7]
    result = run_cli([f'--network={snapshots["sg3"]}', '--seeds=0-2,7', f'--outdir={tmp_path}', '--batch=3', '--device=cpu'])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == [f'seed{s:04d}.png' for s in seeds]
    assert f'Wrote 4 images to {tmp_path}' in result.output
    for got, want in zip(read_pngs(tmp_path, seeds), reference_images(snapshots['sg3'], seeds)):
        assert got.shape == (16, 16, 3) and got.dtype == np.uint8
        assert_close_uint8(got, want)
    # Different seeds give different pictures.
    imgs = read_pngs(tmp_path, seeds)
    assert np.abs(imgs[0].astype(int) - imgs[1].astype(int)).mean() > 1

def test_image_depends_only_on_seed_not_batch(snapshots, tmp_path):
    outs = []
    for batch, seeds in [(1, '5-9'), (2, '3-9'), (5, '9,8,7,6,5')]:
        outdir = tmp_path / f'b{batch}'
        result = run_cli([f'--network={snapshots["sg3"]}', f'--seeds={seeds}', f'--outdir={outdir}', f'--batch={batch}'])
        assert result.exit_code == 0, result.output
        outs.append(read_pngs(outdir, range(5, 10)))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert_close_uint8(a, b)

def test_grayscale_network_writes_L_pngs(snapshots, tmp_path):
    result = run_cli([f'--network={snapshots["sg3_gray"]}', '--seeds=3-4', f'--outdir={tmp_path}', '--grid'])
    assert result.exit_code == 0, result.output
    img = PIL.Image.open(tmp_path / 'seed0003.png')
    assert img.mode == 'L' and img.size == (16, 16)
    want = reference_images(snapshots['sg3_gray'], [3])[0]
    assert_close_uint8(np.asarray(img)[:, :, None], want)
    grid = np.asarray(PIL.Image.open(tmp_path / 'grid.png'))
    assert grid.shape == (16, 32) # two seeds: ceil(sqrt(2)) = 2 columns, 1 row
    np.testing.assert_array_equal(grid[:, :16], np.asarray(img))

def test_grade_names_select_the_class(snapshots, tmp_path):
    pkl = snapshots['sg3_cond']
    for name in ('DR2', 'dr2', '2'):
        result = run_cli([f'--network={pkl}', '--seeds=4', f'--outdir={tmp_path / name}', f'--class={name}'])
        assert result.exit_code == 0, result.output
    got = [read_pngs(tmp_path / name, [4])[0] for name in ('DR2', 'dr2', '2')]
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[0], got[2])
    assert_close_uint8(got[0], reference_images(pkl, [4], class_idx=2)[0])
    other = reference_images(pkl, [4], class_idx=3)[0]
    assert np.abs(got[0].astype(int) - other.astype(int)).max() > 1

@pytest.mark.parametrize('args, message', [
    (['--seeds=0-1'], '--class is required: this network is conditional with 5 classes (DR0, DR1, DR2, DR3, DR4)'),
    (['--seeds=0', '--class=DR5'], '--class=DR5: this network has 5 classes (0..4)'),
    (['--seeds=0', '--class=mild'], '--class=mild: expected a class index (0..4) or a grade name (DR0..DR4)'),
])
def test_conditional_bad_class(snapshots, tmp_path, args, message):
    result = run_cli([f'--network={snapshots["sg3_cond"]}', f'--outdir={tmp_path}'] + args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f'Error: {message}']

def test_bad_input_gives_one_line(snapshots, tmp_path):
    junk = tmp_path / 'junk.pkl'
    junk.write_bytes(b'not a pickle at all')
    cases = [
        ([f'--network={tmp_path / "missing.pkl"}', '--seeds=0'], f'--network: no such file: {tmp_path / "missing.pkl"}'),
        ([f'--network={snapshots["sg3"]}', '--seeds=5-2'], '--seeds: range "5-2" ends before it starts'),
        ([f'--network={snapshots["sg3"]}', '--seeds=0,x'], '--seeds: cannot read "x" in "0,x"'),
        ([f'--network={snapshots["sg3"]}', '--seeds=0', '--class=DR1'], '--class=DR1: this network is unconditional'),
        ([f'--network={snapshots["sg3"]}', '--seeds=0', '--translate=0.1'], '--translate: expected two comma-separated numbers'),
        ([f'--network={snapshots["sg2"]}', '--seeds=0', '--rotate=10'], '--translate/--rotate: only StyleGAN3 networks'),
        ([f'--network={junk}', '--seeds=0'], f'--network: cannot load {junk}'),
        ([f'--network={snapshots["sg3"]}', '--seeds=0', '--batch=0'], '--batch=0: must be at least 1'),
    ]
    for args, start in cases:
        result = run_cli(args + [f'--outdir={tmp_path / "out"}'])
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'Error: {start}'), (args, result.output)
    assert not os.path.exists(tmp_path / 'out') or os.listdir(tmp_path / 'out') == []

def test_translate_rotate_set_the_inverse_transform(snapshots):
    G = generate.load_generator(snapshots['sg3'])
    generate.set_input_transform(G, (0.25, -0.125), 30.0)
    a = np.radians(30.0)
    m = np.array([[np.cos(a), np.sin(a), 0.25], [-np.sin(a), np.cos(a), -0.125], [0, 0, 1]])
    np.testing.assert_allclose(G.synthesis.input.transform.numpy() @ m, np.eye(3), atol=1e-6)

def test_translate_moves_the_picture(snapshots, tmp_path):
    base = tmp_path / 'base'
    moved = tmp_path / 'moved'
    assert run_cli([f'--network={snapshots["sg3"]}', '--seeds=0', f'--outdir={base}']).exit_code == 0
    assert run_cli([f'--network={snapshots["sg3"]}', '--seeds=0', f'--outdir={moved}', '--translate=0.25,0']).exit_code == 0
    a, b = read_pngs(base, [0])[0].astype(int), read_pngs(moved, [0])[0].astype(int)
    assert np.abs(a - b).mean() > 1

def test_noise_mode_random_is_reproducible_per_seed(snapshots, tmp_path):
    runs = []
    for mode, batch, seeds in [('random', 1, '0-2'), ('random', 3, '2,1,0'), ('const', 1, '0-2')]:
        outdir = tmp_path / f'{mode}{batch}'
        result = run_cli([f'--network={snapshots["sg2_noisy"]}', f'--seeds={seeds}', f'--outdir={outdir}', f'--noise-mode={mode}', f'--batch={batch}'])
        assert result.exit_code == 0, result.output
        runs.append(read_pngs(outdir, [0, 1, 2]))
    for a, b in zip(runs[0], runs[1]):
        assert_close_uint8(a, b) # Batch 1 vs 3: other float rounding can flip a uint8 step; other noise would change many pixels.
    for a, c in zip(runs[0], runs[2]):
        assert np.abs(a.astype(int) - c.astype(int)).mean() > 1 # The noise is live: random differs from const.

def test_official_layout_pickle_renders_the_same_pictures(tmp_path):
    # An official-layout snapshot (NVIDIA's persistence records with embedded module source) of a network
    # we also hold in memory: gen_images must render the pictures of that network, never run the source.
    from tests.support import official_pickles
    torch.manual_seed(3)
    G = tiny_configs.build(tiny_configs.sg3_generator_kwargs(), c_dim=5).eval().requires_grad_(False)
    marker = tmp_path / 'executed.txt'
    pkl = tmp_path / 'stylegan3-t-official-layout.pkl'
    pkl.write_bytes(official_pickles.official_snapshot_bytes(official_pickles.evil_src(marker), G=G, G_ema=G))
    result = run_cli([f'--network={pkl}', '--seeds=0-2', f'--outdir={tmp_path / "out"}', '--class=DR4', '--batch=2'])
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    for seed, got in zip([0, 1, 2], read_pngs(tmp_path / 'out', [0, 1, 2])):
        z = torch.tensor(np.random.RandomState(seed).randn(1, G.z_dim), dtype=torch.float32)
        c = torch.zeros([1, 5])
        c[0, 4] = 1
        with torch.no_grad():
            want = (G(z, c, noise_mode='const')[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        assert_close_uint8(got, want)

def test_parse_range_and_shard():
    assert generate.parse_range('0,1,4-6') == [0, 1, 4, 5, 6]
    assert generate.parse_range('0-4999')[-1] == 4999
    seeds = list(range(10))
    shards = [generate.shard(seeds, r, 3) for r in range(3)]
    assert sorted(sum(shards, [])) == seeds and shards[1] == [1, 4, 7]

@pytest.mark.slow
def test_torchrun_shards_seeds_across_ranks(snapshots, tmp_path):
    # Two CPU ranks under torchrun (gloo): together they write every seed once, equal to a 1-process run.
    import subprocess
    import sys
    outdir = tmp_path / 'ranks'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29517',
           os.path.join(ROOT, 'gen_images.py'), f'--network={snapshots["sg3"]}', '--seeds=0-4', f'--outdir={outdir}',
           '--device=cpu', '--grid']
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(outdir)) == ['grid.png'] + [f'seed{s:04d}.png' for s in range(5)]
    for got, want in zip(read_pngs(outdir, range(5)), reference_images(snapshots['sg3'], range(5))):
        assert_close_uint8(got, want)
    assert proc.stdout.count('Wrote 5 images and grid.png') == 1 # printed by rank 0 only

def test_help_equals_docs():
    with open(os.path.join(ROOT, 'docs', 'gen-images-help.txt')) as f:
        assert help_text('gen_images.py') == f.read()

#----------------------------------------------------------------------------
