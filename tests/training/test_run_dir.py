# training.run_dir: the readers of a run directory (options, stats.jsonl, metric-*.jsonl, snapshot names)
# on files written the way train.py, the training loop and metric_main.report_metric write them.

import json
import os

import pytest

from metrics import metric_main
from training import checkpoint
from training import run_dir

#----------------------------------------------------------------------------

def _stat(mean, num=1):
    return dict(num=num, mean=mean, std=0.0)

def test_snapshot_kimg_reads_what_checkpoint_writes():
    for nimg in (0, 4000, 200_000, 25_000_000):
        assert run_dir.snapshot_kimg(checkpoint.snapshot_filename(nimg)) == nimg // 1000
    assert run_dir.snapshot_kimg('/runs/x/network-snapshot-000040.pkl') == 40
    for name in (None, '', 'network-snapshot-final.pkl', 'network-snapshot-000040.pkl.tmp', 'training-state-000040.pt'):
        assert run_dir.snapshot_kimg(name) is None

def test_last_kimg_is_exact_and_skips_lines_without_progress():
    stats = [{'Progress/kimg': _stat(0.5)}, {'Progress/kimg': _stat(1.25)}, {'timestamp': 3.0}]
    assert run_dir.last_kimg(stats) == 1.25
    assert run_dir.last_kimg([]) is None and run_dir.last_kimg(None) is None

def test_load_run_reads_every_file_and_notes_damage(tmp_path):
    d = str(tmp_path)
    with open(os.path.join(d, run_dir.OPTIONS_FILE), 'w') as f:
        json.dump(dict(batch_size=16), f)
    with open(os.path.join(d, run_dir.STATS_FILE), 'w') as f:
        f.write(json.dumps({'Progress/kimg': _stat(0.5), 'Loss/G/loss': _stat(2.0, 8)}) + '\n')
        f.write(json.dumps({'Progress/kimg': _stat(1.0), 'Loss/G/loss': _stat(float('nan'), 8)}) + '\n')
        f.write(json.dumps({'Progress/kimg': _stat(1.5), 'Loss/G/loss': _stat(1.5, 0)}) + '\n')
        f.write('{"Progress/kimg": ') # Killed mid-write.
    result = dict(results=dict(fid50k_full=4.25), metric='fid50k_full', total_time=1.0, total_time_str='1s', num_gpus=1)
    for kimg in (40, 80):
        metric_main.report_metric(result, run_dir=d, snapshot_pkl=os.path.join(d, checkpoint.snapshot_filename(kimg * 1000)))
    for kimg in (80, 40):
        open(os.path.join(d, checkpoint.snapshot_filename(kimg * 1000)), 'wb').close()
    open(os.path.join(d, 'metric-empty.jsonl'), 'w').close()
    run = run_dir.load_run(d)
    assert run.options == dict(batch_size=16) and len(run.stats) == 3
    assert run_dir.read_stats(d) == run.stats and run_dir.last_kimg(run_dir.read_stats(d)) == 1.5 # The demo's exact kimg.
    assert run.problems == ['stats.jsonl line 4: not valid JSON, skipped']
    assert list(run.metrics) == ['fid50k_full'] and len(run.metrics['fid50k_full']) == 2
    assert [os.path.basename(p) for p in run.snapshots] == ['network-snapshot-000040.pkl', 'network-snapshot-000080.pkl']
    xs, ys = run_dir.metric_series(run.metrics['fid50k_full'], 'fid50k_full')
    assert xs.tolist() == [40, 80] and ys.tolist() == [4.25, 4.25]
    xs, ys = run_dir.stat_series(run.stats, 'Loss/G/loss') # NaN and empty (num 0) entries are left out.
    assert xs.tolist() == [0.5] and ys.tolist() == [2.0]

def test_load_run_missing_dir_and_unreadable_options(tmp_path):
    with pytest.raises(run_dir.RunDirError, match='run directory not found'):
        run_dir.load_run(str(tmp_path / 'nope'))
    (tmp_path / run_dir.OPTIONS_FILE).write_text('{not json')
    run = run_dir.load_run(str(tmp_path))
    assert run.options is None and run.stats == [] and run.metrics == {} and len(run.problems) == 1
    assert run.problems[0].startswith('training_options.json: ')

#----------------------------------------------------------------------------
