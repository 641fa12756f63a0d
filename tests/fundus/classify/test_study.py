# The study runner end to end on 16-px phantoms: outputs, dry run, resumability (a finished cell is never
# recomputed; kill -9 and a rerun give the same study.json), the definition check of the store.

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from fundus.classify import config, study as cstudy
from fundus.classify.__main__ import cli
from fundus.classify.config import ClassifyError
from tests.fundus.classify.conftest import write_study

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def finished(phantom_dir, tmp_path_factory):
    path = write_study(phantom_dir, file='full.json', external='val.zip',
                       conditions=['real', 'real+oversample', 'real+classic',
                                   dict(kind='real+synthetic', source='phantom', per_grade=[4, 8]),
                                   dict(kind='synthetic-only', source='phantom', per_grade=8),
                                   dict(kind='gan-test', source='phantom', per_grade=4)])
    out = str(tmp_path_factory.mktemp('full'))
    res = CliRunner().invoke(cli, ['run', path, f'--outdir={out}', '--device=cpu', '--no-progress'])
    assert res.exit_code == 0, res.output
    return path, out

def test_outputs(finished):
    _, out = finished
    with open(os.path.join(out, 'study.json')) as f:
        r = json.load(f)
    names = ['real', 'real+oversample', 'real+classic', 'real+phantom@4/grade', 'real+phantom@8/grade', 'synthetic-only:phantom@8/grade']
    assert list(r['conditions']) == names and list(r['comparisons']) == names[1:]
    m = r['conditions']['real']['metrics']
    for key in ('accuracy', 'balanced_accuracy', 'kappa', 'macro_auc', 'referable_auc'):
        lo, hi = m[key]['ci']
        assert lo <= m[key]['value'] <= hi and len(m[key]['seeds']) == 2
    assert set(m['sensitivity']) == {f'DR{g}' for g in range(5)}
    assert r['conditions']['real+phantom@8/grade']['train_per_grade'] == [4 + 8] * 5
    assert r['conditions']['synthetic-only:phantom@8/grade']['train_per_grade'] == [8] * 5
    c = r['comparisons']['real+classic']
    assert {'delong_referable_auc', 'mcnemar_accuracy', 'wilcoxon_kappa', 'kappa'} <= set(c) and 'p_holm' in c['mcnemar_accuracy']
    assert set(r['gan_test']['gan-test:phantom@4/grade']) == {f'DR{g}' for g in range(5)}
    assert r['external'] is not None and 'real+classic' in r['external']['comparisons']
    assert r['synthetic']['phantom']['ids']['2'][:2] == ['syn_g2_00000.png', 'syn_g2_00001.png']
    assert all(len(h) == 64 for h in r['inputs'].values()) and len(r['inputs']) >= 4
    with open(os.path.join(out, 'predictions', 'real_classic.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 30 and abs(sum(float(rows[0][f'p_DR{g}']) for g in range(5)) - 1) < 1e-5
    html = open(os.path.join(out, 'study.html')).read()
    assert html.count('<img src="data:image/png;base64,') >= 3 + 6 + 1 and 'forest plot of balanced accuracy' in html

def test_finished_cells_are_never_recomputed(finished, monkeypatch):
    path, out = finished
    before = open(os.path.join(out, 'study.json')).read()
    monkeypatch.setattr(cstudy, 'run_cell', lambda *a, **k: pytest.fail('a finished cell was recomputed'))
    res = CliRunner().invoke(cli, ['run', path, f'--outdir={out}', '--device=cpu', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert open(os.path.join(out, 'study.json')).read() == before

def test_dry_run_prints_plan_and_leakage(finished):
    path, out = finished
    res = CliRunner().invoke(cli, ['run', path, f'--outdir={out}', '--dry-run', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert '12 cells (6 conditions x 2 seeds)' in res.output and 'leakage check passed:' in res.output
    assert 'source phantom vs test' in res.output and '12 of 12 cells already finished' in res.output

def test_store_of_another_definition_is_refused(finished, phantom_dir):
    _, out = finished
    other = write_study(phantom_dir, file='other.json', seeds=3)
    res = CliRunner().invoke(cli, ['run', other, f'--outdir={out}', '--no-progress'])
    assert res.exit_code == 1 and 'holds cells of a different study definition' in res.output
    assert res.output.count('\n') == 1

def test_study_from_options_dry_run(phantom_dir, tmp_path):
    z = lambda n: os.path.join(phantom_dir, n)
    res = CliRunner().invoke(cli, ['run', f'--train={z("train.zip")}', f'--val={z("val.zip")}', f'--test={z("test.zip")}',
                                   f'--source=ph=folder:{z("phantom-source")}', '--conditions=["real+classic",{"kind":"real+synthetic","source":"ph","ratio":[1,2]}]',
                                   '--seeds=3', '--arch=tiny', '--resolution=16', f'--outdir={tmp_path}', '--dry-run', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert '12 cells (4 conditions x 3 seeds)' in res.output and 'condition real+ph@2x [real+synthetic]  source ph: ratio 2' in res.output
    assert 'source ph [folder]: images needed per grade [8, 8, 8, 8, 8]' in res.output
    res = CliRunner().invoke(cli, ['run', f'--train={z("train.zip")}', '--source=oops', f'--outdir={tmp_path}'])
    assert res.exit_code == 1 and 'Error: --source=oops: expected NAME=KIND:PATH' in res.output
    res = CliRunner().invoke(cli, ['run', f'--train={z("train.zip")}', f'--outdir={tmp_path}'])
    assert res.exit_code == 1 and 'Error: options: data.val is missing' in res.output

def test_bad_input_is_one_line(tmp_path):
    res = CliRunner().invoke(cli, ['run', str(tmp_path / 'nope.json'), f'--outdir={tmp_path}'])
    assert res.exit_code == 1 and res.output.startswith('Error: ') and 'cannot read study file' in res.output
    assert res.output.count('\n') == 1

#----------------------------------------------------------------------------

def _run(path, out, env):
    return subprocess.Popen([sys.executable, '-m', 'fundus.classify', 'run', path, f'--outdir={out}', '--device=cpu', '--no-progress'],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

def test_interrupted_study_continues_to_the_same_study_json(phantom_dir, tmp_path, monkeypatch):
    path = write_study(phantom_dir, file='interrupt.json', conditions=['real', dict(kind='real+synthetic', source='phantom', per_grade=4)])
    args = lambda out: ['run', path, f'--outdir={out}', '--device=cpu', '--no-progress']
    assert CliRunner().invoke(cli, args(tmp_path / 'ref')).exit_code == 0
    real_cell, calls = cstudy.run_cell, []
    def crashing(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt                                         # Dies while training the third cell.
        return real_cell(*a, **k)
    monkeypatch.setattr(cstudy, 'run_cell', crashing)
    CliRunner().invoke(cli, args(tmp_path / 'cut'))
    assert len(os.listdir(tmp_path / 'cut' / 'cells' / 'real')) == 2 and not (tmp_path / 'cut' / 'study.json').exists()
    monkeypatch.setattr(cstudy, 'run_cell', real_cell)
    assert CliRunner().invoke(cli, args(tmp_path / 'cut')).exit_code == 0
    assert (tmp_path / 'cut' / 'study.json').read_text() == (tmp_path / 'ref' / 'study.json').read_text()

@pytest.mark.slow
def test_resume_after_kill_gives_same_study_json(phantom_dir, tmp_path):
    path = write_study(phantom_dir, file='resume.json', conditions=['real', dict(kind='real+synthetic', source='phantom', per_grade=4)],
                       seeds=3, model=dict(arch='tiny', steps=20, batch=8, val_every=5, width=4))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    ref, killed = str(tmp_path / 'ref'), str(tmp_path / 'killed')
    p = _run(path, ref, env)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    p = _run(path, killed, env)
    deadline = time.time() + 240
    while time.time() < deadline and not os.path.exists(cstudy.cell_path(killed, 'real', 1)):
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    cells = [f for _r, _d, fs in os.walk(os.path.join(killed, 'cells')) for f in fs if f.endswith('.json')]
    assert 1 <= len(cells) < 6 and not os.path.exists(os.path.join(killed, 'study.json'))
    p = _run(path, killed, env)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    assert open(os.path.join(killed, 'study.json')).read() == open(os.path.join(ref, 'study.json')).read()

#----------------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_two_ranks_share_the_store(phantom_dir, tmp_path):
    path = write_study(phantom_dir, file='ranks.json', conditions=['real', dict(kind='real+synthetic', source='phantom', per_grade=4)])
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    out, ref = str(tmp_path / 'ranks'), str(tmp_path / 'one')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29571', '-m', 'fundus.classify', 'run',
           path, f'--outdir={out}', '--device=cpu', '--no-progress']
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert CliRunner().invoke(cli, ['run', path, f'--outdir={ref}', '--device=cpu', '--no-progress']).exit_code == 0
    assert open(os.path.join(out, 'study.json')).read() == open(os.path.join(ref, 'study.json')).read()

#----------------------------------------------------------------------------
