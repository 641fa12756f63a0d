# The embedded demo at minimal size: every stage runs for real (dataset_tool phantoms, train.py's config and
# the training loop, gen_images, the metric modules, the report) on a 16-px network for one training step;
# only the Inception detector is replaced by the test suite's fake detector.

import json
import math
import os
import re
import zipfile

import numpy as np
import PIL.Image
import pytest

from training import generate
from fundus import demo
from tests.support.fake_detector import FakeDetector

#----------------------------------------------------------------------------

def tiny_config():
    return demo.DemoConfig(name='tiny', resolution=16, num_images=20, cbase=512, cmax=32, num_layers=4, margin_size=2,
                           z_dim=32, batch=4, gamma=0.5, tick_kimg=0.004, ada_kimg=1, metric_images=8, eq_samples=4,
                           spectrum_images=8, bootstrap=5, eval_reserve_s=0, images_per_grade=2, grid_size=(2, 5),
                           detectors={'inception': FakeDetector()})

@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    outdir = str(tmp_path_factory.mktemp('demo') / 'demo-out')
    lines = []
    results, report_path = demo.run_demo(outdir, minutes=0, device='cpu', config=tiny_config(), echo=lines.append)
    run_dirs = [os.path.join(outdir, 'runs', d) for d in os.listdir(os.path.join(outdir, 'runs'))]
    assert len(run_dirs) == 1
    return dict(outdir=outdir, results=results, report=report_path, lines=lines, run_dir=run_dirs[0])

def read_metric(run_dir, name):
    with open(os.path.join(run_dir, f'metric-{name}.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 1
    assert list(lines[0].keys()) == ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp']
    return lines[0]

#----------------------------------------------------------------------------

def test_demo_runs_every_stage_and_prints_progress(demo_run):
    assert [(r.name, r.status) for r in demo_run['results']] == [
        ('Phantom dataset', 'done'), ('Training (stylegan3-t)', 'done'), ('Generating images', 'done'),
        ('Metrics', 'done'), ('Report', 'done')]
    text = '\n'.join(demo_run['lines'])
    for i in range(1, 6):
        assert f'[{i}/5]' in text and re.search(rf'^\[{i}/5\] .*: done in ', text, re.M)
    assert demo_run['lines'][-1] == f'Report: {os.path.abspath(demo_run["report"])}'
    assert demo_run['report'] == os.path.join(demo_run['outdir'], 'report.html')

def test_demo_dataset_is_labelled_phantoms(demo_run):
    path = os.path.join(demo_run['outdir'], 'phantoms-20-16x16.zip')
    with zipfile.ZipFile(path) as z:
        labels = json.loads(z.read('dataset.json'))['labels']
        pngs = [n for n in z.namelist() if n.endswith('.png')]
    assert len(labels) == 20 and len(pngs) == 20
    assert {label for _name, label in labels} <= set(demo.GRADES)

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
    assert (G.c_dim, G.img_resolution, G.z_dim) == (5, 16, 32)

def test_demo_images_per_grade_match_gen_images(demo_run):
    G = generate.load_generator(os.path.join(demo_run['run_dir'], 'network-snapshot-000000.pkl'))
    for grade in demo.GRADES:
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
    assert math.isfinite(read_metric(run_dir, 'kid8_full')['results']['kid8_full'])
    eqt = read_metric(run_dir, 'eqt4_int')['results']['eqt4_int']
    assert 0 < eqt < 200
    spectrum = read_metric(run_dir, 'spectrum8')['results']
    assert spectrum['spectrum8'] >= 0 and spectrum['spectrum8_num_gen'] == 8
    memo = read_metric(run_dir, 'memorization8')['results']
    assert memo['memorization8_num_gen'] == 8 and 0 <= memo['memorization8_near_copies'] <= 8
    assert os.path.isfile(os.path.join(run_dir, 'spectrum8.png')) and os.path.isfile(os.path.join(run_dir, 'memorization8.png'))

def test_demo_report_shows_the_run(demo_run):
    with open(demo_run['report'], encoding='utf-8') as f:
        text = f.read()
    fid = read_metric(demo_run['run_dir'], 'fid8_full')['results']['fid8_full']
    assert f'{fid:.2f}' in text
    for section in ('spectra', 'memorization'):
        body = re.search(rf'<section id="{section}">(.*?)</section>', text, re.S).group(1)
        assert 'data:image/png;base64,' in body and 'not computed for this run' not in body
    images = re.search(r'<section id="images">(.*?)</section>', text, re.S).group(1)
    for grade in demo.GRADES:
        assert images.count(f'<b>DR{grade}</b>') == 2 # a real row and a generated row per grade

#----------------------------------------------------------------------------
# Stage mechanics without running anything heavy.

def test_stage_outcomes_are_reported_not_hidden():
    lines = []
    d = demo.Demo('unused', tiny_config(), 'cpu', deadline=0, echo=lines.append)
    def unavailable():
        raise demo.StageUnavailable('metrics.spectrum is not importable')
    def broken():
        raise ValueError('bad value\nsecond line')
    assert d.stage(1, 3, 'Spectrum', unavailable) is False
    assert d.stage(2, 3, 'Broken', broken) is False
    assert d.stage(3, 3, 'Report', lambda: 'ok', needs=('run_dir',)) is False
    assert [r.status for r in d.results] == ['unavailable', 'failed', 'skipped']
    assert lines[1].startswith('[1/3] Spectrum: NOT AVAILABLE YET in ') and lines[1].endswith('metrics.spectrum is not importable')
    assert lines[3].endswith('FAILED in 0s: ValueError: bad value')
    assert lines[4].startswith('[3/3] Report: skipped') and 'run_dir' in lines[4]

def test_training_budget_stops_before_an_overrunning_tick(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(demo.time, 'time', lambda: clock[0])
    budget = demo.TrainingBudget(deadline=130.0, echo=lambda _line: None)
    budget(4, 0)            # tick 0 at t=100
    assert not budget.stop()
    clock[0] = 110.0
    budget(8, 0)            # ticks take 10 s; the next would end at 120 < 130
    assert not budget.stop()
    clock[0] = 121.0
    budget(12, 0)           # the next would end at 131 > 130
    assert budget.stop()

#----------------------------------------------------------------------------
