# Scalar statistics that aggregate across ranks.
#
# Anywhere in the code, `report('Loss/G/loss', tensor)` records the tensor's elements. A `Collector` in
# the training loop later calls `update()`, which sums the moments (count, sum, sum of squares) over all
# ranks with one all-reduce and exposes mean/std per name. Accumulators are kept per device so reporting
# never forces a device-to-host copy. The accumulators are module state by necessity (the reporters are
# scattered through the code); `reset_for_tests()` clears them.

import re

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

_num_moments = 3               # [count, sum, sum of squares]
_reduce_dtype = torch.float32  # Per-report reduction dtype.
_counter_dtype = torch.float64 # Accumulator dtype.

class _State:
    def __init__(self):
        self.rank = 0
        self.sync_device = None   # Device for the all-reduce (None: no multiprocessing).
        self.counters = dict()    # name -> {device: tensor[_num_moments]}
        self.cumulative = dict()  # name -> tensor[_num_moments] (what collectors diff against)

_state = _State()

def reset_for_tests():
    global _state
    _state = _State()

def init_multiprocessing(rank, sync_device):
    """Call once per process before the first Collector.update(); sync_device=None means single process.
    With NCCL, sync_device must be this rank's CUDA device; with gloo, a CPU device."""
    _state.rank = rank
    _state.sync_device = sync_device

#----------------------------------------------------------------------------

def report(name, value):
    """Record every element of `value` (tensor, number or sequence) under `name`. Returns `value`."""
    if name not in _state.counters:
        _state.counters[name] = dict()
    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value
    elems = elems.detach().flatten().to(_reduce_dtype)
    moments = torch.stack([
        torch.ones_like(elems).sum(),
        elems.sum(),
        elems.square().sum(),
    ])
    device = moments.device
    if device not in _state.counters[name]:
        _state.counters[name][device] = torch.zeros_like(moments, dtype=_counter_dtype)
    _state.counters[name][device].add_(moments.to(_counter_dtype))
    return value

def report0(name, value):
    """Like report(), but only rank 0 contributes; other ranks still register the name."""
    report(name, value if _state.rank == 0 else [])
    return value

#----------------------------------------------------------------------------

class Collector:
    """Collects what was reported since the previous update(), for names matching `regex`."""

    def __init__(self, regex='.*', keep_previous=True):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._cumulative = dict()
        self._moments = dict()
        self.update()
        self._moments.clear()

    def names(self):
        return [name for name in _state.counters if self._regex.fullmatch(name)]

    def update(self):
        """Sum moments over ranks (collective: every rank must call it) and store the deltas."""
        if not self._keep_previous:
            self._moments.clear()
        for name, cumulative in _sync(self.names()):
            if name not in self._cumulative:
                self._cumulative[name] = torch.zeros_like(cumulative)
            delta = cumulative - self._cumulative[name]
            self._cumulative[name].copy_(cumulative)
            if float(delta[0]) != 0:
                self._moments[name] = delta

    def num(self, name):
        m = self._moments.get(name)
        return 0 if m is None else int(m[0])

    def mean(self, name):
        m = self._moments.get(name)
        if m is None or float(m[0]) == 0:
            return float('nan')
        return float(m[1] / m[0])

    def std(self, name):
        m = self._moments.get(name)
        if m is None or float(m[0]) == 0 or not np.isfinite(float(m[1])):
            return float('nan')
        if int(m[0]) == 1:
            return 0.0
        mean = float(m[1] / m[0])
        raw_var = float(m[2] / m[0])
        return float(np.sqrt(max(raw_var - mean ** 2, 0)))

    def as_dict(self):
        stats = dnnlib.EasyDict()
        for name in self.names():
            if self.num(name):
                stats[name] = dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
        return stats

    def __getitem__(self, name):
        return self.mean(name)

#----------------------------------------------------------------------------

def _sync(names):
    """Fold per-device accumulators into the cumulative totals and all-reduce across ranks."""
    if len(names) == 0:
        return []
    deltas = []
    device = _state.sync_device if _state.sync_device is not None else torch.device('cpu')
    for name in names:
        delta = torch.zeros([_num_moments], dtype=_counter_dtype, device=device)
        for counter in _state.counters[name].values():
            delta.add_(counter.to(device))
            counter.zero_()
        deltas.append(delta)
    deltas = torch.stack(deltas)
    if _state.sync_device is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(deltas)
    deltas = deltas.cpu()
    result = []
    for idx, name in enumerate(names):
        if name not in _state.cumulative:
            _state.cumulative[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
        _state.cumulative[name].add_(deltas[idx])
        result.append((name, _state.cumulative[name]))
    return result

#----------------------------------------------------------------------------
