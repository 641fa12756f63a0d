# The compiled CPU plugin in tests (torch_utils/ops/cpu_kernels.py): built where a compiler exists
# (a build failure there fails the test instead of falling back silently), or switched off so that a
# test exercises the PyTorch CPU path it would otherwise replace.

import shutil

import pytest

from torch_utils.ops import cpu_kernels

BACKENDS = ['plugin', 'blocked'] # The compiled kernel; the blocked PyTorch passes (no plugin).
ENTRY_POINTS = ('filtered_lrelu', 'upfirdn2d', 'bias_act') # The plugin's functions (cpu_plugin.cpp).

def built_cpu_plugin():
    """The plugin module; skips only on a machine without a C++ compiler."""
    if shutil.which('c++') is None and shutil.which('g++') is None:
        pytest.skip('no C++ compiler on this machine: the CPU plugin cannot be built')
    plugin = cpu_kernels.load_cpu_plugin()
    assert plugin is not None, 'the CPU plugin did not build although a C++ compiler is installed (FUNDUS_CUDA_VERBOSE=1 shows why)'
    return plugin

def record_plugin_calls(monkeypatch, entry='filtered_lrelu'):
    """A list that receives the return code of every call to the CPU plugin's `entry` (one of
    ENTRY_POINTS) from now on (0: handled, -1: declined); stays empty while the plugin is switched off.
    The other entry points run unrecorded."""
    codes, plugin = [], cpu_kernels.load_cpu_plugin()
    if plugin is None:
        return codes
    def recorded(*args):
        out = getattr(plugin, entry)(*args)
        codes.append(out[-1])
        return out
    spy = type('Spy', (), {name: staticmethod(getattr(plugin, name)) for name in ENTRY_POINTS})
    setattr(spy, entry, staticmethod(recorded))
    monkeypatch.setitem(cpu_kernels._hooks, 'plugin_loader', lambda: spy)
    return codes

@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each test that takes it runs once with the plugin (built) and once without ('plugin', 'blocked');
    parametrize it indirectly to pin one."""
    if request.param == 'plugin':
        built_cpu_plugin()
        yield request.param
        return
    with cpu_kernels.plugin_loader(lambda: None):
        yield request.param
