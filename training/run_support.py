# What every trainer of this project needs around its loop, in one place: the run logger (log.txt,
# stats.jsonl, TensorBoard), interrupt handling (Ctrl-C / SIGTERM -> the loop writes a state and ends)
# and the PyTorch backend flags, set for a block and restored afterwards (no process-global toggles
# left behind). The GAN loop uses it; the encoder and classifier trainers reuse it.
#
#     with RunLogger(run_dir) as logger, interrupt_guard() as interrupt, backend_flags(device, deterministic=True):
#         for step in ...:
#             if interrupt.agreed(device):
#                 save_state(); break
#             ...
#             logger.echo(f'step {step} loss {loss:.4f}')           # stdout + log.txt
#             logger.log({'Loss/total': loss}, step=cur_nimg // 1000)       # stats.jsonl + TensorBoard
#
# The stats.jsonl format is NVIDIA's: one JSON object per line, {name: {num, mean, std}, ..., timestamp};
# training/run_dir.py reads it back. Only the process with enabled=True (rank 0) writes anything.

import contextlib
import json
import os
import signal
import threading
import time

import torch

from torch_utils import distributed

#----------------------------------------------------------------------------
# Logging: stdout + log.txt, stats.jsonl, TensorBoard (when torch.utils.tensorboard imports).

class RunLogger:
    def __init__(self, run_dir, enabled=True, tensorboard=True, purge_step=None):
        self.run_dir = run_dir      # Folder of log.txt, stats.jsonl and tfevents files.
        self.enabled = enabled      # False: every call is a no-op (ranks other than 0).
        self.tb = None
        if self.enabled and tensorboard:
            try: # TensorBoard is optional: its writer needs the tensorboard package.
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(run_dir, purge_step=purge_step) # purge_step: a resumed run drops later events.
            except ImportError as e:
                self.echo(f'Skipping tfevents export: {e}')

    def echo(self, msg):
        """Print one line and append it to log.txt."""
        if not self.enabled:
            return
        print(msg, flush=True)
        with open(os.path.join(self.run_dir, 'log.txt'), 'a') as f:
            f.write(msg + '\n')

    def log(self, values, step=0, timestamp=None, file='stats.jsonl', fields=None):
        """Append one JSON line to run_dir/`file` and the TensorBoard scalars at `step`.

        values: {name: number or {num, mean, std}} (training_stats.Collector.as_dict() gives the latter).
        step:   TensorBoard step: kimg for the GAN loop, optimiser steps for the encoder trainer.
        fields: extra non-scalar entries written first in the line (e.g. {'step': 120}); not sent to TensorBoard.
        """
        if not self.enabled:
            return
        entry = dict(fields or {}, **values, timestamp=time.time() if timestamp is None else timestamp)
        with open(os.path.join(self.run_dir, file), 'a') as f:
            f.write(json.dumps(entry) + '\n')
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(name, value['mean'] if isinstance(value, dict) else value, global_step=int(step))
            self.tb.flush()

    def close(self):
        if self.tb is not None:
            self.tb.close()
            self.tb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

#----------------------------------------------------------------------------
# Interrupts: SIGINT / SIGTERM set a flag; the loop writes a state at its next step boundary.

class InterruptFlag:
    def __init__(self):
        self.raised = False
        self._previous = dict()

    def __enter__(self):
        # Signal handlers can only be installed from the main thread; elsewhere the flag stays unset.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, _frame):
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False

    def agreed(self, device, stop_fn=None):
        """True when any rank was interrupted or its stop_fn() asks to stop (collective when distributed)."""
        stop = self.raised or (stop_fn is not None and bool(stop_fn()))
        if distributed.get_world_size() <= 1:
            return stop
        flag = torch.tensor([1.0 if stop else 0.0], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item() > 0)

def interrupt_guard():
    """Context manager: SIGINT / SIGTERM set .raised instead of killing the process; handlers restored on exit."""
    return InterruptFlag()

#----------------------------------------------------------------------------
# Backend flags, restored on exit.

@contextlib.contextmanager
def backend_flags(device='cpu', cudnn_benchmark=True, deterministic=False, allow_tf32=False):
    """Set cuDNN autotuning, TF32 and deterministic algorithms for a block; the previous values come back.

    Args:
        device:          the training device; the cuDNN and TF32 flags are only touched for CUDA.
        cudnn_benchmark: autotune convolution algorithms (never together with deterministic).
        deterministic:   torch.use_deterministic_algorithms(True, warn_only=True) inside the block.
        allow_tf32:      TF32 matmuls and convolutions (False: full fp32, as the published results).
    """
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        if torch.device(device).type == 'cuda':
            torch.backends.cudnn.benchmark = bool(cudnn_benchmark) and not deterministic
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(allow_tf32)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:3]
        torch.use_deterministic_algorithms(saved[3], warn_only=saved[4])

#----------------------------------------------------------------------------
