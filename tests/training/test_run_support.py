# training/run_support.py: the logger writes NVIDIA's stats.jsonl lines and log.txt, the interrupt guard
# turns SIGINT into a flag and restores the handler, and backend flags are restored after the block.

import json
import os
import signal

import torch

from training import run_support

#----------------------------------------------------------------------------

def test_run_logger_writes_log_and_stats_lines_only_when_enabled(tmp_path, capsys):
    with run_support.RunLogger(str(tmp_path), tensorboard=False) as logger:
        logger.echo('tick 0')
        logger.log({'Loss/G': dict(num=2, mean=0.5, std=0.1), 'lr': 0.002}, step=1, timestamp=12.5)
    assert capsys.readouterr().out == 'tick 0\n'
    assert (tmp_path / 'log.txt').read_text() == 'tick 0\n'
    lines = (tmp_path / 'stats.jsonl').read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{'Loss/G': dict(num=2, mean=0.5, std=0.1), 'lr': 0.002, 'timestamp': 12.5}]
    with run_support.RunLogger(str(tmp_path), tensorboard=False) as logger:  # Another file, extra fields first.
        logger.log({'val/ssim': 0.5}, step=7, timestamp=1.0, file='validation.jsonl', fields=dict(step=7))
    assert (tmp_path / 'validation.jsonl').read_text() == '{"step": 7, "val/ssim": 0.5, "timestamp": 1.0}\n'
    other = tmp_path / 'rank1'
    other.mkdir()
    quiet = run_support.RunLogger(str(other), enabled=False)
    quiet.echo('x')
    quiet.log({'a': 1})
    assert os.listdir(other) == []

def test_interrupt_guard_sets_the_flag_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with run_support.interrupt_guard() as interrupt:
        assert not interrupt.agreed('cpu')
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.raised and interrupt.agreed('cpu')
    assert signal.getsignal(signal.SIGINT) is before
    with run_support.interrupt_guard() as interrupt:
        assert interrupt.agreed('cpu', stop_fn=lambda: True) and not interrupt.raised

def test_backend_flags_are_restored_after_the_block_even_on_error():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        with run_support.backend_flags('cpu', deterministic=True):
            assert torch.are_deterministic_algorithms_enabled()
            raise KeyError('inside')
    except KeyError:
        pass
    assert torch.are_deterministic_algorithms_enabled() == before
