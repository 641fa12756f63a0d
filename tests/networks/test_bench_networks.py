# bench/networks.py --nvidia: the comparison row (NVIDIA's value over ours, column by column), the
# option checks that run before anything is built, and the measuring loop of bench/nvidia_reference.py.
# None of these needs an NVIDIA checkout: the subprocess itself is exercised by the benchmark only.

import click.testing
import pytest

from tests.support.bench import load_bench

_load = load_bench

#----------------------------------------------------------------------------

def test_ratio_row_divides_nvidia_by_ours_in_each_column():
    row = _load('networks').ratio_row('stylegan3-t', 128, 'G forward+backward', (10.0, 8.0, 2.0, 5.0), (40.0, 36.0, 7.0, 30.0))
    assert row == '| stylegan3-t | 128 | G forward+backward: NVIDIA / ours | 4.00x | 4.50x | | 3.50x | 6.00x |'

def test_ratio_row_rejects_a_zero_measurement():
    with pytest.raises(ValueError, match='G forward'):
        _load('networks').ratio_row('stylegan3-t', 128, 'G forward', (1.0, 1.0, 0.0, 1.0), (1.0, 1.0, 1.0, 1.0))

@pytest.mark.parametrize('args,message', [
    (['--nvidia=/nonexistent/stylegan3'], 'no training/networks_stylegan3.py'),
    (['--nvidia=/nonexistent/stylegan3', '--device=cuda'], 'CPU only'),
])
def test_bad_nvidia_option_names_the_option(args, message):
    result = click.testing.CliRunner().invoke(_load('networks').main, ['--threads=0', '--train'] + args)
    assert result.exit_code == 2 and '--nvidia' in result.output and message in result.output

def test_nvidia_reference_measure_times_only_the_runs_after_warmup():
    calls = []
    out = _load('nvidia_reference')._measure(lambda: calls.append(1), warmup=2, reps=3)
    assert len(calls) == 5 and len(out['times']) == len(out['cpu']) == 3
    assert min(out['times']) >= 0 and out['peak_gb'] > 0
