# Small PyTorch helpers: cached constant tensors, shape contracts, an endless data sampler, copying
# weights between networks by name, DDP helpers and a per-module summary table.

import contextlib
import functools
import itertools
import re
import warnings

import numpy as np
import torch

#----------------------------------------------------------------------------
# Constant tensors built from Python/NumPy values, memoised so hot paths (filters, masks, gains) do not
# re-upload the same data every call. The key includes the bytes of the value, so equal values share.

_constants = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    array = np.array(value)                                    # Our own copy; safe to wrap with from_numpy.
    dtype = torch.get_default_dtype() if dtype is None else dtype
    device = torch.device('cpu') if device is None else torch.device(device)
    memory_format = torch.contiguous_format if memory_format is None else memory_format
    target_shape = None if shape is None else tuple(shape)
    key = (array.dtype.str, array.shape, array.tobytes(), target_shape, dtype, device, memory_format)
    if key not in _constants:
        t = torch.from_numpy(array).to(device=device, dtype=dtype)
        if target_shape is not None:
            t = t.expand(target_shape)
        _constants[key] = t.contiguous(memory_format=memory_format)
    return _constants[key]

def reset_for_tests():
    _constants.clear()

#----------------------------------------------------------------------------
# Shape contracts at module boundaries. Entries of `ref_shape`: an int (must match), None (anything),
# or a 0-d tensor (a size that is only known while tracing).

class ShapeError(AssertionError, ValueError):
    """A tensor broke a module's shape contract. Catchable as AssertionError or ValueError."""

def assert_shape(tensor, ref_shape, name='tensor'):
    got = list(tensor.shape)
    if len(got) != len(ref_shape):
        raise ShapeError(f'Wrong number of dimensions for {name}: got {len(got)} ({got}), expected {len(ref_shape)} ({list(ref_shape)})')
    for dim, want in enumerate(ref_shape):
        have = got[dim]
        if want is None:
            continue
        if isinstance(want, torch.Tensor) or isinstance(have, torch.Tensor):
            # Traced sizes: compare as tensors so the check is recorded in the trace.
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(have), torch.as_tensor(want)), f'Wrong size for dimension {dim} of {name}')
            continue
        if have != want:
            raise ShapeError(f'Wrong size for dimension {dim} of {name}: got {have} ({got}), expected {want} ({list(ref_shape)})')

@contextlib.contextmanager
def suppress_tracer_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        yield

#----------------------------------------------------------------------------

def profiled_function(fn):
    """Decorator: the call shows up under the function's name in torch.profiler traces."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    return wrapper

#----------------------------------------------------------------------------
# An endless sampler for the training loop. All ranks walk one global stream of indices, made of one
# seeded permutation per epoch laid end to end; rank r takes stream positions r, r + R, r + 2R, ...
# So the union of what R ranks take in one step is what a single process would take with R times the
# batch (this makes multi-process runs comparable with single-process ones), and a run can resume at
# any position of its stream.

class InfiniteSampler(torch.utils.data.Sampler):
    def __init__(self,
        dataset,                # Anything with __len__.
        rank            = 0,    # Index of this process.
        num_replicas    = 1,    # Number of processes sharing the stream.
        shuffle         = True, # Permute each epoch? Otherwise 0, 1, 2, ... repeated.
        seed            = 0,    # Seed of the permutations.
        start_index     = 0,    # How many items of this rank's stream to skip (resume).
    ):
        if len(dataset) == 0:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if not (num_replicas >= 1 and 0 <= rank < num_replicas):
            raise ValueError(f'InfiniteSampler: rank {rank} is outside 0..{num_replicas - 1}')
        if start_index < 0:
            raise ValueError(f'InfiniteSampler: start_index must be >= 0, got {start_index}')
        super().__init__()
        self.num_items = len(dataset)
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.start_index = start_index

    def _epoch_order(self, epoch):
        if not self.shuffle:
            return np.arange(self.num_items)
        return np.random.RandomState([self.seed, epoch]).permutation(self.num_items)

    def _stream(self):
        for epoch in itertools.count():
            yield from self._epoch_order(epoch)

    def __iter__(self):
        # Position p of the global stream belongs to rank p % num_replicas.
        first = self.rank + self.start_index * self.num_replicas
        return itertools.islice(self._stream(), first, None, self.num_replicas)

#----------------------------------------------------------------------------
# Parameters and buffers by name: the currency of checkpoints and network upgrades.

def params_and_buffers(module):
    return [*module.parameters(), *module.buffers()]

def named_params_and_buffers(module):
    return [*module.named_parameters(), *module.named_buffers()]

@torch.no_grad()
def copy_params_and_buffers(src_module, dst_module, require_all=False):
    """Copy every tensor of dst that src has under the same name. A name missing in src is an error only
    with require_all=True; a shape mismatch is always an error (it names the tensor)."""
    available = dict(named_params_and_buffers(src_module))
    missing = [name for name, _ in named_params_and_buffers(dst_module) if name not in available]
    if require_all and missing:
        raise KeyError(f'copy_params_and_buffers: {missing[0]!r} missing in the source module ({len(missing)} missing in all)')
    for name, dst in named_params_and_buffers(dst_module):
        src = available.get(name)
        if src is None:
            continue
        if src.shape != dst.shape:
            raise ValueError(f'copy_params_and_buffers: {name!r} has shape {list(src.shape)} in the source but {list(dst.shape)} in the destination')
        dst.copy_(src.detach())

#----------------------------------------------------------------------------
# DistributedDataParallel helpers.

@contextlib.contextmanager
def ddp_sync(module, sync):
    """With sync=False, skip DDP's gradient all-reduce (gradient accumulation over rounds)."""
    skip = isinstance(module, torch.nn.parallel.DistributedDataParallel) and not sync
    with (module.no_sync() if skip else contextlib.nullcontext()):
        yield

def check_ddp_consistency(module, ignore_regex=None):
    """Raise if a parameter or buffer differs between rank 0 and this rank (NaNs count as equal)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    prefix = type(module).__name__
    for name, value in named_params_and_buffers(module):
        if ignore_regex is not None and re.fullmatch(ignore_regex, f'{prefix}.{name}'):
            continue
        mine = torch.nan_to_num(value.detach()) if value.is_floating_point() else value.detach()
        reference = mine.clone()
        torch.distributed.broadcast(reference, src=0)
        if not torch.equal(mine, reference):
            raise RuntimeError(f'{prefix}.{name} differs between ranks')

#----------------------------------------------------------------------------
# Module summary: one row per submodule that ran, with the parameters and buffers it owns (counted once,
# at the innermost module) and the shapes it produced.

def _tensors_of(obj):
    items = obj if isinstance(obj, (tuple, list)) else [obj]
    return [t for t in items if isinstance(t, torch.Tensor)]

def _record_calls(module, inputs, max_nesting):
    calls = []
    depth = [0]
    def enter(_mod, _args):
        depth[0] += 1
    def leave(mod, _args, out):
        depth[0] -= 1
        if depth[0] <= max_nesting:
            calls.append((mod, _tensors_of(out)))
    handles = [m.register_forward_pre_hook(enter) for m in module.modules()]
    handles += [m.register_forward_hook(leave) for m in module.modules()]
    try:
        result = module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return result, calls

def _summary_rows(module, calls, skip_redundant):
    names = {m: n for n, m in module.named_modules()}
    counted = set()
    rows = []
    for mod, outs in calls:
        params = [t for t in mod.parameters() if id(t) not in counted]
        buffers = [t for t in mod.buffers() if id(t) not in counted]
        new_outs = [t for t in outs if id(t) not in counted]
        counted.update(id(t) for t in params + buffers + new_outs)
        if skip_redundant and not (params or buffers or new_outs):
            continue
        label = '<top-level>' if mod is module else names[mod]
        n_params = sum(t.numel() for t in params)
        n_buffers = sum(t.numel() for t in buffers)
        described = [(str(list(t.shape)), str(t.dtype).replace('torch.', '')) for t in outs] or [('-', '-')]
        for k, (shape, dtype) in enumerate(described):
            suffix = f':{k}' if len(described) > 1 else ''
            rows.append([label + suffix, str(n_params or '-') if k == 0 else '-', str(n_buffers or '-') if k == 0 else '-', shape, dtype])
            yield_counts = (n_params, n_buffers) if k == 0 else (0, 0)
            rows[-1].append(yield_counts)
    return rows

def print_module_summary(module, inputs, max_nesting=3, skip_redundant=True, file=None):
    """Run module(*inputs) once and print a table of submodules; returns the module's output."""
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        raise TypeError('print_module_summary: expected a (non-scripted) torch.nn.Module')
    if not isinstance(inputs, (tuple, list)):
        raise TypeError('print_module_summary: inputs must be a tuple or list')
    result, calls = _record_calls(module, inputs, max_nesting)
    rows = _summary_rows(module, calls, skip_redundant)
    total_params = sum(r[-1][0] for r in rows)
    total_buffers = sum(r[-1][1] for r in rows)
    table = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype'], ['---'] * 5]
    table += [r[:-1] for r in rows]
    table += [['---'] * 5, ['Total', str(total_params), str(total_buffers), '', '']]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    print(file=file)
    for row in table:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)), file=file)
    print(file=file)
    return result

#----------------------------------------------------------------------------
