# Plugin loading policy and the kernel self-check, on a CPU-only machine: nothing compiles at import, a
# failed build warns once and falls back, strict mode raises, and a wrong kernel is caught by the
# self-check with its numbers (docs/cuda.md).

import importlib
import sys
import warnings

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act as bias_act_mod
from torch_utils.ops import compile_check
from torch_utils.ops import cuda_kernels
from torch_utils.ops import filtered_lrelu as flrelu_mod
from torch_utils.ops import upfirdn2d as upfirdn2d_mod

_UPFIRDN_CONFIG = dict(upx=2, upy=2, downx=1, downy=1, padx0=2, padx1=1, pady0=2, pady1=1, flip=False, gain=4.0,
                       fh=4, fw=4)
_ALWAYS_CUDA = lambda device: True # Pretend the (CPU) device is a GPU, so select_kernel consults the plugin.

#----------------------------------------------------------------------------

_OP_MODULES = ['torch_utils.custom_ops', 'torch_utils.ops.cuda_kernels', 'torch_utils.ops.compile_check',
               'torch_utils.ops.upfirdn2d', 'torch_utils.ops.bias_act', 'torch_utils.ops.filtered_lrelu']

def test_ops_import_without_cuda_and_never_compile(monkeypatch):
    # Fresh copies of every module (in this process: no second torch import), with no CUDA_HOME and a
    # cpp_extension.load that raises. monkeypatch restores the original modules afterwards.
    from torch.utils import cpp_extension
    calls = []
    def load(*args, **kwargs):
        calls.append(kwargs.get('name'))
        raise AssertionError('compiled at import')
    monkeypatch.setattr(cpp_extension, 'load', load)
    monkeypatch.delenv('CUDA_HOME', raising=False)
    monkeypatch.delenv('CUDA_PATH', raising=False)
    for name in [n for n in sys.modules if n == 'torch_utils' or n.startswith('torch_utils.')]:
        monkeypatch.delitem(sys.modules, name)
    fresh = [importlib.import_module(name) for name in _OP_MODULES]
    assert calls == []
    assert fresh[0] is not custom_ops and fresh[0].built_plugins() == []

def _failing_build(monkeypatch, calls):
    from torch.utils import cpp_extension
    def fail(*args, **kwargs):
        calls.append(kwargs.get('name'))
        raise RuntimeError('simulated nvcc failure')
    monkeypatch.setattr(cpp_extension, 'load', fail)
    monkeypatch.setattr(cpp_extension, 'CUDA_HOME', '/nonexistent-cuda')

def test_build_failure_warns_once_then_reference_results(monkeypatch):
    calls = []
    _failing_build(monkeypatch, calls)
    monkeypatch.delenv(custom_ops.STRICT_ENV, raising=False)
    x = torch.randn([1, 2, 6, 5])
    f = upfirdn2d_mod.setup_filter([1, 3, 3, 1])
    expected = upfirdn2d_mod.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl='ref')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with cuda_kernels.testing_hooks(device_check=_ALWAYS_CUDA):
            for _ in range(3):
                kernel = cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, upfirdn2d_mod.ref_kernel, 'cpu',
                                                    torch.float32)
                assert kernel is upfirdn2d_mod.ref_kernel
                y = kernel.upfirdn2d(x, f, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
                assert torch.allclose(y, expected, atol=1e-6)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert cuda_kernels.PLUGIN_NAME in messages[0] and 'simulated nvcc failure' in messages[0]
    assert calls == [cuda_kernels.PLUGIN_NAME] # Built once, not re-attempted on every call.

def test_build_failure_in_strict_mode_raises_a_clear_error(monkeypatch):
    _failing_build(monkeypatch, [])
    monkeypatch.setenv(custom_ops.STRICT_ENV, '1')
    with cuda_kernels.testing_hooks(device_check=_ALWAYS_CUDA):
        with pytest.raises(RuntimeError, match=rf'{cuda_kernels.PLUGIN_NAME}.*{custom_ops.STRICT_ENV}=1'):
            cuda_kernels.select_kernel('bias_act', dict(act=3), bias_act_mod.ref_kernel, 'cpu', torch.float32)

def test_cpu_device_never_loads_the_plugin():
    def loader():
        raise AssertionError('the plugin loader ran for a CPU tensor')
    with cuda_kernels.testing_hooks(plugin_loader=loader):
        ref = upfirdn2d_mod.ref_kernel
        assert cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, ref, 'cpu', torch.float32) is ref

def test_unknown_op_name_is_a_clear_error():
    with pytest.raises(ValueError, match='unknown op'):
        cuda_kernels.select_kernel('upfirdn3d', {}, object(), 'cpu', torch.float32)

#----------------------------------------------------------------------------
# Self-check with stand-in plugins built from the reference kernels.

class _Plugin:
    """The reference kernels behind the plugin's four entry points, optionally corrupted."""
    def __init__(self, upfirdn2d_offset=0.0, bias_act_scale=1.0, raise_in=None):
        self.upfirdn2d_offset, self.bias_act_scale, self.raise_in = upfirdn2d_offset, bias_act_scale, raise_in
        self.calls = 0
    def upfirdn2d(self, *args):
        self.calls += 1
        if self.raise_in == 'upfirdn2d':
            raise RuntimeError('CUDA error: an illegal memory access was encountered')
        return upfirdn2d_mod.ref_kernel.upfirdn2d(*args) + self.upfirdn2d_offset
    def bias_act(self, *args):
        self.calls += 1
        return bias_act_mod.ref_kernel.bias_act(*args) * self.bias_act_scale
    def filtered_lrelu(self, *args):
        self.calls += 1
        return flrelu_mod.ref_kernel.filtered_lrelu(*args)
    def filtered_lrelu_act_(self, *args):
        self.calls += 1
        return flrelu_mod.ref_kernel.filtered_lrelu_act_(*args)

def test_self_check_rejects_a_wrong_kernel_with_the_numbers():
    wrong = _Plugin(upfirdn2d_offset=1e-2)
    with cuda_kernels.testing_hooks(plugin_loader=lambda: wrong, device_check=_ALWAYS_CUDA):
        with pytest.warns(RuntimeWarning) as record:
            kernel = cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, upfirdn2d_mod.ref_kernel, 'cpu', torch.float32)
        assert kernel is upfirdn2d_mod.ref_kernel
        text = ' '.join(str(r.message) for r in record)
        assert 'self-check failed' in text and 'max abs error 0.01 > tolerance' in text, text
        # The verdict is remembered: no second check, no second warning, still the reference.
        calls = wrong.calls
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            again = cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, upfirdn2d_mod.ref_kernel, 'cpu', torch.float32)
        assert again is upfirdn2d_mod.ref_kernel and wrong.calls == calls

def test_self_check_accepts_a_correct_kernel_once_per_configuration():
    good = _Plugin()
    with cuda_kernels.testing_hooks(plugin_loader=lambda: good, device_check=_ALWAYS_CUDA):
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            for _ in range(2):
                assert cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, upfirdn2d_mod.ref_kernel, 'cpu',
                                                  torch.float32) is good
            calls = good.calls
            other = dict(_UPFIRDN_CONFIG, upx=1, upy=1)
            assert cuda_kernels.select_kernel('upfirdn2d', other, upfirdn2d_mod.ref_kernel, 'cpu', torch.float32) is good
            assert good.calls > calls # A new configuration is checked again.

@pytest.mark.parametrize('dtype,scale,ok', [
    (torch.float32, 1 + 3e-6, True),    # Within the fp32 starting tolerance (1e-5 relative).
    (torch.float32, 1 + 1e-4, False),
    (torch.float64, 1 + 1e-4, False),
])
def test_self_check_tolerance_is_per_dtype(dtype, scale, ok):
    plugin = _Plugin(bias_act_scale=scale)
    config = dict(dim=1, act=3, alpha=0.2, gain=2 ** 0.5, clamp=-1.0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter('always')
        got = cuda_kernels.self_check('bias_act', config, plugin, bias_act_mod.ref_kernel, torch.device('cpu'), dtype)
    assert got == ok

def test_self_check_treats_a_crashing_kernel_as_failed():
    crashing = _Plugin(raise_in='upfirdn2d')
    with cuda_kernels.testing_hooks(plugin_loader=lambda: crashing, device_check=_ALWAYS_CUDA):
        with pytest.warns(RuntimeWarning, match='illegal memory access'):
            kernel = cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, upfirdn2d_mod.ref_kernel, 'cpu', torch.float32)
    assert kernel is upfirdn2d_mod.ref_kernel

def test_self_check_failure_in_strict_mode_raises(monkeypatch):
    monkeypatch.setenv(custom_ops.STRICT_ENV, '1')
    wrong = _Plugin(upfirdn2d_offset=1e-2)
    with cuda_kernels.testing_hooks(plugin_loader=lambda: wrong, device_check=_ALWAYS_CUDA):
        with pytest.raises(cuda_kernels.SelfCheckFailure, match='max abs error'):
            cuda_kernels.select_kernel('upfirdn2d', _UPFIRDN_CONFIG, upfirdn2d_mod.ref_kernel, 'cpu', torch.float32)

def test_self_check_covers_filtered_lrelu_signs_and_backward():
    good = _Plugin()
    config = dict(up=2, down=2, px0=5, px1=4, py0=5, py1=4, gain=2 ** 0.5, slope=0.2, clamp=0.5, flip_filter=False,
                  fu_shape=[8], fd_shape=[8])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert cuda_kernels.self_check('filtered_lrelu', config, good, flrelu_mod.ref_kernel, torch.device('cpu'),
                                       torch.float32)
    # Forward, backward (read mode) and the act_ entry point in two layouts: all were exercised.
    assert good.calls >= 6

def test_unpack_signs_agrees_with_the_reference_packing():
    codes = torch.randint(0, 4, [2, 3, 5, 21], generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    packed = flrelu_mod.pack_signs(codes)
    assert torch.equal(cuda_kernels.unpack_signs(packed)[..., :21], codes.to(torch.int32))

#----------------------------------------------------------------------------
# compile_check helpers (the build itself runs in CI step 2, `make cuda-check`).

def test_compile_check_flags_unjustified_warnings_only():
    log = '\n'.join([
        '[1/5] nvcc ... upfirdn2d.cu',
        "upfirdn2d.cu(12): warning #177-D: variable \"k\" was declared but never referenced",
        "W1122 torch/utils/cpp_extension.py:183] No CUDA runtime is found, using CUDA_HOME='/usr/local/cuda'",
        'fundus_ops.cpp:40:5: warning: unused variable "n" [-Wunused-variable]',
    ])
    bad = compile_check.unjustified_warnings(log)
    assert len(bad) == 2 and '#177-D' in bad[0] and 'Wunused-variable' in bad[1]

def test_compile_check_reads_the_arch_targets(tmp_path):
    (tmp_path / 'build.ninja').write_text('cuda_cflags = -gencode=arch=compute_80,code=sm_80 '
                                          '-gencode=arch=compute_90,code=sm_90 --use_fast_math\n')
    assert compile_check.archs_in_build_file(str(tmp_path)) == ['80', '90']
    assert compile_check.expected_archs('8.0;9.0') == ['80', '90']
    assert compile_check.expected_archs('8.0 9.0+PTX') == ['80', '90']

#----------------------------------------------------------------------------
