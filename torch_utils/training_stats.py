# Scalar statistics that aggregate across ranks.
#
# Code anywhere in the training stack calls `report('Loss/G/loss', values)`; the values are folded into
# running moments (count, sum, sum of squares) kept on the values' own device, so reporting never waits
# for a device-to-host copy. A `Collector` in the training loop calls `update()` once per tick: every
# rank sums its moments, one all-reduce adds them up across ranks, and the collector exposes the mean,
# standard deviation and count of everything reported since its previous update.
#
# The moments live in a module-level registry because reporters are scattered through the code and
# cannot be handed an object; `reset_for_tests()` empties it.

import re

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

_MOMENTS = 3                # count, sum, sum of squares
_ACC_DTYPE = torch.float64  # Running totals: wide enough for long runs.

class _Registry:
    def __init__(self):
        self.rank = 0
        self.sync_device = None # Device of the all-reduce; None for a single process.
        self.pending = dict()   # name -> {device: [_MOMENTS] tensor} not yet collected
        self.totals = dict()    # name -> [_MOMENTS] CPU tensor, everything ever collected

    def add(self, name, values):
        per_device = self.pending.setdefault(name, dict())
        if values.numel() == 0:
            return
        values = values.detach().reshape(-1).float()
        moments = torch.stack([values.new_tensor(values.numel()), values.sum(), values.square().sum()]).to(_ACC_DTYPE)
        if values.device in per_device:
            per_device[values.device] += moments
        else:
            per_device[values.device] = moments

    def drain(self, names):
        """Move the pending moments of `names` into the totals (summed over ranks); return the totals."""
        if not names:
            return dict()
        device = self.sync_device or torch.device('cpu')
        batch = torch.zeros([len(names), _MOMENTS], dtype=_ACC_DTYPE, device=device)
        for row, name in enumerate(names):
            for moments in self.pending[name].values():
                batch[row] += moments.to(device)
            self.pending[name] = dict()
        if self.sync_device is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(batch)
        batch = batch.cpu()
        for row, name in enumerate(names):
            self.totals[name] = self.totals.get(name, torch.zeros([_MOMENTS], dtype=_ACC_DTYPE)) + batch[row]
        return {name: self.totals[name] for name in names}

_registry = _Registry()

def reset_for_tests():
    global _registry
    _registry = _Registry()

def init_multiprocessing(rank, sync_device):
    """Call once per process before the first Collector.update(). sync_device=None: single process;
    with NCCL it must be this rank's CUDA device, with gloo a CPU device."""
    _registry.rank = rank
    _registry.sync_device = sync_device

#----------------------------------------------------------------------------

def report(name, value):
    """Fold every element of `value` (tensor, number or sequence) into the statistic `name`; return `value`."""
    _registry.add(name, torch.as_tensor(value))
    return value

def report0(name, value):
    """As report(), but only rank 0's values count; the other ranks still make the name known."""
    _registry.add(name, torch.as_tensor(value if _registry.rank == 0 else []))
    return value

#----------------------------------------------------------------------------

class Collector:
    """Mean / std / count of what was reported under names matching `regex` since the last update().
    With keep_previous=True a name that got no new values keeps its previous figures."""

    def __init__(self, regex='.*', keep_previous=True):
        self._pattern = re.compile(regex)
        self._keep_previous = keep_previous
        self._seen = dict()    # name -> totals at the previous update
        self._window = dict()  # name -> moments between the last two updates
        self.update()
        self._window = dict()

    def names(self):
        return [name for name in _registry.pending if self._pattern.fullmatch(name)]

    def update(self):
        """Collective call: every rank must call it, in the same order."""
        fresh = dict()
        for name, totals in _registry.drain(self.names()).items():
            delta = totals - self._seen.get(name, torch.zeros_like(totals))
            self._seen[name] = totals.clone()
            if delta[0] != 0:
                fresh[name] = delta
        self._window = {**self._window, **fresh} if self._keep_previous else fresh

    def num(self, name):
        moments = self._window.get(name)
        return 0 if moments is None else int(moments[0])

    def mean(self, name):
        n = self.num(name)
        return float('nan') if n == 0 else float(self._window[name][1]) / n

    def std(self, name):
        n = self.num(name)
        if n == 0 or not np.isfinite(float(self._window[name][1])):
            return float('nan')
        if n == 1:
            return 0.0
        mean = float(self._window[name][1]) / n
        return float(np.sqrt(max(float(self._window[name][2]) / n - mean * mean, 0.0)))

    def as_dict(self):
        return dnnlib.EasyDict({name: dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
                                for name in self.names() if self.num(name)})

    def __getitem__(self, name):
        return self.mean(name)

#----------------------------------------------------------------------------
