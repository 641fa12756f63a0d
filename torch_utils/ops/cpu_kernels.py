# The CPU plugin: compiled kernels for CPU tensors where the PyTorch CPU path is slow. Three entry points:
# filtered_lrelu (filtered_lrelu_cpu.cpp) and upfirdn2d (upfirdn2d_cpu.cpp) for separable filters, whose
# FIR passes are cpu_fir.h, and bias_act (bias_act_cpu.cpp) for piecewise-linear activations; the Python
# module is cpu_plugin.cpp.
#
# Policy, as for the CUDA plugin (docs/cuda.md): built lazily on the first call that can use it (never at
# import) through custom_ops.load_plugin; a failed build (no compiler, no OpenMP) warns once and returns
# None, and the caller runs its PyTorch path (FUNDUS_CUDA_STRICT=1 raises instead). The flags target
# the instruction set of this machine's CPU family (AVX2 + FMA where the CPU has them, else the
# compiler's baseline), and that choice is part of the build's cache key, so a cached build never runs
# on a CPU that lacks its instructions.

import contextlib
import os
import platform

from .. import custom_ops

PLUGIN_NAME = 'fundus_cpu_ops'
PLUGIN_SOURCES = ['cpu_plugin.cpp', 'filtered_lrelu_cpu.cpp', 'upfirdn2d_cpu.cpp', 'bias_act_cpu.cpp']
PLUGIN_HEADERS = ['cpu_fir.h']
PLUGIN_CFLAGS = ['-O3', '-fopenmp', '-Wall', '-Wextra']  # OpenMP: at::parallel_for spreads the planes over torch's threads.
PLUGIN_LDFLAGS = ['-fopenmp']
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))

_hooks = dict(plugin_loader=None)
_loaded = dict()  # 'plugin' -> the module, or None: one build attempt per process. Kept across
                  # custom_ops.reset_for_tests(): loading the same extension again rebuilds it.

@contextlib.contextmanager
def plugin_loader(loader):
    """Within the block, load_cpu_plugin() returns loader() instead of the built plugin; plugin_loader(lambda:
    None) runs the PyTorch CPU path. For tests and benchmarks that compare the two."""
    previous = _hooks['plugin_loader']
    _hooks['plugin_loader'] = loader
    try:
        yield
    finally:
        _hooks['plugin_loader'] = previous

def isa_flags(cpuinfo_path='/proc/cpuinfo'):
    """(tag, flags): the instruction-set flags the plugin is compiled with on this machine."""
    machine = platform.machine().lower() or 'unknown'
    if machine in ('x86_64', 'amd64') and {'avx2', 'fma'} <= _cpu_flags(cpuinfo_path):
        return f'{machine}-avx2', ['-mavx2', '-mfma']
    return machine, []

def _cpu_flags(path):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()

def load_cpu_plugin():
    """The built plugin module, or None (after one warning) if it cannot be built."""
    if _hooks['plugin_loader'] is not None:
        return _hooks['plugin_loader']()
    if 'plugin' not in _loaded:
        tag, flags = isa_flags()
        _loaded['plugin'] = custom_ops.load_plugin(PLUGIN_NAME, PLUGIN_SOURCES, PLUGIN_HEADERS, source_dir=SOURCE_DIR, cpu_tag=tag,
                                                   extra_cflags=PLUGIN_CFLAGS + flags, extra_ldflags=list(PLUGIN_LDFLAGS))
    return _loaded['plugin']
