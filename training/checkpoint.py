# Training-state files: everything needed to continue a run exactly where it stopped.
#
# `training-state-<kimg:06d>.pt` holds only tensors, numbers, strings, lists and dicts, so it loads with
# torch.load(weights_only=True) and never executes code. Written through a temp file and an atomic rename:
# a crash at any moment leaves the previous state (or none), never a truncated file.

import json
import os
import random
import re
import shutil

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

FORMAT_VERSION = 1
STATE_RE = re.compile(r'^training-state-(\d{6,})\.pt$')
REQUIRED_KEYS = ('format_version', 'options', 'G', 'D', 'G_ema', 'G_opt', 'D_opt', 'progress', 'rng')

def state_filename(cur_nimg):
    return f'training-state-{cur_nimg // 1000:06d}.pt'

def snapshot_filename(cur_nimg):
    return f'network-snapshot-{cur_nimg // 1000:06d}.pkl'

#----------------------------------------------------------------------------
# RNG states as plain tensors and lists (no numpy objects, which weights_only loading refuses).

def capture_rng_state(generators):
    """torch, numpy and python global RNG states plus each named torch.Generator's state."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return dict(
        torch=torch.get_rng_state(),
        numpy=dict(key=torch.from_numpy(np_state[1].astype(np.int64)), pos=int(np_state[2]),
                   has_gauss=int(np_state[3]), cached_gaussian=float(np_state[4])),
        python=dict(version=py_state[0], state=list(py_state[1]), gauss_next=py_state[2]),
        generators={name: gen.get_state() for name, gen in generators.items()},
    )

def restore_rng_state(rng, generators):
    torch.set_rng_state(rng['torch'])
    n = rng['numpy']
    np.random.set_state(('MT19937', n['key'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['cached_gaussian']))
    p = rng['python']
    random.setstate((p['version'], tuple(p['state']), p['gauss_next']))
    missing = set(generators) - set(rng['generators'])
    if missing:
        raise ValueError(f'training state lacks generator states for {sorted(missing)}')
    for name, gen in generators.items():
        gen.set_state(rng['generators'][name])

#----------------------------------------------------------------------------

def save_training_state(path, state):
    """Write a state dict atomically (see module comment). `state` must hold REQUIRED_KEYS."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f'save_training_state: missing keys {missing}')
    dnnlib.atomic_write(path, lambda f: torch.save(state, f))

def load_training_state(path):
    """Load a training-state file with weights_only=True and check its format."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f'training state {path!r} does not exist') from None
    except Exception as e:
        raise ValueError(f'{path}: not a readable training-state file ({type(e).__name__}: {e})') from None
    if not isinstance(state, dict) or 'format_version' not in state:
        raise ValueError(f'{path}: not a training-state file (no format_version)')
    if state['format_version'] != FORMAT_VERSION:
        raise ValueError(f'{path}: training-state format {state["format_version"]} is not supported (expected {FORMAT_VERSION})')
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f'{path}: training state lacks {missing}')
    return state

def state_options(state):
    """The resolved training options stored in a state (an EasyDict tree)."""
    return _to_easydict(json.loads(state['options']))

def _to_easydict(obj):
    if isinstance(obj, dict):
        return dnnlib.EasyDict({k: _to_easydict(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_to_easydict(v) for v in obj]
    return obj

#----------------------------------------------------------------------------

def find_latest_state(run_dir):
    """Path of the training state with the largest kimg in run_dir (ties: newest file), or None."""
    best = None
    for name in os.listdir(run_dir):
        m = STATE_RE.match(name)
        if m:
            path = os.path.join(run_dir, name)
            key = (int(m.group(1)), os.path.getmtime(path))
            if best is None or key > best[0]:
                best = (key, path)
    return None if best is None else best[1]

def check_run_dir(run_dir, required_bytes):
    """Fail early when run_dir is not writable or has less than `required_bytes` free."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, '.write-test')
        with open(probe, 'wb') as f:
            f.write(b'0')
        os.remove(probe)
    except OSError as e:
        raise OSError(f'run directory {run_dir!r} is not writable: {e.strerror or e}') from None
    free = shutil.disk_usage(run_dir).free
    if free < required_bytes:
        raise OSError(f'run directory {run_dir!r} has {free / 2**20:.1f} MiB free; one network snapshot plus one '
                      f'training state needs about {required_bytes / 2**20:.1f} MiB')

def estimate_snapshot_bytes(modules, optimizers_per_param=2):
    """Rough size of one pickle (all modules) plus one state (modules + Adam moments of G and D)."""
    tensor_bytes = [sum(t.numel() * t.element_size() for t in list(m.parameters()) + list(m.buffers())) for m in modules]
    return int(2 * sum(tensor_bytes) + optimizers_per_param * sum(tensor_bytes[:2]) + (1 << 20))

#----------------------------------------------------------------------------
