# Official-layout network pickles built with our own code (no upstream source in the repository): every
# network pickles as NVIDIA's persistence does, i.e. `torch_utils.persistence._reconstruct_persistent_obj(meta)`
# with meta = dict(type='class', version=6, module_src, class_name, state) and the module's __dict__-style
# state (_init_args, _init_kwargs, nested _parameters / _buffers / _modules, plain attributes), tensors
# pickled the standard torch way. `module_src` is arbitrary text; `evil_src(marker)` leaves a marker file
# if anything ever executes it.

import collections
import pickle

import numpy as np
import torch

import dnnlib
from torch_utils import persistence

#----------------------------------------------------------------------------

NVIDIA_FBANK_TAPS = 43 # Length of NVIDIA's AugmentPipe Hz_fbank rows (ours are shorter: our own design).

class Reduce:
    """Pickles as func(meta): stands in for an object whose __reduce__ names `func`."""

    def __init__(self, func, meta):
        self.func, self.meta = func, meta

    def __reduce__(self):
        return (self.func, (self.meta,))

def evil_src(marker):
    """Module source that writes `marker` (and raises) if it is ever executed."""
    return f'import pathlib\npathlib.Path({str(marker)!r}).write_text("module_src executed")\nraise RuntimeError("executed")\n'

def official_like(module, module_src, init_kwargs=None, buffers=None):
    """`module` (and its submodules) in NVIDIA's persistent-object layout.

    Args:
        init_kwargs: constructor arguments to record instead of module.init_kwargs (top level only).
        buffers:     {name: tensor} replacing top-level buffers in the record (e.g. a filter bank of
                     another size).
    """
    params = collections.OrderedDict(module._parameters) # pylint: disable=protected-access
    bufs = collections.OrderedDict(module._buffers) # pylint: disable=protected-access
    bufs.update(buffers or {})
    kwargs = module.init_kwargs if init_kwargs is None else init_kwargs
    state = dict(
        _init_args=tuple(module.init_args), _init_kwargs=dnnlib.EasyDict(kwargs),
        _parameters=params, _buffers=bufs,
        _modules=collections.OrderedDict((k, official_like(v, module_src)) for k, v in module._modules.items()), # pylint: disable=protected-access
        _non_persistent_buffers_set=set(), _forward_hooks=collections.OrderedDict(), _backward_hooks=collections.OrderedDict(),
        training=module.training)
    for attr in ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'num_ws'):
        if hasattr(module, attr):
            state[attr] = getattr(module, attr)
    meta = dict(type='class', version=6, module_src=module_src, class_name=type(module).__name__, state=state)
    return Reduce(persistence._reconstruct_persistent_obj, meta) # pylint: disable=protected-access

def official_augment_pipe(pipe, module_src):
    """Our AugmentPipe recorded as NVIDIA's: same constructor arguments and buffer names, but a filter bank
    with NVIDIA's row length (values irrelevant: loaders must not depend on them)."""
    bands = pipe.Hz_fbank.shape[0]
    fbank = torch.from_numpy(np.random.RandomState(0).randn(bands, NVIDIA_FBANK_TAPS).astype(np.float32))
    assert fbank.shape != pipe.Hz_fbank.shape
    return official_like(pipe, module_src, buffers=dict(Hz_fbank=fbank))

def official_snapshot_bytes(module_src, G=None, D=None, G_ema=None, augment_pipe=None, training_set_kwargs=None):
    """A whole network-snapshot pickle (protocol 4) in NVIDIA's layout."""
    data = dict(
        G               = None if G is None else official_like(G, module_src),
        D               = None if D is None else official_like(D, module_src),
        G_ema           = None if G_ema is None else official_like(G_ema, module_src),
        augment_pipe    = None if augment_pipe is None else official_augment_pipe(augment_pipe, module_src),
        training_set_kwargs = None if training_set_kwargs is None else dict(training_set_kwargs),
    )
    return pickle.dumps(data, protocol=4)

#----------------------------------------------------------------------------
