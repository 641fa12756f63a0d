# bench/nvidia_train_step.py without an NVIDIA checkout: its worker loop on our code (a rerun gives the
# same gradients and probes; a perturbed start gives different probes), the comparison rows, and the
# --nvidia check that runs before anything is built.

import click.testing
import pytest
import torch

from tests.support.bench import load_bench

def _load():
    return load_bench('nvidia_train_step')

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    # Three runs of our code at 16 px for 4 steps (the Dreg phase runs at step 0): two identical, one
    # from weights perturbed by 1e-3.
    bench = _load()
    tmp = tmp_path_factory.mktemp('steps')
    spec = bench.demo_spec(res=16, threads=1)
    inputs = bench.make_inputs(spec, steps=4)
    out = []
    for tag, perturb in (('a', 0.0), ('b', 0.0), ('p', 1e-3)):
        bench.run_worker(dict(spec, perturb=perturb), inputs, nvidia=False, out_path=str(tmp / f'{tag}.pt'))
        out.append(torch.load(tmp / f'{tag}.pt', weights_only=True))
    return bench, out

def test_a_rerun_of_the_same_code_gives_zero_differences(runs):
    bench, (a, b, _) = runs
    rows = bench.gradient_rows(a, b)
    assert [r[0] for r in rows] == ['Gmain', 'Dmain', 'Dreg'] and all(r[1] > 10 for r in rows)
    assert all(r[2] == 0.0 for r in rows)
    assert all(p[1:] == (0.0, 0.0, 0.0, 0.0) for p in bench.probe_rows(a, b, b))

def test_a_perturbed_start_moves_the_probes(runs):
    bench, (a, b, p) = runs
    probes = bench.probe_rows(a, b, p)
    assert len(probes) == 4
    assert all(row[3] > 0 and row[4] > 0 for row in probes) # NVIDIA-perturbed columns: here our own perturbed run.
    assert all(row[1] == 0 and row[2] == 0 for row in probes)
    assert max(r[2] for r in bench.gradient_rows(a, p)) > 1e-6

def test_gradient_rows_reject_different_parameter_sets(runs):
    bench, (a, _, _) = runs
    other = dict(grads={'Gmain': {'x': torch.ones(2)}})
    with pytest.raises(ValueError, match='different parameters'):
        bench.gradient_rows(dict(grads={'Gmain': a['grads']['Gmain']}), other)

def test_bad_nvidia_checkout_names_the_option():
    result = click.testing.CliRunner().invoke(_load().main, ['--nvidia=/nonexistent/stylegan3'])
    assert result.exit_code == 2 and '--nvidia' in result.output and 'no training/networks_stylegan3.py' in result.output
