# Network pickles without code.
#
# Our format: a pickled dict (G, D, G_ema, augment_pipe, training_set_kwargs, ...) in which every network
# reduces to `_reconstruct_network(meta)`; meta holds the class name inside our tree, the constructor
# arguments as plain data, a format version and the state-dict tensors as raw bytes. No source text is
# stored, and loading goes through an Unpickler that resolves only an allow-list of globals.
#
# Official NVIDIA pickles (StyleGAN2-ADA, StyleGAN3) reduce every network to
# `torch_utils.persistence._reconstruct_persistent_obj(meta)` with the defining module's source inside
# meta. Our function of that name never looks at the source: it returns a plain record of the class
# name, constructor arguments and tensors, and `load_network_pkl` turns records into our own classes.
#
# Making a class persistent (networks, the augment pipe, anything saved in a snapshot):
#
#     from torch_utils import persistence
#
#     @persistence.persistent_class
#     class AugmentPipe(torch.nn.Module):
#         def __init__(self, xflip=0, ...): ...
#
# The decorator records the constructor arguments (`obj.init_args`, `obj.init_kwargs`), so the loader can
# rebuild the object and then load its state dict. Constructor arguments must be plain data (numbers,
# strings, lists, tuples, dicts, EasyDict); everything else an object needs must live in its parameters
# and buffers.

import collections
import copy
import functools
import importlib
import importlib.util
import io
import os
import pickle
import sys

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

FORMAT_NAME    = 'fundus-stylegan3-network'  # Marker stored in every network's metadata.
FORMAT_VERSION = 1                           # Bump when the metadata layout changes; loaders read <= this.

_registry = dict()   # 'module.QualName' -> persistent class.

# Module prefixes of our packages that may define persistent classes (every package but dnnlib).
_OUR_PREFIXES = tuple(p + '.' for p in dnnlib.PACKAGES if p != 'dnnlib')

# Modules that define persistent classes; imported on demand when a pickle names one of their classes.
_KNOWN_MODULES = ('training.networks_stylegan3', 'training.networks_stylegan2', 'training.augment')

# Tensor dtypes our format stores (raw bytes are reinterpreted with these).
_DTYPES = {name: getattr(torch, name) for name in
    ['float16', 'bfloat16', 'float32', 'float64', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool']}

#----------------------------------------------------------------------------
# The decorator.

def persistent_class(cls):
    """Class decorator: instances record their constructor arguments and pickle as (class name, kwargs,
    state dict). The class must be a torch.nn.Module defined in our tree (dnnlib/torch_utils/training/
    metrics/fundus)."""
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TypeError(f'persistent_class: {cls!r} is not a torch.nn.Module subclass')
    name = f'{cls.__module__}.{cls.__qualname__}'
    if '<locals>' in name or not name.startswith(_OUR_PREFIXES + ('tests.',)):
        raise TypeError(f'persistent_class: {name} must be a top-level class of our tree')

    orig_init = cls.__init__

    @functools.wraps(orig_init)
    def __init__(self, *args, **kwargs):
        # Record a plain copy before the constructor can mutate its arguments. With decorated
        # base classes every level records; the outermost (the real class) writes last.
        rec_args = _plain_copy(list(args), f'{name} positional arguments')
        rec_kwargs = _plain_copy(dict(kwargs), f'{name} keyword arguments')
        orig_init(self, *args, **kwargs)
        self._init_args = tuple(rec_args)
        self._init_kwargs = dnnlib.EasyDict(rec_kwargs)

    cls.__init__ = __init__
    cls.init_args = property(lambda self: copy.deepcopy(self._init_args))
    cls.init_kwargs = property(lambda self: dnnlib.EasyDict(copy.deepcopy(self._init_kwargs)))
    cls.__reduce_ex__ = _reduce_persistent
    cls.__deepcopy__ = _deepcopy_persistent
    cls._persistent_name = name
    _registry[name] = cls
    return cls

def is_persistent(obj):
    """True for instances (or classes) decorated with @persistent_class."""
    cls = obj if isinstance(obj, type) else type(obj)
    return _registry.get(getattr(cls, '_persistent_name', None)) is cls

def _plain_copy(value, where):
    # Deep-copy constructor arguments, accepting only data our unpickler can rebuild.
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_plain_copy(v, where) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        out = dnnlib.EasyDict() if isinstance(value, dnnlib.EasyDict) else dict()
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f'{where}: dict key {k!r} is not a string; network pickles store plain data only')
            out[k] = _plain_copy(v, f'{where}[{k!r}]')
        return out
    raise TypeError(f'{where}: a value of type {type(value).__name__} cannot be stored in a network pickle; '
                    f'pass plain data (numbers, strings, lists, tuples, dicts)')

def _deepcopy_persistent(self, memo):
    # Plain attribute-wise deep copy: keeps devices and requires_grad (pickling goes through bytes on CPU).
    new = type(self).__new__(type(self))
    memo[id(self)] = new
    for key, value in self.__dict__.items():
        new.__dict__[key] = copy.deepcopy(value, memo)
    return new

#----------------------------------------------------------------------------
# Our format: encode and rebuild.

def _encode_tensor(tensor):
    tensor = tensor.detach().to('cpu').contiguous()
    dtype = str(tensor.dtype).removeprefix('torch.')
    if dtype not in _DTYPES:
        raise TypeError(f'network pickles cannot store tensors of dtype {tensor.dtype}')
    data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b''
    return (dtype, tuple(tensor.shape), data)

def _decode_tensor(dtype, shape, data, where):
    if dtype not in _DTYPES:
        raise pickle.UnpicklingError(f'{where}: unknown tensor dtype {dtype!r}')
    if len(data) == 0:
        return torch.empty(shape, dtype=_DTYPES[dtype])
    flat = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(_DTYPES[dtype])
    return flat.reshape(shape)

def _reduce_persistent(self, protocol=None):
    params = dict(self.named_parameters())
    meta = dict(
        format          = FORMAT_NAME,
        version         = FORMAT_VERSION,
        class_name      = type(self)._persistent_name,
        init_args       = tuple(self._init_args),
        init_kwargs     = dnnlib.EasyDict(self._init_kwargs),
        state           = [(name,) + _encode_tensor(t) for name, t in self.state_dict().items()],
        frozen          = [name for name, p in params.items() if not p.requires_grad],
        training        = bool(self.training),
    )
    return (_reconstruct_network, (meta,))

def _resolve_class(class_name):
    # Our classes by name: the registry, importing our own network modules on demand.
    cls = _registry.get(class_name)
    if cls is None:
        module_name = class_name.rpartition('.')[0]
        if module_name in _KNOWN_MODULES or module_name.startswith(_OUR_PREFIXES):
            _import_our_module(module_name)
        cls = _registry.get(class_name)
    if cls is None:
        raise pickle.UnpicklingError(f'network pickle names class {class_name!r}, which is not a persistent class of this tree')
    return cls

def _import_our_module(module_name):
    # Import a module of our tree. When our package is not on sys.path (a script run from elsewhere),
    # load it from the tree this file belongs to, never from another package of the same name.
    top = module_name.split('.')[0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name not in (top, module_name):
            raise
        if e.name == module_name:
            return None
    root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    init_file = os.path.join(root, top, '__init__.py')
    if not os.path.isfile(init_file):
        return None
    spec = importlib.util.spec_from_file_location(top, init_file, submodule_search_locations=[os.path.dirname(init_file)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[top] = package
    spec.loader.exec_module(package)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None

def _construct_quietly(cls, args, kwargs, where):
    # Build without touching the caller's global RNG (initial values are overwritten anyway).
    try:
        with torch.random.fork_rng(devices=[]):
            return cls(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{where}: cannot construct {cls.__module__}.{cls.__qualname__} from the recorded arguments: {e}') from e

def _load_state_exact(module, state, frozen, training, where):
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(f'{where}: state does not match {type(module).__name__}: '
                         f'missing {missing[:8]}{"..." if len(missing) > 8 else ""}, '
                         f'unexpected {unexpected[:8]}{"..." if len(unexpected) > 8 else ""}')
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(f'{where}: {name} has shape {list(tensor.shape)} in the pickle but {list(expected[name].shape)} in {type(module).__name__}')
    module.load_state_dict(state, strict=True)
    for name, param in module.named_parameters():
        param.requires_grad_(name not in frozen)
    module.train(training)
    return module

def _reconstruct_network(meta):
    if not isinstance(meta, dict) or meta.get('format') != FORMAT_NAME:
        raise pickle.UnpicklingError('malformed network record')
    if meta.get('version', 0) > FORMAT_VERSION:
        raise pickle.UnpicklingError(f'network pickle format version {meta["version"]} is newer than this code (reads <= {FORMAT_VERSION}); update fundus-stylegan3')
    class_name = meta['class_name']
    cls = _resolve_class(class_name)
    module = _construct_quietly(cls, tuple(meta['init_args']), dict(meta['init_kwargs']), class_name)
    state = collections.OrderedDict((name, _decode_tensor(dtype, shape, data, f'{class_name}.{name}'))
                                    for name, dtype, shape, data in meta['state'])
    return _load_state_exact(module, state, set(meta['frozen']), meta['training'], class_name)

#----------------------------------------------------------------------------
# Official pickles: records, never code.

class OfficialRecord:
    """One network from an official NVIDIA pickle: class name, constructor arguments and tensors.
    The embedded module source is dropped unread."""

    def __init__(self, class_name, init_args, init_kwargs, params, buffers, modules, training):
        self.class_name = class_name
        self.init_args = init_args
        self.init_kwargs = init_kwargs
        self.params = params        # name -> tensor (requires_grad kept)
        self.buffers = buffers      # name -> tensor
        self.modules = modules      # name -> OfficialRecord
        self.training = training

    def flat_state(self, prefix=''):
        """(state dict, frozen parameter names) with dotted names, like Module.state_dict()."""
        state = collections.OrderedDict()
        frozen = set()
        for name, t in self.params.items():
            if t is not None:
                state[prefix + name] = t.detach()
                if not t.requires_grad:
                    frozen.add(prefix + name)
        for name, t in self.buffers.items():
            if t is not None:
                state[prefix + name] = t.detach()
        for name, rec in self.modules.items():
            if rec is None:
                continue
            if not isinstance(rec, OfficialRecord):
                raise ValueError(f'official pickle: submodule {prefix + name} is not a persistent network object')
            sub_state, sub_frozen = rec.flat_state(prefix + name + '.')
            state.update(sub_state)
            frozen |= sub_frozen
        return state, frozen

def _reconstruct_persistent_obj(meta):
    # Entry point named by official pickles. The source text in meta['module_src'] is never used.
    if not isinstance(meta, dict) or meta.get('type') != 'class':
        raise pickle.UnpicklingError('official pickle: malformed persistent object record')
    if meta.get('version') != 6:
        raise pickle.UnpicklingError(f'official pickle: persistence version {meta.get("version")!r} is not supported (expected 6)')
    state = meta.get('state') or dict()
    return OfficialRecord(
        class_name  = str(meta.get('class_name')),
        init_args   = tuple(state.get('_init_args', ()) or ()),
        init_kwargs = dict(state.get('_init_kwargs', {}) or {}),
        params      = dict(state.get('_parameters', {}) or {}),
        buffers     = dict(state.get('_buffers', {}) or {}),
        modules     = dict(state.get('_modules', {}) or {}),
        training    = bool(state.get('training', False)),
    )

def _official_class_name(rec):
    # Which of our classes an official network corresponds to, decided from its name and state.
    if rec.class_name == 'Generator':
        synthesis = rec.modules.get('synthesis')
        if isinstance(synthesis, OfficialRecord) and 'input' in synthesis.modules:
            return 'training.networks_stylegan3.Generator'
        return 'training.networks_stylegan2.Generator'
    if rec.class_name == 'Discriminator':
        return 'training.networks_stylegan2.Discriminator'
    if rec.class_name == 'AugmentPipe':
        return 'training.augment.AugmentPipe'
    raise ValueError(f'official pickle: unsupported top-level class {rec.class_name!r} (expected Generator, Discriminator or AugmentPipe)')

def _official_kwargs(rec, class_name):
    kwargs = dnnlib.EasyDict(rec.init_kwargs)
    # StyleGAN2-ADA's Generator nests the synthesis arguments; ours takes them flat (as StyleGAN3 does).
    if class_name == 'training.networks_stylegan2.Generator' and 'synthesis_kwargs' in kwargs:
        kwargs.update(kwargs.pop('synthesis_kwargs') or {})
    return kwargs

def build_from_official(rec):
    """Our network (or augment pipe) with the weights of an official record."""
    class_name = _official_class_name(rec)
    cls = _resolve_class(class_name)
    where = f'official {rec.class_name}'
    module = _construct_quietly(cls, rec.init_args, _official_kwargs(rec, class_name), where)
    state, frozen = rec.flat_state()
    if class_name == 'training.augment.AugmentPipe':
        return _load_official_augment_state(module, state, rec.training, where)
    return _load_state_exact(module, state, frozen, rec.training, where)

def _load_official_augment_state(pipe, state, training, where):
    # The augment pipe's only learned state is its probability `p`. Its filter buffers (Hz_geom, Hz_fbank)
    # are fixed functions of constants: ours are built from our own filter design (our Hz_fbank has a
    # different length than NVIDIA's), so the recorded ones are not loaded; the constructor arguments
    # (which augmentations, their strengths) come from the record as for any network.
    p = state.get('p')
    if p is None or p.numel() != 1:
        raise ValueError(f'{where}: the augment pipe has no scalar probability buffer "p" '
                         f'(found {sorted(state)[:8]})')
    unexpected = sorted(set(state) - {'p', 'Hz_geom', 'Hz_fbank'})
    if unexpected:
        raise ValueError(f'{where}: unexpected augment pipe state {unexpected[:8]} (expected p, Hz_geom, Hz_fbank)')
    with torch.no_grad():
        pipe.p.copy_(p.reshape([]).to(pipe.p.dtype))
    pipe.requires_grad_(False)
    pipe.train(training)
    return pipe

#----------------------------------------------------------------------------
# The allow-listed unpickler.

def _safe_load_from_bytes(data):
    # Replaces torch.storage._load_from_bytes, which would run a full (unrestricted) torch.load.
    return torch.load(io.BytesIO(data), weights_only=True, map_location='cpu')

def _numpy_core():
    return np._core if hasattr(np, '_core') else np.core

def _allowed_globals():
    npc = _numpy_core()
    allowed = {
        ('torch_utils.persistence', '_reconstruct_network'):         _reconstruct_network,
        ('torch_utils.persistence', '_reconstruct_persistent_obj'):  _reconstruct_persistent_obj,
        ('collections', 'OrderedDict'):                              collections.OrderedDict,
        ('dnnlib.util', 'EasyDict'):                                 dnnlib.EasyDict,
        ('dnnlib', 'EasyDict'):                                      dnnlib.EasyDict,
        ('torch._utils', '_rebuild_tensor_v2'):                      torch._utils._rebuild_tensor_v2,
        ('torch._utils', '_rebuild_parameter'):                      torch._utils._rebuild_parameter,
        ('torch._utils', '_rebuild_parameter_with_state'):           torch._utils._rebuild_parameter_with_state,
        ('torch.storage', '_load_from_bytes'):                       _safe_load_from_bytes,
        ('torch', 'Size'):                                           torch.Size,
        ('torch', 'device'):                                         torch.device,
        ('numpy', 'ndarray'):                                        np.ndarray,
        ('numpy', 'dtype'):                                          np.dtype,
        ('builtins', 'set'):                                         set,
        ('builtins', 'frozenset'):                                   frozenset,
        ('builtins', 'complex'):                                     complex,
        ('builtins', 'slice'):                                       slice,
        ('builtins', 'bytearray'):                                   bytearray,
        ('_codecs', 'encode'):                                       _latin1_encode,
    }
    for name in _DTYPES:
        allowed[('torch', name)] = _DTYPES[name]
    for prefix in ('numpy.core', 'numpy._core'):
        allowed[(prefix + '.multiarray', '_reconstruct')] = npc.multiarray._reconstruct
        allowed[(prefix + '.multiarray', 'scalar')] = npc.multiarray.scalar
        allowed[(prefix + '.numeric', '_frombuffer')] = npc.numeric._frombuffer
    return allowed

def _latin1_encode(text, encoding='latin1'):
    # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1'); nothing else is allowed.
    if encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError(f'_codecs.encode with encoding {encoding!r} is not allowed')
    return text.encode('latin1')

class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals; anything else raises UnpicklingError naming it."""

    def __init__(self, file, source='network pickle'):
        super().__init__(file)
        self._source = source
        self._allowed = _allowed_globals()

    def find_class(self, module, name):
        obj = self._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f'{self._source}: refused global {module}.{name}: it is not on the '
                                         f'allow-list of network pickles (nothing from the file was executed)')
        return obj

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f'{self._source}: persistent ids are not supported in network pickles')

#----------------------------------------------------------------------------
# Public API.

def save_network_pkl(path, data):
    """Write a network snapshot atomically (temp file + rename).

    Args:
        path: destination file.
        data: dict, usually with G, D, G_ema, augment_pipe, training_set_kwargs. Every torch module in it
              must be a @persistent_class instance (unwrap DDP / torch.compile first).
    """
    if not isinstance(data, dict):
        raise TypeError(f'save_network_pkl({path!r}): data must be a dict, got {type(data).__name__}')
    for key, value in data.items():
        if isinstance(value, torch.nn.Module) and not is_persistent(value):
            raise TypeError(f'save_network_pkl({path!r}): data[{key!r}] is a {type(value).__module__}.{type(value).__qualname__}, '
                            f'which is not a @persistent_class (unwrap DistributedDataParallel / torch.compile first)')
    payload = pickle.dumps(data, protocol=4)
    dnnlib.atomic_write(path, lambda f: f.write(payload))
    os.chmod(path, 0o644) # The temp file behind atomic_write is created private (0600).

def loads_network_pkl(payload, source='network pickle'):
    """Unpickle bytes with the allow-list; official records stay OfficialRecord objects."""
    return SafeUnpickler(io.BytesIO(payload), source=source).load()

def load_network_pkl(path_or_file, force_fp16=False):
    """Read a network pickle (ours or an official StyleGAN2-ADA / StyleGAN3 one) without running code from it.

    Args:
        path_or_file: file path, URL (through dnnlib.open_url) or a binary file object.
        force_fp16:   rebuild G, D and G_ema with num_fp16_res=4 and conv_clamp=256 (used on CUDA only).

    Returns:
        dict with G, D, G_ema (those present), augment_pipe and training_set_kwargs (None when absent).
    """
    source = getattr(path_or_file, 'name', None) if not isinstance(path_or_file, (str, os.PathLike)) else os.fspath(path_or_file)
    source = str(source or 'network pickle')
    if isinstance(path_or_file, (str, os.PathLike)):
        with dnnlib.open_url(os.fspath(path_or_file)) as f:
            payload = f.read()
    else:
        payload = path_or_file.read()
    data = loads_network_pkl(payload, source=source)
    data = _convert_records(data)
    if not isinstance(data, dict):
        raise ValueError(f'{source}: not a network pickle (expected a dict with G, D, G_ema, ...; got {type(data).__name__})')
    for key in ('G', 'D', 'G_ema', 'augment_pipe'):
        if data.get(key) is not None and not isinstance(data[key], torch.nn.Module):
            raise ValueError(f'{source}: {key} is a {type(data[key]).__name__}, expected a network')
    data.setdefault('augment_pipe', None)
    data.setdefault('training_set_kwargs', None)
    if force_fp16:
        for key in ('G', 'D', 'G_ema'):
            if data.get(key) is not None:
                data[key] = _with_fp16(data[key])
    return data

def _convert_records(value):
    if isinstance(value, OfficialRecord):
        return build_from_official(value)
    if isinstance(value, dict):
        for key in list(value.keys()):
            value[key] = _convert_records(value[key])
        return value
    if isinstance(value, list):
        return [_convert_records(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_convert_records(v) for v in value)
    return value

def _with_fp16(module):
    # Rebuild with fp16 in the top 4 resolutions and conv_clamp 256 (train.py's mixed-precision setting).
    kwargs = module.init_kwargs
    if kwargs.get('num_fp16_res') == 4 and kwargs.get('conv_clamp') == 256:
        return module
    kwargs.num_fp16_res = 4
    kwargs.conv_clamp = 256
    new = _construct_quietly(type(module), module.init_args, kwargs, type(module).__name__)
    frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
    return _load_state_exact(new, module.state_dict(), frozen, module.training, type(module).__name__)

#----------------------------------------------------------------------------
