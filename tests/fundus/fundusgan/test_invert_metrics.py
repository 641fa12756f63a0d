# invert / mix / vary outputs and their layout, the pairing check, the dilated generator, and the
# reconstruction metrics (registry, lesion detection rule).

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fundus.fundusgan import __main__ as cli
from fundus.fundusgan import common
from fundus.fundusgan import generator as generator_lib
from fundus.fundusgan import invert as invert_lib
from fundus.fundusgan import metrics as recon_metrics
from fundus.fundusgan import train as train_lib
from metrics import metric_main
from tests.fundus.fundusgan import helpers
from tests.support import fake_detector

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp('inv')
    G = helpers.generator_pkl(root / 'g32.pkl', 'sg2', 32)
    data = helpers.phantom_zip(root / 'ph.zip', 6, 32)
    opts = helpers.tiny_options(G, data, lpips=0.0, steps=2, val_every=100, snap_every=100)
    run_dir = train_lib.training_loop(opts, str(root / 'run'), progress=False)
    return dict(root=root, G=G, data=data, pkl=os.path.join(run_dir, 'encoder-snapshot-000002.pkl'))

def test_invert_writes_pngs_ws_and_labels(snapshot, tmp_path):
    r = CliRunner().invoke(cli.main, ['invert', f'--network={snapshot["pkl"]}', f'--images={snapshot["data"]}', f'--outdir={tmp_path}'])
    assert r.exit_code == 0, r.output
    pngs = sorted(f for f in os.listdir(tmp_path) if f.endswith('.png'))
    assert len(pngs) == 6
    npz = np.load(tmp_path / 'ws.npz')
    assert npz['ws'].shape == (6, 8, 32) and list(npz['names'])[0] == '00000/img00000000.png'
    labels = json.load(open(tmp_path / 'dataset.json'))['labels']
    assert [l[0] for l in labels] == pngs and all(isinstance(l[1], int) for l in labels)
    # The ws reproduce the images.
    E, G, _ = invert_lib.load_encoder_snapshot(snapshot['pkl'])
    img = generator_lib.synthesize_ws(G, torch.from_numpy(npz['ws'][:1]))
    assert np.array_equal(np.asarray(__import__('PIL.Image').Image.open(tmp_path / pngs[0])), invert_lib.generate.to_uint8(img)[0])

def test_mix_takes_coarse_ws_from_a_and_fine_from_b():
    a, b = torch.randn([2, 8, 4]), torch.randn([2, 8, 4])
    m = invert_lib.mix_ws(a, b, 3)
    assert torch.equal(m[:, :3], a[:, :3]) and torch.equal(m[:, 3:], b[:, 3:])
    with pytest.raises(common.FundusGANError, match='coarse-end'):
        invert_lib.mix_ws(a, b, 8)

def test_vary_perturbs_only_the_chosen_ws():
    ws = torch.randn([2, 8, 4])
    out = invert_lib.vary_ws(ws, [0, 2], count=5, strength=1.0, scale=torch.ones([4]), seed=3)
    assert out.shape == (2, 5, 8, 4)
    changed = (out != ws[:, None]).any(dim=-1) # [N, count, num_ws]
    assert changed[:, :, [0, 2]].all() and not changed[:, :, [1, 3, 4, 5, 6, 7]].any()
    assert torch.equal(out, invert_lib.vary_ws(ws, [0, 2], 5, 1.0, torch.ones([4]), 3)) # Seeded.

def test_mix_and_vary_cli_write_the_dataset_layout(snapshot, tmp_path):
    src = tmp_path / 'src'
    r = CliRunner().invoke(cli.main, ['invert', f'--network={snapshot["pkl"]}', f'--images={snapshot["data"]}', f'--outdir={src}'])
    assert r.exit_code == 0, r.output
    pngs = sorted(str(src / f) for f in os.listdir(src) if f.endswith('.png'))
    r = CliRunner().invoke(cli.main, ['mix', f'--network={snapshot["pkl"]}', f'--coarse={pngs[0]}', f'--fine={pngs[1]}', f'--outdir={tmp_path / "mix"}'])
    assert r.exit_code == 0, r.output
    assert len([f for f in os.listdir(tmp_path / 'mix') if f.endswith('.png')]) == 1
    r = CliRunner().invoke(cli.main, ['vary', f'--network={snapshot["pkl"]}', f'--images={src}', f'--outdir={tmp_path / "vary"}', '--count=2', '--layers=0-2'])
    assert r.exit_code == 0, r.output
    labels = json.load(open(tmp_path / 'vary' / 'dataset.json'))['labels']
    src_labels = dict(json.load(open(src / 'dataset.json'))['labels'])
    assert len(labels) == 12 and all(src_labels[f.replace('-var00', '').replace('-var01', '')] == l for f, l in labels)

def test_encoder_for_another_generator_and_bad_images_are_one_line_errors(snapshot, tmp_path):
    other = helpers.generator_pkl(tmp_path / 'g64.pkl', 'sg2', 64)
    r = CliRunner().invoke(cli.main, ['invert', f'--network={snapshot["pkl"]}', f'--images={snapshot["data"]}', f'--outdir={tmp_path / "o"}', f'--generator={other}'])
    assert r.exit_code != 0 and 'num_ws=8' in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(cli.main, ['invert', f'--network={other}', f'--images={snapshot["data"]}', f'--outdir={tmp_path / "o"}'])
    assert r.exit_code != 0 and 'not an encoder snapshot' in r.output
    big = helpers.phantom_zip(tmp_path / 'big.zip', 2, 64)
    r = CliRunner().invoke(cli.main, ['invert', f'--network={snapshot["pkl"]}', f'--images={big}', f'--outdir={tmp_path / "o"}'])
    assert r.exit_code != 0 and '64x64, but the generator makes 32x32' in r.output
    assert not (tmp_path / 'o').exists() # Nothing half-written.

#----------------------------------------------------------------------------

def test_fundusgan_generator_copies_sg2_blocks_and_delta_skips_start_at_zero():
    G0 = helpers.tiny_generator('sg2', 64)
    G = generator_lib.build_fundusgan(G0, fpn_channels=16, dilation=8)
    assert G.num_ws == 1 + 2 * 4 + 1 + 2 + 1
    for name in ('synthesis.b64.conv1.weight', 'synthesis.b16.torgb.weight', 'mapping.w_avg'):
        assert torch.equal(G.state_dict()[name], G0.state_dict()[name])
    assert generator_lib.is_new_param(G, 'synthesis.layer0.weight') and not generator_lib.is_new_param(G, 'synthesis.b32.conv0.weight')
    G_none = generator_lib.build_fundusgan(G0, fpn_channels=16, dilation=8, skips='none')
    feats = dict(low=torch.randn([2, 16, 2, 2]), mid=torch.randn([2, 16, 4, 4]), high=torch.randn([2, 16, 8, 8]))
    ws = torch.randn([2, G.num_ws, 32])
    with torch.no_grad():
        assert torch.allclose(G.synthesis(ws, feats), G_none.synthesis(ws, feats), atol=1e-5)

def test_dilated_layer_reaches_exactly_dilation_pixels():
    layer = generator_lib.DilatedModulatedConv(1, 1, 4, resolution=17, dilation=4)
    x = torch.zeros([1, 1, 17, 17], requires_grad=True)
    layer(x, torch.ones([1, 4]), noise_mode='none')[0, 0, 8, 8].backward()
    rows, cols = torch.nonzero(x.grad[0, 0]).unbind(1)
    assert sorted(set(rows.tolist())) == [4, 8, 12] and sorted(set(cols.tolist())) == [4, 8, 12]

def test_fundusgan_on_stylegan3_is_refused():
    with pytest.raises(common.FundusGANError, match='StyleGAN2'):
        generator_lib.build_fundusgan(helpers.tiny_generator('sg3', 32), fpn_channels=16)

#----------------------------------------------------------------------------

def test_recon_metrics_registered_and_run(snapshot):
    recon_metrics.register()
    for name in recon_metrics.NAMES:
        assert metric_main.is_valid_metric(name)
    E, G, _ = invert_lib.load_encoder_snapshot(snapshot['pkl'])
    kwargs = dict(G=recon_metrics.Reconstructor(E, G), dataset_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=snapshot['data']),
                  detectors={'inception': fake_detector.FakeDetector()}, bootstrap=20)
    ssim = metric_main.calc_metric('ssim_recon', **kwargs).results
    assert ssim.ssim_recon_num == 6 and ssim['ssim_recon_boot_p2.5'] <= ssim['ssim_recon_boot_p97.5']
    fid = metric_main.calc_metric('fid_recon', **kwargs).results
    assert fid.fid_recon > 0
    lesions = metric_main.calc_metric('lesion_recall_recon', **kwargs).results
    assert 0 <= lesions.lesion_recall_recon <= 1

def test_lesion_rule_finds_kept_and_lost_lesions():
    real = np.full([3, 32, 32], 120.0)
    real[:, 14:19, 14:19] = 40.0 # A dark 5x5 lesion at the centre.
    lesion = dict(u=0.0 + 0.5 / 16, v=0.0 + 0.5 / 16, r=2.5 / 16)
    assert recon_metrics.lesion_present(real, real, lesion) == (True, True)
    assert recon_metrics.lesion_present(real, np.full_like(real, 120.0), lesion) == (True, False)
    faint = real.copy()
    faint[:, 14:19, 14:19] = 90.0 # Keeps 3/8 of the contrast: below the 1/2 rule.
    assert recon_metrics.lesion_present(real, faint, lesion) == (True, False)
    assert recon_metrics.lesion_present(np.full_like(real, 120.0), real, lesion) == (False, False) # Invisible in the real image.

def test_phantom_lesions_are_redrawn_from_the_zip(snapshot):
    table = recon_metrics.read_lesions(snapshot['data'])
    assert len(table) == 6 and all({'type', 'u', 'v', 'r'} <= set(l) for ls in table.values() for l in ls)

#----------------------------------------------------------------------------

def test_calc_metrics_cli_scores_an_encoder_snapshot(snapshot):
    import calc_metrics
    r = CliRunner().invoke(calc_metrics.calc_metrics, ['--metrics=ssim_recon,lesion_recall_recon', f'--network={snapshot["pkl"]}',
                                                       f'--data={snapshot["data"]}', '--verbose=false', '--device=cpu'])
    assert r.exit_code == 0, r.output
    run_dir = os.path.dirname(snapshot['pkl'])
    line = json.loads(open(os.path.join(run_dir, 'metric-ssim_recon.jsonl')).readline())
    assert line['metric'] == 'ssim_recon' and line['results']['ssim_recon_num'] == 6

#----------------------------------------------------------------------------

def test_report_shows_curves_grid_validation_and_metrics(snapshot, tmp_path):
    run_dir = os.path.dirname(snapshot['pkl'])
    with open(os.path.join(run_dir, 'metric-ssim_recon.jsonl'), 'a') as f:
        f.write(json.dumps(dict(results=dict(ssim_recon=0.4321, **{'ssim_recon_boot_p2.5': 0.41, 'ssim_recon_boot_p97.5': 0.45}),
                                metric='ssim_recon', snapshot_pkl='encoder-snapshot-000002.pkl')) + '\n')
    out = tmp_path / 'r.html'
    r = CliRunner().invoke(cli.main, ['report', f'--run={run_dir}', f'--out={out}'])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert html.count('data:image/png;base64,') >= 2 and '0.4321' in html and 'w_avg image' in html

#----------------------------------------------------------------------------

def test_invert_skips_and_lists_a_corrupt_image(snapshot, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    import PIL.Image
    PIL.Image.fromarray(np.zeros([32, 32, 3], dtype=np.uint8)).save(src / 'a.png')
    (src / 'b.png').write_bytes(b'\x89PNG broken')
    r = CliRunner().invoke(cli.main, ['invert', f'--network={snapshot["pkl"]}', f'--images={src}', f'--outdir={tmp_path / "o"}'])
    assert r.exit_code == 0, r.output
    assert 'skipped 1' in r.output and open(tmp_path / 'o' / 'skipped-images.txt').read().startswith('b.png\t')
    assert sorted(os.listdir(tmp_path / 'o')) == ['a.png', 'dataset.json', 'skipped-images.txt', 'ws.npz']
