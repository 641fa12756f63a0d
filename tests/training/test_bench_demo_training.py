# bench/demo_training.py: the demo's stage 2 alone for a budget of seconds. Even a budget shorter than
# one tick trains the first tick (one step of the demo's batch), and the script reports the kimg that
# the run's stats recorded. How many ticks fit in one second depends on the machine (a fast one starts
# a second tick when the first ended early enough), so the test asserts the tick structure, not a count.

import re

from click.testing import CliRunner

from bench import demo_training
from fundus.demo.config import cpu_config

def test_a_one_second_budget_trains_the_first_tick_and_reports_it():
    result = CliRunner().invoke(demo_training.main, ['--seconds=1', '--threads=1'])
    assert result.exit_code == 0, result.output
    found = re.search(r': ([0-9.]+) kimg in ([0-9.]+) s \(budget 1 s, 1 threads, CPU plugin (built|failed), C heap (kept|default)\)', result.output)
    assert found, result.output
    cfg = cpu_config()
    images = round(float(found.group(1)) * 1000)
    tick_images = round(cfg.tick_kimg * 1000)
    assert images >= cfg.batch, result.output # The first tick always runs: one step.
    assert (images - cfg.batch) % tick_images == 0, result.output # Then whole ticks only.
