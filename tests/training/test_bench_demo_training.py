# bench/demo_training.py: the demo's stage 2 alone for a budget of seconds. Even a budget shorter than
# one tick trains the first tick (one step of the demo's batch), and the script reports the kimg that
# the run's stats recorded.

import re

from click.testing import CliRunner

from bench import demo_training
from fundus.demo.config import cpu_config

def test_a_one_second_budget_trains_the_first_tick_and_reports_it():
    result = CliRunner().invoke(demo_training.main, ['--seconds=1', '--threads=1'])
    assert result.exit_code == 0, result.output
    found = re.search(r': ([0-9.]+) kimg in ([0-9.]+) s \(budget 1 s, 1 threads, CPU plugin (built|failed), C heap (kept|default)\)', result.output)
    assert found, result.output
    assert float(found.group(1)) == cpu_config().batch / 1000 # Only the first tick, one step long.
