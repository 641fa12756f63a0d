# Exact resume: a run killed with SIGKILL (or stopped with SIGINT) and continued with --resume=<run dir>
# ends with weights, optimiser state and counters bit-identical to an uninterrupted run (CPU, one thread,
# deterministic mode).

import json
import os
import signal
import time

import pytest
import torch

import dnnlib
from tests.training import helpers
from training import checkpoint, launch

KIMG = 0.016 # 4 steps of batch 4.
TICK = 0.008 # 2 steps per tick; a training state at every tick.

#----------------------------------------------------------------------------

def _config(tmp_path, data, name):
    c = helpers.tiny_config(data, cfg='stylegan2', kimg=KIMG, tick=TICK, deterministic=True)
    c.run_dir = os.path.join(tmp_path, name)
    return c

def _start_subprocess(c, tmp_path):
    cfg_path = os.path.join(tmp_path, 'config.json')
    with open(cfg_path, 'w') as f:
        f.write(helpers.config_json(c))
    code = ('import json\nfrom training import checkpoint, launch\n'
            f'c = checkpoint._to_easydict(json.load(open({cfg_path!r})))\n'
            'launch.launch_training(c)\n')
    return helpers.run_in_subprocess(code, stdout=open(os.path.join(tmp_path, 'child.log'), 'wb'), stderr=subprocess_stderr(tmp_path))

def subprocess_stderr(tmp_path):
    return open(os.path.join(tmp_path, 'child.err'), 'wb')

def _wait_for_state(run_dir, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.isdir(run_dir) and checkpoint.find_latest_state(run_dir) is not None:
            return
        if proc.poll() is not None:
            raise AssertionError(f'child exited early with {proc.returncode}')
        time.sleep(0.005)
    proc.kill()
    raise AssertionError('no training state appeared in time')

def _final_state(run_dir):
    return checkpoint.load_training_state(checkpoint.find_latest_state(run_dir))

def _assert_states_identical(a, b):
    assert a['progress'] == b['progress']
    for key in ('G', 'D', 'G_ema'):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f'{key}.{name} differs'
    for key in ('G_opt', 'D_opt'):
        for idx, sa in a[key]['state'].items():
            for name, value in sa.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[key]['state'][idx][name])), f'{key} {idx} {name}'
    assert torch.equal(a['augment']['p'], b['augment']['p'])
    assert torch.equal(a['augment']['sums'], b['augment']['sums'])
    assert torch.equal(a['loss']['pl_mean'], b['loss']['pl_mean'])

def _resume(run_dir):
    c = launch.resume_run(run_dir, {})
    launch.launch_training(c)

#----------------------------------------------------------------------------

def test_stop_then_resume_with_longer_kimg_is_bit_identical(tmp_path):
    # Fast in-process variant: a run that ends after one step (its final state is all that survives) is
    # continued to KIMG with a --kimg override and must match a run that went there in one go.
    tmp_path = str(tmp_path)
    data = helpers.make_dataset(tmp_path)
    c = _config(tmp_path, data, 'short')
    c.total_kimg = 0.004
    launch.launch_training(c)
    assert _final_state(c.run_dir)['progress']['cur_nimg'] == 4
    _resume_to(c.run_dir, KIMG)
    reference = _config(tmp_path, data, 'reference')
    launch.launch_training(reference)
    _assert_states_identical(_final_state(c.run_dir), _final_state(reference.run_dir))

def _resume_to(run_dir, kimg):
    c = launch.resume_run(run_dir, dict(total_kimg=kimg))
    launch.launch_training(c)

def test_sigkill_then_resume_is_bit_identical_to_uninterrupted_run(tmp_path):
    tmp_path = str(tmp_path)
    data = helpers.make_dataset(tmp_path)
    killed = _config(tmp_path, data, 'killed')
    proc = _start_subprocess(killed, tmp_path)
    _wait_for_state(killed.run_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL # It really was killed, not finished.
    first = _final_state(killed.run_dir)
    assert first['progress']['cur_nimg'] < KIMG * 1000

    _resume(killed.run_dir)
    reference = _config(tmp_path, data, 'reference')
    launch.launch_training(reference)
    a, b = _final_state(killed.run_dir), _final_state(reference.run_dir)
    assert a['progress']['cur_nimg'] == KIMG * 1000
    _assert_states_identical(a, b)
    with open(os.path.join(killed.run_dir, 'log.txt')) as f:
        assert 'Continuing from' in f.read()

def _run_until_interrupt(c):
    # In-process: the progress callback at tick 0 raises SIGINT in this process, like Ctrl-C would.
    from training import training_loop
    kwargs = {k: v for k, v in c.items() if k != 'desc'}
    os.makedirs(c.run_dir)
    result = training_loop.training_loop(**kwargs, progress_fn=lambda cur, total: os.kill(os.getpid(), signal.SIGINT))
    return result

def test_sigint_in_process_writes_state_restores_handler_and_resume_matches(tmp_path):
    tmp_path = str(tmp_path)
    data = helpers.make_dataset(tmp_path)
    c = _config(tmp_path, data, 'stopped')
    handler_before = signal.getsignal(signal.SIGINT)
    result = _run_until_interrupt(c)
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert result.interrupted and result.cur_nimg == 4
    state = checkpoint.load_training_state(result.state_path)
    assert state['progress']['cur_nimg'] == 4
    _resume(c.run_dir)
    reference = _config(tmp_path, data, 'reference')
    launch.launch_training(reference)
    _assert_states_identical(_final_state(c.run_dir), _final_state(reference.run_dir))

@pytest.mark.slow
def test_sigint_writes_a_state_and_resume_matches(tmp_path):
    tmp_path = str(tmp_path)
    data = helpers.make_dataset(tmp_path)
    stopped = _config(tmp_path, data, 'stopped')
    stopped.total_kimg = 1 # Long enough that only the interrupt ends it.
    stopped.kimg_per_tick = 1
    proc = _start_subprocess(stopped, tmp_path)
    _wait_for_state(stopped.run_dir, proc) # The tick-0 state, written after step 1.
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    state = _final_state(stopped.run_dir)
    assert state['progress']['cur_nimg'] >= 4
    with open(os.path.join(stopped.run_dir, 'log.txt')) as f:
        assert 'Interrupted at kimg' in f.read()

    # Continue to the same end point as a reference run; both must agree bit for bit.
    end_kimg = (state['progress']['cur_nimg'] + 8) / 1000
    c = launch.resume_run(stopped.run_dir, dict(total_kimg=end_kimg))
    launch.launch_training(c)
    reference = _config(tmp_path, data, 'reference')
    reference.total_kimg, reference.kimg_per_tick = end_kimg, 1
    launch.launch_training(reference)
    _assert_states_identical(_final_state(stopped.run_dir), _final_state(reference.run_dir))

#----------------------------------------------------------------------------

def test_training_state_loads_with_weights_only_and_has_every_field(tmp_path):
    tmp_path = str(tmp_path)
    data = helpers.make_dataset(tmp_path)
    c = _config(tmp_path, data, 'run')
    c.total_kimg = 0.004
    launch.launch_training(c)
    path = checkpoint.find_latest_state(c.run_dir)
    state = torch.load(path, map_location='cpu', weights_only=True)
    for key in checkpoint.REQUIRED_KEYS + ('augment', 'loss'):
        assert key in state
    assert state['format_version'] == checkpoint.FORMAT_VERSION
    assert set(state['rng']['generators']) == {'latents', 'loss'}
    assert state['progress'] == dict(cur_nimg=4, cur_tick=1, batch_idx=1, tick_start_nimg=4)
    options = json.loads(state['options'])
    assert options['G_kwargs'] == json.loads(json.dumps(c.G_kwargs))
    with open(os.path.join(c.run_dir, 'training_options.json')) as f:
        assert json.load(f)['loss_kwargs'] == options['loss_kwargs']
    assert not [f for f in os.listdir(c.run_dir) if '.tmp-' in f]

def test_resume_from_directory_without_state_names_the_problem(tmp_path):
    with pytest.raises(launch.LaunchError, match='no training-state'):
        launch.resume_run(str(tmp_path), {})

def test_truncated_state_file_is_rejected_with_its_name(tmp_path):
    path = os.path.join(str(tmp_path), 'training-state-000001.pt')
    with open(path, 'wb') as f:
        f.write(b'PK\x03\x04garbage')
    with pytest.raises(ValueError, match='training-state-000001.pt'):
        checkpoint.load_training_state(path)

#----------------------------------------------------------------------------
