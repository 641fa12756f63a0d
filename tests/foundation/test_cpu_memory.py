# torch_utils/cpu_memory.py: once the heap is tuned, tensors allocated and freed again and again stop
# costing page faults; a user's own MALLOC_* setting stands; the command lines and the rank processes
# that training/launch.py spawns tune their process. The fault cases run in a fresh interpreter, because
# the tuning lasts for the rest of a process; the others replace keep_freed_memory with a recorder.

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import calc_metrics
import dnnlib
import gen_images
import train
from fundus.demo import __main__ as demo_cli
from fundus.fundusgan import __main__ as fundusgan_cli
from torch_utils import cpu_memory
from training import launch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Four 8 MiB tensors written and freed, ten times: 16-80 k page faults on glibc's defaults (it gives the
# memory back each time; how much it keeps between cycles varies with the machine), none once freed
# memory stays in the heap.
FAULTS = """
import resource, sys, torch
from torch_utils import cpu_memory
def cycle():
    ts = [torch.ones(2 << 20) for _ in range(4)]
    del ts
def faults():
    cycle()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        cycle()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
before = faults()
applied = cpu_memory.keep_freed_memory()
print(applied, before, faults())
"""

glibc_only = pytest.mark.skipif(not cpu_memory.is_glibc(), reason='mallopt tuning applies to glibc only')

def _faults(env=None):
    env = {k: v for k, v in os.environ.items() if k not in cpu_memory.ENV_NAMES} | (env or {})
    out = subprocess.run([sys.executable, '-c', FAULTS], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    applied, before, after = out.stdout.split()
    return applied == 'True', int(before), int(after)

#----------------------------------------------------------------------------

@glibc_only
def test_freed_tensors_stop_faulting_once_the_heap_is_tuned():
    applied, before, after = _faults()
    assert applied
    assert before >= 10 * 4, before # At least each tensor of each cycle faults in again (8192 pages at most).
    assert after < before / 20, (before, after)

@glibc_only
def test_a_users_own_malloc_setting_stands():
    applied, before, after = _faults({'MALLOC_TRIM_THRESHOLD_': str(128 << 10)})
    assert not applied
    assert after > before / 2, (before, after) # Still faulting: nothing was changed.

@pytest.fixture
def tune_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_memory, 'keep_freed_memory', lambda: calls.append(1) or True)
    return calls

# Each fails on a missing option or a bad network after tuning (the demo: its pipeline refuses the device).
@pytest.mark.parametrize('command, args', [(train.main, []), (calc_metrics.calc_metrics, ['--metrics=fid50k_full']),
                                           (gen_images.main, ['--network=missing.pkl', '--seeds=0', '--outdir=out']),
                                           (fundusgan_cli.main, ['train', '--help']), (demo_cli.main, [])])
def test_the_command_lines_tune_their_process(monkeypatch, tune_calls, tmp_path, command, args):
    def no_device(**_):
        raise demo_cli.DeviceError('no device')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo_cli.pipeline, 'run_demo', no_device)
    result = CliRunner().invoke(command, args)
    assert tune_calls == [1], result.output

@pytest.mark.parametrize('temp_dir, calls', [(None, []), ('spawned', [1])])
def test_spawned_rank_processes_tune_theirs(monkeypatch, tune_calls, temp_dir, calls):
    monkeypatch.setattr(launch.loop, 'training_loop', lambda **_: None)
    launch._subprocess_fn(0, dnnlib.EasyDict(device='cpu', num_gpus=1), temp_dir, {}) # pylint: disable=protected-access
    assert tune_calls == calls # The process of the command line (temp_dir None) was tuned by it.

#----------------------------------------------------------------------------
