# The embedded demo at minimal size: every stage runs for real (phantoms, train.py's config and the training
# loop, gen_images, the metric modules, the run report, fundus.fundusgan's encoder training and *_recon metrics,
# fundus.classify's study, fundus.turing's create, the index) on a 32-px network for one training step; only
# the Inception detector is replaced by the test suite's fake detector. A zero budget makes every
# deadline-driven loop run its minimum (one training tick of one step, one encoder step), whatever the machine.

import json
import math
import os
import re
import shutil
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from fundus.demo import config as demo_config, encoder, gan, pack, pipeline, shipped, stages
from fundus.grades import GRADES
from tests.support.fake_detector import FakeDetector
from torch_utils import persistence
from training import generate

#----------------------------------------------------------------------------

def tiny_config():
    return demo_config.DemoConfig(name='tiny', resolution=32, num_images=20, cbase=512, cmax=32, num_layers=4, margin_size=2,
                                  z_dim=32, batch=4, gamma=0.5, tick_kimg=0.004, ada_kimg=1, metric_images=8, eq_samples=4,
                                  spectrum_images=8, bootstrap=5, images_per_grade=2, grid_size=(2, 5),
                                  detectors={'inception': FakeDetector()}, heldout_images=10, enc_width=8, enc_fpn=16,
                                  enc_batch=2, cls_resolution=16, cls_patients=(1, 1, 1), cls_synthetic=2, cls_seeds=2,
                                  cls_steps=2, cls_bootstrap=20, study_count=4, study_practice=2)

STAGES = ['1 Phantom dataset', '2 Training from scratch', '3 Model to evaluate', '3 Images per grade', '3 Metrics',
          '3 Training run report', '4 Encoder', '5 Downstream classifier study', '6 Reader study', '7 Index']

@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    outdir = str(tmp_path_factory.mktemp('demo') / 'demo-out')
    no_model = str(tmp_path_factory.mktemp('no-shipped-model'))
    lines = []
    results, index_path = pipeline.run_demo(outdir, minutes=0, device='cpu', config=tiny_config(), echo=lines.append,
                                            model_dir=no_model)
    run_dirs = [os.path.join(outdir, 'runs', d) for d in os.listdir(os.path.join(outdir, 'runs'))]
    assert len(run_dirs) == 1
    enc_dirs = [os.path.join(outdir, 'encoder', d) for d in os.listdir(os.path.join(outdir, 'encoder'))]
    assert len(enc_dirs) == 1
    return dict(outdir=outdir, results=results, index=index_path, lines=lines, run_dir=run_dirs[0], enc_dir=enc_dirs[0])

def read_metric(run_dir, name):
    with open(os.path.join(run_dir, f'metric-{name}.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 1
    assert list(lines[0].keys()) == ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp']
    return lines[0]

def read_text(path):
    with open(path, encoding='utf-8') as f:
        return f.read()

#----------------------------------------------------------------------------

def test_demo_runs_every_stage_and_prints_progress(demo_run):
    assert [(r.name, r.status) for r in demo_run['results']] == [(name, 'done') for name in STAGES]
    text = '\n'.join(demo_run['lines'])
    for i in range(1, 11):
        assert re.search(rf'^\[{i}/10\] .* \.\.\.$', text, re.M) and re.search(rf'^\[{i}/10\] .*: done in ', text, re.M)
    assert demo_run['results'][2].note == shipped.NO_MODEL
    assert demo_run['lines'][-1] == f'Index: {os.path.abspath(demo_run["index"])}'
    assert demo_run['index'] == os.path.join(demo_run['outdir'], 'index.html')

def test_demo_dataset_is_labelled_phantoms(demo_run):
    path = os.path.join(demo_run['outdir'], 'phantoms-20-32x32.zip')
    with zipfile.ZipFile(path) as z:
        labels = json.loads(z.read('dataset.json'))['labels']
        pngs = [n for n in z.namelist() if n.endswith('.png')]
        assert 'phantom_lesions.json' in z.namelist()
    assert len(labels) == 20 and len(pngs) == 20
    assert {label for _name, label in labels} <= set(GRADES)

def test_demo_training_respects_budget_and_writes_run_dir(demo_run):
    run_dir = demo_run['run_dir']
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        options = json.load(f)
    assert options['G_kwargs']['class_name'] == 'training.networks_stylegan3.Generator'
    assert options['G_kwargs']['num_layers'] == 4 and options['training_set_kwargs']['use_labels'] is True
    # A zero budget stops training after the first tick (one step of 4 images), whatever the machine's speed.
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    assert len(stats) == 1 and stats[0]['Progress/kimg']['mean'] == pytest.approx(0.004)
    snapshots = sorted(n for n in os.listdir(run_dir) if n.startswith('network-snapshot-'))
    assert snapshots == ['network-snapshot-000000.pkl']
    G = generate.load_generator(os.path.join(run_dir, snapshots[0]))
    assert (G.c_dim, G.img_resolution, G.z_dim) == (5, 32, 32)

def test_demo_images_per_grade_match_gen_images(demo_run):
    G = generate.load_generator(os.path.join(demo_run['run_dir'], 'network-snapshot-000000.pkl'))
    for grade in GRADES:
        folder = os.path.join(demo_run['outdir'], 'images', f'DR{grade}')
        assert sorted(os.listdir(folder)) == ['grid.png', 'seed0000.png', 'seed0001.png']
    got = np.asarray(PIL.Image.open(os.path.join(demo_run['outdir'], 'images', 'DR3', 'seed0001.png'))).astype(int)
    (_seed, want), = generate.generate_images(G, [1], class_idx=3)
    assert np.abs(got - want.astype(int)).max() <= 1

def test_demo_metrics_are_written_in_nvidia_format(demo_run):
    run_dir = demo_run['run_dir']
    # The images scored are rendered once, seed i with grade i mod 5.
    folder = os.path.join(demo_run['outdir'], 'metric-images')
    assert sorted(os.listdir(folder)) == [f'seed{s:04d}.png' for s in range(8)]
    fid = read_metric(run_dir, 'fid8_full')
    assert fid['snapshot_pkl'] == 'network-snapshot-000000.pkl' and fid['num_gpus'] == 1
    r = fid['results']
    assert math.isfinite(r['fid8_full']) and r['fid8_full'] > 0
    assert r['fid8_full_boot_p2.5'] <= r['fid8_full_boot_mean'] <= r['fid8_full_boot_p97.5'] and r['fid8_full_boot_n'] == 5
    kid = read_metric(run_dir, 'kid8_full')['results']
    assert math.isfinite(kid['kid8_full']) and kid['kid8_full_boot_n'] == 5
    for name in ('eqt4_int', 'eqr4'):
        assert 0 < read_metric(run_dir, name)['results'][name] < 200
    spectrum = read_metric(run_dir, 'spectrum8')['results']
    assert spectrum['spectrum8'] >= 0 and spectrum['spectrum8_num_gen'] == 8
    memo = read_metric(run_dir, 'memorization8')['results']
    assert memo['memorization8_num_gen'] == 8 and 0 <= memo['memorization8_near_copies'] <= 8
    assert os.path.isfile(os.path.join(run_dir, 'spectrum8.png')) and os.path.isfile(os.path.join(run_dir, 'memorization8.png'))
    # The stage's note shows the values it wrote, with the bootstrap interval.
    note = demo_run['results'][4].note
    assert f'fid8_full = {r["fid8_full"]:.2f} (95% CI {r["fid8_full_boot_p2.5"]:.2f}-{r["fid8_full_boot_p97.5"]:.2f})' in note

def test_demo_report_shows_the_run(demo_run):
    text = read_text(os.path.join(demo_run['outdir'], 'report.html'))
    fid = read_metric(demo_run['run_dir'], 'fid8_full')['results']['fid8_full']
    assert f'{fid:.2f}' in text
    for section in ('spectra', 'memorization'):
        body = re.search(rf'<section id="{section}">(.*?)</section>', text, re.S).group(1)
        assert 'data:image/png;base64,' in body and 'not computed for this run' not in body
    images = re.search(r'<section id="images">(.*?)</section>', text, re.S).group(1)
    for grade in GRADES:
        assert images.count(f'<b>DR{grade}</b>') == 2 # a real row and a generated row per grade

def test_demo_encoder_reconstructs_scores_and_mixes(demo_run):
    enc = demo_run['enc_dir']
    with open(os.path.join(enc, 'training_options.json')) as f:
        assert json.load(f)['steps'] == 1 # The zero budget: one step.
    assert os.path.isfile(os.path.join(enc, 'encoder-snapshot-000001.pkl'))
    ssim = read_metric(enc, 'ssim_recon')['results']
    assert -1 <= ssim['ssim_recon'] <= 1 and ssim['ssim_recon_num'] == 10 # every held-out phantom
    assert ssim['ssim_recon_boot_p2.5'] <= ssim['ssim_recon_boot_p97.5']
    assert read_metric(enc, 'lpips_recon')['results']['lpips_recon'] > 0
    assert 0 <= read_metric(enc, 'lesion_recall_recon')['results']['lesion_recall_recon'] <= 1
    recon = os.listdir(os.path.join(enc, 'heldout-recon'))
    assert len([n for n in recon if n.endswith('.png') and n != 'grid.png']) == 10 and 'grid.png' in recon
    with PIL.Image.open(os.path.join(enc, 'mix', 'mix.png')) as im:
        assert im.size == (3 * 32, 32) # anatomy source | lesion source | mix
    report = read_text(os.path.join(enc, 'report.html'))
    assert 'CI 2.5%' in report and 'run calc_metrics.py' not in report # Written after the held-out scores.

def test_demo_downstream_study_compares_three_conditions(demo_run):
    out = os.path.join(demo_run['outdir'], 'downstream', 'out')
    with open(os.path.join(out, 'study.json')) as f:
        res = json.load(f)
    assert sorted(res['conditions']) == ['real', 'real+classic', 'real+gan@2/grade']
    assert sorted(res['comparisons']) == ['real+classic', 'real+gan@2/grade']
    assert res['data']['test']['images'] == 10 and res['seeds'] == [0, 1]
    assert 'forest' in read_text(os.path.join(out, 'study.html')).lower()
    shares = res['gan_test']['gan-test:gan@2/grade']
    assert sorted(shares) == [f'DR{g}' for g in GRADES] and all(0 <= v['value'] <= 1 and v['n'] == 2 for v in shares.values())
    note = next(r.note for r in demo_run['results'] if r.key == 'downstream')
    assert re.search(r'gan-test \(.*\) DR0 [01]\.\d\d, DR1', note)

def test_demo_reader_study_is_created_and_serve_is_printed(demo_run):
    study = os.path.join(demo_run['outdir'], 'reader-study')
    with open(os.path.join(study, 'links.json')) as f:
        links = json.load(f)
    assert sorted(links['readers']) == ['reader1', 'reader2']
    assert len(os.listdir(os.path.join(study, 'images'))) == 4 + 2
    assert f'python -m fundus.turing serve {study}' in '\n'.join(demo_run['lines'])

def test_demo_index_links_every_page_and_shows_every_stage(demo_run):
    text = read_text(demo_run['index'])
    hrefs = re.findall(r'href="([^"#]+)"', text)
    for rel in ['report.html', 'downstream/out/study.html', os.path.relpath(os.path.join(demo_run['enc_dir'], 'report.html'), demo_run['outdir'])]:
        assert rel in hrefs
    for rel in hrefs:
        assert os.path.exists(os.path.join(demo_run['outdir'], rel)), rel
    table = re.search(r'<section id="stages">(.*?)</section>', text, re.S).group(1)
    for name in STAGES:
        assert name in table
    assert table.count('>done<') == len(STAGES)

#----------------------------------------------------------------------------
# A failing stage is reported in the index with its reason, and the later independent stages still run.

def test_failed_stage_is_reported_and_later_stages_run(demo_run, tmp_path):
    def broken(demo):
        raise ValueError('encoder exploded\nsecond line')
    chosen = [s for s in pipeline.default_stages() if s.key not in ('images', 'metrics', 'report')]
    chosen = [stages.Stage(s.key, s.name, broken, s.needs) if s.key == 'encoder' else s for s in chosen]
    outdir = str(tmp_path / 'out')
    results, index_path = pipeline.run_demo(outdir, minutes=0, device='cpu', config=tiny_config(), echo=lambda _l: None,
                                            stages=chosen, model_dir=str(tmp_path / 'none'))
    assert [(r.key, r.status) for r in results] == [('dataset', 'done'), ('training', 'done'), ('model', 'done'),
        ('encoder', 'failed'), ('downstream', 'done'), ('reader', 'done'), ('index', 'done')]
    assert results[3].note == 'ValueError: encoder exploded'
    table = re.search(r'<section id="stages">(.*?)</section>', read_text(index_path), re.S).group(1)
    assert 'FAILED' in table and 'ValueError: encoder exploded' in table

#----------------------------------------------------------------------------
# The shipped model: absent, present with the recorded hash, present with another hash.

def _shipped_dir(tmp_path, snapshot, sha=None):
    d = tmp_path / 'model'
    d.mkdir()
    shutil.copy(snapshot, d / 'phantom-G.pkl')
    entry = dict(file='phantom-G.pkl', sha256=sha or shipped.sha256_of(str(d / 'phantom-G.pkl')))
    (d / 'manifest.json').write_text(json.dumps(dict(generator=entry)))
    return str(d)

def test_shipped_model_absent_present_and_mismatched(demo_run, tmp_path):
    snapshot = os.path.join(demo_run['run_dir'], 'network-snapshot-000000.pkl')
    assert shipped.generator_path(str(tmp_path)) is None
    good = _shipped_dir(tmp_path, snapshot)
    assert shipped.generator_path(good) == os.path.join(good, 'phantom-G.pkl')
    d = stages.Demo(str(tmp_path / 'out'), tiny_config(), 'cpu', deadline=0, echo=lambda _l: None, model_dir=good)
    os.makedirs(d.outdir)
    out = gan.choose_model(d)
    assert d.model == os.path.join(good, 'phantom-G.pkl') and 'SHA-256 checked' in out.note
    assert d.eval_zip == os.path.join(d.outdir, 'phantoms-20-32x32.zip') and os.path.isfile(d.eval_zip)
    shutil.rmtree(good)
    bad = _shipped_dir(tmp_path, snapshot, sha='0' * 64)
    with pytest.raises(shipped.ShippedModelError, match='does not match the manifest'):
        shipped.generator_path(bad)

def test_pack_model_keeps_g_ema_and_the_encoder_and_stage_4_uses_the_shipped_encoder(demo_run, tmp_path):
    snapshot = os.path.join(demo_run['run_dir'], 'network-snapshot-000000.pkl')
    enc_pkl = os.path.join(demo_run['enc_dir'], 'encoder-snapshot-000001.pkl')
    model_dir = str(tmp_path / 'model')
    manifest = shipped.pack_model(snapshot, enc_pkl, model_dir, dict(kimg=0))
    assert sorted(os.listdir(model_dir)) == ['manifest.json', 'phantom-E.pkl', 'phantom-G.pkl']
    assert manifest['provenance'] == dict(kimg=0, network='network-snapshot-000000.pkl', encoder='encoder-snapshot-000001.pkl')
    packed = persistence.load_network_pkl(os.path.join(model_dir, 'phantom-G.pkl'))
    assert [k for k, v in packed.items() if v is not None] == ['G_ema'] # No D, no G, no augment pipe.
    d = stages.Demo(str(tmp_path / 'out'), tiny_config(), 'cpu', deadline=0, echo=lambda _l: None, model_dir=model_dir)
    os.makedirs(d.outdir)
    assert 'shipped model and encoder' in gan.choose_model(d).note
    assert d.shipped_encoder == os.path.join(model_dir, 'phantom-E.pkl')
    out = encoder.train_encoder(d)
    assert out.note.startswith('shipped encoder phantom-E.pkl; held-out ssim_recon = ')
    assert d.encoder_snapshot == d.shipped_encoder and not os.path.exists(os.path.join(d.outdir, 'encoder')) # Not retrained.
    assert read_metric(os.path.join(d.outdir, 'shipped-encoder'), 'ssim_recon')['results']['ssim_recon_num'] == 10
    (tmp_path / 'model' / 'phantom-E.pkl').write_bytes(b'not the shipped file')
    with pytest.raises(shipped.ShippedModelError, match='phantom-E.pkl: SHA-256 .* does not match the manifest'):
        shipped.encoder_path(model_dir)

def test_pack_model_refuses_an_encoder_of_another_generator(demo_run, tmp_path):
    snapshot = os.path.join(demo_run['run_dir'], 'network-snapshot-000000.pkl')
    data = persistence.load_network_pkl(os.path.join(demo_run['enc_dir'], 'encoder-snapshot-000001.pkl'))
    with torch.no_grad():
        next(data['G'].parameters()).add_(1) # The encoder now serves another generator.
    other = str(tmp_path / 'other-encoder.pkl')
    persistence.save_network_pkl(other, data)
    with pytest.raises(shipped.ShippedModelError, match='other-encoder.pkl: was trained against another generator'):
        shipped.pack_model(snapshot, other, str(tmp_path / 'model'))
    assert not os.path.exists(tmp_path / 'model' / 'manifest.json')

#----------------------------------------------------------------------------
# Stage mechanics without running anything heavy.

def test_stage_outcomes_are_reported_not_hidden():
    lines = []
    d = stages.Demo('unused', tiny_config(), 'cpu', deadline=0, echo=lines.append)
    def unavailable(_demo):
        raise stages.StageUnavailable('the encoder needs a multiple of 32')
    def broken(_demo):
        raise ValueError('bad value\nsecond line')
    assert d.stage(1, 3, stages.Stage('a', 'Encoder', unavailable)) is False
    assert d.stage(2, 3, stages.Stage('b', 'Broken', broken)) is False
    assert d.stage(3, 3, stages.Stage('c', 'Report', lambda _d: 'ok', needs=('run_dir',))) is False
    assert [r.status for r in d.results] == ['unavailable', 'failed', 'skipped']
    assert lines[1].startswith('[1/3] Encoder: not available in ') and lines[1].endswith('the encoder needs a multiple of 32')
    assert lines[3].endswith('FAILED in 0s: ValueError: bad value')
    assert lines[4].startswith('[3/3] Report: skipped') and 'run_dir' in lines[4]

def test_budget_stops_before_an_overrunning_tick(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(stages.time, 'time', lambda: clock[0])
    budget = stages.DeadlineBudget(deadline=130.0)
    budget(4, 0)            # tick 0 at t=100
    assert not budget.stop()
    clock[0] = 110.0
    budget(8, 0)            # ticks take 10 s; the next would end at 120 < 130
    assert not budget.stop()
    clock[0] = 121.0
    budget(12, 0)           # the next would end at 131 > 130
    assert budget.stop()

def test_stage_deadlines_follow_the_shares():
    chosen = pipeline.default_stages()
    ends = pipeline.stage_deadlines(1000.0, 600.0, chosen)
    assert sum(demo_config.SHARES.values()) == pytest.approx(1.0)
    assert ends['dataset'] == pytest.approx(1000 + 600 * demo_config.SHARES['dataset'])
    assert ends['index'] == pytest.approx(1600.0)
    assert [ends[s.key] for s in chosen] == sorted(ends[s.key] for s in chosen)
    # Without some stages the others share the whole budget in the same proportions.
    two = [s for s in chosen if s.key in ('training', 'encoder')]
    ends = pipeline.stage_deadlines(0.0, 600.0, two)
    share = demo_config.SHARES['training'] / (demo_config.SHARES['training'] + demo_config.SHARES['encoder'])
    assert ends['training'] == pytest.approx(600 * share) and ends['encoder'] == pytest.approx(600.0)

#----------------------------------------------------------------------------

def test_pack_cli_names_a_missing_file(tmp_path):
    result = CliRunner().invoke(pack.main, [f'--network={tmp_path}/none.pkl', f'--outdir={tmp_path}/model'])
    assert result.exit_code != 0 and f'--network={tmp_path}/none.pkl: no such file' in result.output
    assert 'Traceback' not in result.output and not os.path.exists(tmp_path / 'model')
    (tmp_path / 'broken.pkl').write_bytes(b'not a pickle')
    result = CliRunner().invoke(pack.main, [f'--network={tmp_path}/broken.pkl', f'--outdir={tmp_path}/model'])
    assert result.exit_code != 0 and f'--network={tmp_path}/broken.pkl: cannot load' in result.output
    assert 'Traceback' not in result.output and not os.path.exists(tmp_path / 'model')
