# One lazy JIT build helper for the CUDA kernels and the CPU kernel (torch.utils.cpp_extension + ninja).
#
# Nothing here runs at import. `get_plugin()` builds on first use, in a directory keyed by an MD5 of every
# source and header (plus the GPU name and target archs, or for a CPU plugin the instruction set it is
# compiled for), so an edited kernel is rebuilt and an unchanged one is loaded from the cache.
# `load_plugin()` is the policy the ops use: a failed build warns once and returns None (the caller then
# uses the reference implementation, or for the CPU plugin the PyTorch CPU path); with
# FUNDUS_CUDA_STRICT=1 it raises.

import glob
import hashlib
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings

import torch

#----------------------------------------------------------------------------

STRICT_ENV = 'FUNDUS_CUDA_STRICT'   # '1': a failed build raises instead of falling back.
VERBOSE_ENV = 'FUNDUS_CUDA_VERBOSE' # '1': show the full compiler output.

_plugins = dict()  # module_name -> module, or the exception that its build raised.

def reset_for_tests():
    _plugins.clear()

def strict_mode():
    return os.environ.get(STRICT_ENV, '0') not in ('', '0', 'false', 'False')

def extensions_root():
    return os.environ.get('TORCH_EXTENSIONS_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'torch_extensions')

def _device_tag():
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.cuda.current_device())
    else:
        name = 'arch-' + os.environ.get('TORCH_CUDA_ARCH_LIST', 'default')
    return re.sub(r'[^0-9a-zA-Z_-]+', '_', name)

def source_digest(paths):
    md5 = hashlib.md5()
    for path in sorted(paths):
        md5.update(os.path.basename(path).encode('utf-8'))
        with open(path, 'rb') as f:
            md5.update(f.read())
    return md5.hexdigest()

#----------------------------------------------------------------------------

def get_plugin(module_name, sources, headers=None, source_dir=None, verbose=None, cpu_tag=None, **build_kwargs):
    """Build (or load from the cache) the extension `module_name` and return it. Raises on failure.

    Args:
        module_name:  Python module name of the extension, e.g. 'filtered_lrelu_plugin'.
        sources:      .cpp/.cu file names (relative to source_dir) or paths.
        headers:      Header files that the sources include; part of the cache key.
        source_dir:   Folder of the sources.
        verbose:      Print compiler output; default from $FUNDUS_CUDA_VERBOSE.
        cpu_tag:      None for a CUDA plugin; for a CPU-only one, a name for the instruction set its flags
                      target (part of the cache key; no CUDA toolkit needed).
        build_kwargs: Passed to torch.utils.cpp_extension.load (extra_cuda_cflags, ...).
    """
    if module_name in _plugins:
        cached = _plugins[module_name]
        if isinstance(cached, BaseException):
            raise cached
        return cached
    try:
        module = _build(module_name, sources, headers or [], source_dir, verbose, cpu_tag, build_kwargs)
    except BaseException as e:
        _plugins[module_name] = e
        raise
    _plugins[module_name] = module
    return module

def load_plugin(module_name, sources, headers=None, source_dir=None, cpu_tag=None, **build_kwargs):
    """The ops' policy: the plugin, or None after one warning if it cannot be built (strict mode raises)."""
    already_failed = isinstance(_plugins.get(module_name), BaseException)
    kind = 'CUDA' if cpu_tag is None else 'CPU'
    try:
        return get_plugin(module_name, sources, headers, source_dir, cpu_tag=cpu_tag, **build_kwargs)
    except Exception as e:
        if strict_mode():
            raise RuntimeError(f'Building the {kind} plugin {module_name!r} failed and {STRICT_ENV}=1 forbids the fallback: {e}') from e
        if not already_failed:
            fallback = 'the reference implementation' if cpu_tag is None else 'the PyTorch CPU path'
            warnings.warn(f'Could not build the {kind} plugin {module_name!r} ({type(e).__name__}: {_first_line(e)}); '
                          f'using {fallback} instead. Set {STRICT_ENV}=1 to make this an error, '
                          f'{VERBOSE_ENV}=1 to see the compiler output.', RuntimeWarning, stacklevel=3)
        return None

def _first_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else ''

#----------------------------------------------------------------------------

def _build(module_name, sources, headers, source_dir, verbose, cpu_tag, build_kwargs):
    from torch.utils import cpp_extension # Imported lazily: it is slow and not needed on the CPU path.

    if verbose is None:
        verbose = os.environ.get(VERBOSE_ENV, '0') not in ('', '0')
    if source_dir is not None:
        sources = [os.path.join(source_dir, s) for s in sources]
        headers = [os.path.join(source_dir, h) for h in headers]
    for path in list(sources) + list(headers):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{module_name}: missing source {path}')
    if cpu_tag is None and cpp_extension.CUDA_HOME is None:
        raise RuntimeError('no CUDA toolkit found (set CUDA_HOME to the folder that contains bin/nvcc)')

    # Copy the sources into a build directory named by their digest; the rename makes it atomic so
    # concurrent processes (one per GPU) never see a half-copied folder.
    digest = source_digest(list(sources) + list(headers))
    build_dir = os.path.join(extensions_root(), module_name, f'{digest}-{cpu_tag or _device_tag()}')
    if not os.path.isdir(build_dir):
        os.makedirs(os.path.dirname(build_dir), exist_ok=True)
        tmp_dir = tempfile.mkdtemp(dir=os.path.dirname(build_dir), prefix=f'.tmp-{uuid.uuid4().hex}-')
        for path in list(sources) + list(headers):
            shutil.copyfile(path, os.path.join(tmp_dir, os.path.basename(path)))
        try:
            os.replace(tmp_dir, build_dir)
        except OSError:
            shutil.rmtree(tmp_dir, ignore_errors=True) # Another process won the race; use its copy.
    cached_sources = [os.path.join(build_dir, os.path.basename(s)) for s in sources]
    if cpu_tag is not None and not glob.glob(os.path.join(build_dir, f'{module_name}*.so')):
        # The first use on a machine waits for the compiler (CUDA builds are announced by their callers).
        print(f'Building the CPU plugin {module_name} in {build_dir} (once per machine and source version)...',
              file=sys.stderr, flush=True)

    return cpp_extension.load(name=module_name, sources=cached_sources, build_directory=build_dir,
                              verbose=verbose, **build_kwargs)

def built_plugins():
    """Names of plugins built (or loaded) in this process; for diagnostics."""
    return sorted(name for name, m in _plugins.items() if not isinstance(m, BaseException))

def cached_build_dirs(module_name):
    return sorted(glob.glob(os.path.join(extensions_root(), module_name, '*')))

#----------------------------------------------------------------------------
