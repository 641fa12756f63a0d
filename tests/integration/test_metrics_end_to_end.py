# dataset_tool.py -> train.py with --metrics -> metric-<name>.jsonl at the snapshot -> calc_metrics.py on
# that snapshot (reference set from the pickle's training_set_kwargs): NVIDIA's jsonl format and the same
# value both ways, at the metric's real size (1000 generated images). The fake detector stands in for
# Inception (registered through metrics.detectors.register_detector). The oracle comparison (SciPy FID of
# images read with PIL) is in test_official_pickles_cli.py; metrics leaving training unchanged is below.

import json
import math
import os

import pytest
import torch
from click.testing import CliRunner

from tests.integration import helpers
from tests.training import helpers as train_helpers
from torch_utils import persistence
from training import launch

NVIDIA_KEYS = ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp']

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    # One training step of a tiny StyleGAN2 on a 12-image phantom zip, FID at the (only) snapshot.
    root = tmp_path_factory.mktemp('e2e')
    data = helpers.phantom_zip(root / 'phantom-16.zip', 12)
    c = train_helpers.tiny_config(data, kimg=0.004, tick=0.004)
    c.metrics = ['fid1k_full']
    with helpers.fake_inception():
        run_dir = launch.launch_training(c, outdir=str(root / 'runs'))
    return dict(run_dir=run_dir, data=data, snapshot=os.path.join(run_dir, 'network-snapshot-000000.pkl'))

def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]

#----------------------------------------------------------------------------

def test_metric_at_snapshot_is_written_in_nvidias_format(run):
    lines = _read_jsonl(os.path.join(run['run_dir'], 'metric-fid1k_full.jsonl'))
    assert len(lines) == 1
    entry = lines[0]
    assert list(entry) == NVIDIA_KEYS
    assert entry['metric'] == 'fid1k_full' and entry['num_gpus'] == 1
    assert entry['snapshot_pkl'] == 'network-snapshot-000000.pkl' # Relative to the run directory, as NVIDIA writes it.
    assert list(entry['results']) == ['fid1k_full']
    assert isinstance(entry['total_time'], float) and isinstance(entry['total_time_str'], str)
    assert abs(entry['timestamp'] - os.path.getmtime(os.path.join(run['run_dir'], 'metric-fid1k_full.jsonl'))) < 60
    fid = entry['results']['fid1k_full']
    assert math.isfinite(fid) and fid > 0

def test_calc_metrics_on_snapshot_uses_pickles_training_set_and_appends(run):
    import calc_metrics
    with helpers.fake_inception():
        result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={run["snapshot"]}', '--metrics=fid1k_full', '--verbose=false', '--device=cpu'])
    assert result.exit_code == 0, result.output
    lines = _read_jsonl(os.path.join(run['run_dir'], 'metric-fid1k_full.jsonl'))
    assert len(lines) == 2 and list(lines[1]) == NVIDIA_KEYS
    assert json.loads(result.output.strip().splitlines()[-1]) == lines[1]
    assert lines[1]['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    # Same G_ema, same reference set (from the pickle), same seed: the value computed during training.
    assert lines[1]['results']['fid1k_full'] == pytest.approx(lines[0]['results']['fid1k_full'], rel=1e-9)

def test_metrics_during_training_leave_the_run_unchanged(tmp_path, monkeypatch):
    # A metric at the tick-0 snapshot, then another step: the weights must equal a run without metrics
    # (StyleGAN2's noise inputs draw from torch's global RNG, which the metric must not advance).
    helpers.cap_fid_samples(monkeypatch, 32)
    data = train_helpers.make_dataset(str(tmp_path), num_images=8)
    final = []
    for metrics in ([], ['fid1k_full']):
        c = train_helpers.tiny_config(data, kimg=0.008, tick=0.004)
        c.metrics = metrics
        c.image_snapshot_ticks = None
        with helpers.fake_inception() as fake:
            run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'))
        assert (fake.num_calls > 0) == bool(metrics)
        final.append(persistence.load_network_pkl(os.path.join(run_dir, 'network-snapshot-000000.pkl')))
    for key in ('G', 'D', 'G_ema'):
        a, b = final[0][key].state_dict(), final[1][key].state_dict()
        assert all(torch.equal(a[name], b[name]) for name in a), key

@pytest.mark.slow # A stylegan3-t training step costs 5-15 s on a busy 2-core machine.
def test_conditional_sg3_run_with_eq_metric_matches_calc_metrics(tmp_path, monkeypatch):
    # A conditional stylegan3-t run (labels from the phantom zip) with FID and EQ-T at the snapshot (capped
    # sample counts); calc_metrics.py on the snapshot gives the same values, and the training state written
    # after the metrics holds G_ema with its input transform back at identity.
    from metrics import equivariance
    helpers.cap_fid_samples(monkeypatch, 16)
    compute = equivariance.compute_equivariance_metric
    monkeypatch.setattr(equivariance, 'compute_equivariance_metric', lambda opts, num_samples, **kw: compute(opts, num_samples=8, **kw))
    data = helpers.phantom_zip(tmp_path / 'phantom-16.zip', 10)
    c = train_helpers.tiny_config(data, cfg='stylegan3-t', kimg=0.004, tick=0.004, cond=True)
    c.metrics = ['fid1k_full', 'eqt1k_int']
    with helpers.fake_inception():
        run_dir = launch.launch_training(c, outdir=str(tmp_path / 'runs'))
        import calc_metrics
        snapshot = os.path.join(run_dir, 'network-snapshot-000000.pkl')
        result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={snapshot}', '--metrics=fid1k_full,eqt1k_int', '--verbose=false'])
    assert result.exit_code == 0, result.output
    assert persistence.load_network_pkl(snapshot)['G_ema'].c_dim > 0
    for name in c.metrics:
        lines = _read_jsonl(os.path.join(run_dir, f'metric-{name}.jsonl'))
        assert len(lines) == 2 and math.isfinite(lines[0]['results'][name])
        assert lines[1]['results'][name] == pytest.approx(lines[0]['results'][name], rel=1e-9), name
    state = torch.load(os.path.join(run_dir, 'training-state-000000.pt'), weights_only=True)
    assert torch.equal(state['G_ema']['synthesis.input.transform'], torch.eye(3))

#----------------------------------------------------------------------------
