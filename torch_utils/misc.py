# Small PyTorch helpers: cached constants, shape contracts, parameter copying, samplers, summaries.

import contextlib
import re
import warnings

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------
# Cached constant tensors. Keyed by value, shape, dtype and device, so repeated calls are free.

_constant_cache = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    value = np.asarray(value)
    if shape is not None:
        shape = tuple(shape)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if device is None:
        device = torch.device('cpu')
    if memory_format is None:
        memory_format = torch.contiguous_format

    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor, _ = torch.broadcast_tensors(tensor, torch.empty(shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor

def reset_for_tests():
    _constant_cache.clear()

#----------------------------------------------------------------------------
# Shape contracts. `ref_shape` entries: int (exact), None (any), or a tensor (traced size).

class ShapeError(AssertionError, ValueError):
    """A tensor's shape breaks a module's contract. Both an AssertionError and a ValueError."""

def assert_shape(tensor, ref_shape, name='tensor'):
    if tensor.ndim != len(ref_shape):
        raise ShapeError(f'Wrong number of dimensions for {name}: got {tensor.ndim} ({list(tensor.shape)}), expected {len(ref_shape)} ({list(ref_shape)})')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(size), ref_size), f'Wrong size for dimension {idx} of {name}')
        elif isinstance(size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(size, torch.as_tensor(ref_size)), f'Wrong size for dimension {idx} of {name}: expected {ref_size}')
        elif size != ref_size:
            raise ShapeError(f'Wrong size for dimension {idx} of {name}: got {size} ({list(tensor.shape)}), expected {ref_size} ({list(ref_shape)})')

@contextlib.contextmanager
def suppress_tracer_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        yield

#----------------------------------------------------------------------------
# Profiling scope: the function's name appears in torch.profiler traces.

def profiled_function(fn):
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    decorator.__name__ = fn.__name__
    decorator.__doc__ = fn.__doc__
    return decorator

#----------------------------------------------------------------------------
# Endless, seeded, locally shuffled sampler for the training loop. Each rank takes every num_replicas-th
# item of one shared permutation, so ranks see disjoint data.

class InfiniteSampler(torch.utils.data.Sampler):
    def __init__(self,
        dataset,            # Anything with __len__.
        rank        = 0,    # This process's index.
        num_replicas= 1,    # Number of processes.
        shuffle     = True, # Shuffle the order?
        seed        = 0,    # Seed of the shuffle.
        window_size = 0.5,  # Fraction of the dataset within which items are locally swapped.
        start_index = 0,    # Position to resume from (counted in items of this rank's stream).
    ):
        if len(dataset) == 0:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if not (num_replicas > 0 and 0 <= rank < num_replicas):
            raise ValueError(f'InfiniteSampler: rank {rank} outside 0..{num_replicas - 1}')
        if not 0 <= window_size <= 1:
            raise ValueError(f'InfiniteSampler: window_size {window_size} outside [0, 1]')
        super().__init__()
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size
        self.start_index = start_index

    def __iter__(self):
        order = np.arange(len(self.dataset))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))

        idx = 0
        emitted = 0
        while True:
            i = idx % order.size
            if idx % self.num_replicas == self.rank:
                if emitted >= self.start_index:
                    yield order[i]
                emitted += 1
            if window >= 2:
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            idx += 1

#----------------------------------------------------------------------------
# Parameters and buffers.

def params_and_buffers(module):
    return list(module.parameters()) + list(module.buffers())

def named_params_and_buffers(module):
    return list(module.named_parameters()) + list(module.named_buffers())

@torch.no_grad()
def copy_params_and_buffers(src_module, dst_module, require_all=False):
    """Copy tensors by name from src to dst. Missing names raise only when require_all=True;
    shape mismatches always raise, naming the tensor."""
    src_tensors = dict(named_params_and_buffers(src_module))
    for name, tensor in named_params_and_buffers(dst_module):
        if name not in src_tensors:
            if require_all:
                raise KeyError(f'copy_params_and_buffers: {name!r} missing in the source module')
            continue
        src = src_tensors[name]
        if src.shape != tensor.shape:
            raise ValueError(f'copy_params_and_buffers: {name!r} has shape {list(src.shape)} in the source but {list(tensor.shape)} in the destination')
        tensor.copy_(src.detach()).requires_grad_(tensor.requires_grad)

@contextlib.contextmanager
def ddp_sync(module, sync):
    """Skip DDP's gradient all-reduce (no_sync) during gradient accumulation when sync=False."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel) and not sync:
        with module.no_sync():
            yield
    else:
        yield

def check_ddp_consistency(module, ignore_regex=None):
    """Raise if any parameter or buffer differs across ranks (NaNs compare equal)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = torch.nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (tensor == other).all():
            raise RuntimeError(f'{fullname} differs between ranks')

#----------------------------------------------------------------------------
# Module summary: a table of submodules with parameter and buffer counts and output shapes.

def print_module_summary(module, inputs, max_nesting=3, skip_redundant=True, file=None):
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        raise TypeError('print_module_summary: expected a (non-scripted) torch.nn.Module')
    if not isinstance(inputs, (tuple, list)):
        raise TypeError('print_module_summary: inputs must be a tuple or list')

    entries = []
    nesting = [0]
    def pre_hook(_mod, _inputs):
        nesting[0] += 1
    def post_hook(mod, _inputs, outputs):
        nesting[0] -= 1
        if nesting[0] <= max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            outputs = [t for t in outputs if isinstance(t, torch.Tensor)]
            entries.append(dnnlib.EasyDict(mod=mod, outputs=outputs))
    hooks = [mod.register_forward_pre_hook(pre_hook) for mod in module.modules()]
    hooks += [mod.register_forward_hook(post_hook) for mod in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()

    # Count each tensor once, at the innermost module that ran.
    seen = set()
    for e in entries:
        e.unique_params = [t for t in e.mod.parameters() if id(t) not in seen]
        e.unique_buffers = [t for t in e.mod.buffers() if id(t) not in seen]
        e.unique_outputs = [t for t in e.outputs if id(t) not in seen]
        seen |= {id(t) for t in e.unique_params + e.unique_buffers + e.unique_outputs}
    if skip_redundant:
        entries = [e for e in entries if len(e.unique_params) or len(e.unique_buffers) or len(e.unique_outputs)]

    names = {mod: name for name, mod in module.named_modules()}
    rows = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype'], ['---'] * 5]
    total_params = total_buffers = 0
    for e in entries:
        name = '<top-level>' if e.mod is module else names[e.mod]
        n_params = sum(t.numel() for t in e.unique_params)
        n_buffers = sum(t.numel() for t in e.unique_buffers)
        shapes = [str(list(t.shape)) for t in e.outputs] or ['-']
        dtypes = [str(t.dtype).split('.')[-1] for t in e.outputs] or ['-']
        rows.append([name + (':0' if len(e.outputs) >= 2 else ''), str(n_params or '-'), str(n_buffers or '-'), shapes[0], dtypes[0]])
        for idx in range(1, len(e.outputs)):
            rows.append([name + f':{idx}', '-', '-', shapes[idx], dtypes[idx]])
        total_params += n_params
        total_buffers += n_buffers
    rows += [['---'] * 5, ['Total', str(total_params), str(total_buffers), '', '']]

    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    print(file=file)
    for row in rows:
        print('  '.join(cell + ' ' * (width - len(cell)) for cell, width in zip(row, widths)), file=file)
    print(file=file)
    return outputs

#----------------------------------------------------------------------------
