# The compiled CPU plugin (torch_utils/ops/cpu_kernels.py; filtered_lrelu_cpu.cpp, upfirdn2d_cpu.cpp,
# bias_act_cpu.cpp): what its entry points handle and hand back, inference through them, threads, and the build policy (lazy,
# cached per instruction set, a failed build warns once and the PyTorch CPU path takes over). Their
# agreement with the reference in training (forward, gradients, gradcheck, sign tensors) is tested with
# both backends in test_filtered_lrelu_cpu_training.py and test_cpu_training_paths.py.

import warnings

import numpy as np
import pytest
import torch

from bench.zero_insertion import filtered_lrelu_zero_insertion, upfirdn2d_zero_insertion
from tests.support.cpu_plugin import built_cpu_plugin, record_plugin_calls
from torch_utils import custom_ops
from torch_utils.ops import bias_act, cpu_kernels, filtered_lrelu, upfirdn2d

#----------------------------------------------------------------------------

def _args(x, fu, fd, b=None, si=None, up=2, down=2, padding=(9, 8, 9, 8), sx=0, sy=0, gain=np.sqrt(2), slope=0.2, clamp=-1.0,
          flip=False, write=True):
    b = torch.empty([0], dtype=x.dtype) if b is None else b
    si = torch.empty([0], dtype=torch.uint8) if si is None else si
    return (x, fu, fd, b, si, up, down, *padding, sx, sy, float(gain), slope, clamp, flip, write)

def _filters(ku=12, kd=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    fu, fd = torch.rand([ku], generator=gen) + 0.1, torch.rand([kd], generator=gen) + 0.1
    return fu / fu.sum(), fd / fd.sum()

@pytest.mark.parametrize('what', ['2-D fu', '2-D fd', 'gain 0', 'float16'])
def test_plugin_declines_what_it_does_not_handle(what):
    plugin = built_cpu_plugin()
    fu, fd = _filters()
    x = torch.randn([1, 2, 10, 10])
    kw = dict(gain=0.0) if what == 'gain 0' else {}
    if what == '2-D fu':
        fu = fu[:, None] * fu[None, :]
    if what == '2-D fd':
        fd = fd[:, None] * fd[None, :]
    if what == 'float16':
        x = x.half()
    y, so, rc = plugin.filtered_lrelu(*_args(x, fu, fd, **kw))
    assert rc == -1 and y is None and so.numel() == 0

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_plugin_inference_matches_the_reference(dtype):
    # No gradient anywhere: filtered_lrelu(impl='cuda') on CPU tensors takes the plugin.
    built_cpu_plugin()
    fu, fd = _filters(24, 12)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 5, 21, 26], generator=gen, dtype=dtype) * 2
    b = torch.randn([5], generator=gen, dtype=dtype)
    kw = dict(up=4, down=2, padding=[-6, -9, -5, -10], gain=1.3, slope=0.1, clamp=1.5, flip_filter=True)
    with torch.no_grad():
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kw)
        y_ref = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='ref', **kw)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert y.shape == y_ref.shape and y.dtype == dtype
    assert (y - y_ref).abs().max().item() <= tol * y_ref.abs().max().item()
    with torch.no_grad():
        y_unclamped = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl='ref', **dict(kw, clamp=None))
    assert (y_unclamped - y_ref).abs().max().item() > 0.1 # The clamp is exercised.

def test_plugin_inference_is_taken_and_declined_where_it_should_be(monkeypatch):
    built_cpu_plugin()
    calls = record_plugin_calls(monkeypatch)
    fu, fd = _filters()
    x = torch.randn([1, 2, 10, 10])
    with torch.no_grad():
        filtered_lrelu.filtered_lrelu(x, fu, fd, up=2, down=2, padding=[9, 8, 9, 8])
        filtered_lrelu.filtered_lrelu(x, fu, fd, up=2, down=2, padding=[9, 8, 9, 8], impl='ref') # The specification.
        filtered_lrelu.filtered_lrelu(x, fu[:, None] * fu[None, :], fd, up=2, down=2, padding=[9, 8, 9, 8]) # 2-D: declined.
    assert calls == [0, -1]

def test_plugin_keeps_non_finite_values_where_the_definition_puts_them():
    # The plugin sums only real taps (no zero-inserted samples, no margins), so a NaN spreads exactly as
    # in the zero-insertion definition and an inf is clamped like any large value. (The reference's
    # banded matrices multiply them by zero taps: wider NaN regions, and NaN where an inf was.)
    built_cpu_plugin()
    fu, fd = _filters()
    x = torch.randn([2, 3, 20, 20], dtype=torch.float64)
    x[1, 1, 10, 10] = float('nan')
    x[0, 2, 0, 0] = float('inf')
    with torch.no_grad():
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, up=2, down=2, padding=[9, 8, 9, 8], clamp=4.0)
    y_def = filtered_lrelu_zero_insertion(x, fu, fd, None, 2, 2, [9, 8, 9, 8], np.sqrt(2), 0.2, 4.0)
    nan = torch.isnan(y_def)
    assert torch.equal(torch.isnan(y), nan) and nan[1, 1].any() and nan.sum() == nan[1, 1].sum()
    assert (y[~nan] - y_def[~nan]).abs().max().item() <= 1e-12 * y_def[~nan].abs().max().item()

def test_plugin_results_do_not_depend_on_the_thread_count():
    # Each plane is one thread's work, start to end: the same sums in the same order.
    plugin = built_cpu_plugin()
    fu, fd = _filters()
    x = torch.randn([3, 7, 18, 19])
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1, so1, _ = plugin.filtered_lrelu(*_args(x, fu, fd, clamp=0.5))
        torch.set_num_threads(2)
        y2, so2, _ = plugin.filtered_lrelu(*_args(x, fu, fd, clamp=0.5))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(y1, y2) and torch.equal(so1, so2)

def test_plugin_rejects_a_sign_tensor_of_another_shape():
    plugin = built_cpu_plugin()
    fu, fd = _filters()
    x = torch.randn([2, 3, 10, 10])
    with pytest.raises(RuntimeError, match='si must be uint8'):
        plugin.filtered_lrelu(*_args(x, fu, fd, si=torch.zeros([1, 3, 10, 4], dtype=torch.uint8), write=False))

#----------------------------------------------------------------------------
# upfirdn2d: separable filters in every form the callers pass.

def _upfirdn_filter(form, gen):
    taps = torch.rand([5], generator=gen, dtype=torch.float64) + 0.1
    if form == '1-D':
        return taps                                        # Along x, then along y.
    if form == '[1, k]':
        return taps[None, :]
    if form == '[k, 1]':
        return taps[:, None]
    if form == 'outer':
        return upfirdn2d.setup_filter([1, 3, 3, 1]).double() # The discriminator's, stored 2-D.
    return torch.full([1, 1], 0.7, dtype=torch.float64)    # Identity filter with a gain.

UPFIRDN_GEOMETRIES = [
    # up, down, padding [x0, x1, y0, y1]
    ([1, 1], [1, 1], [0, 0, 0, 0]),
    ([2, 2], [1, 1], [3, 2, 2, 3]),
    ([1, 1], [2, 2], [1, 1, 2, 1]),
    ([4, 2], [2, 1], [-2, 5, 3, -1]), # Cropping and different factors per axis.
    ([3, 3], [2, 2], [4, 4, 4, 4]),
]

@pytest.mark.parametrize('form', ['1-D', '[1, k]', '[k, 1]', 'outer', 'identity'])
@pytest.mark.parametrize('geometry', UPFIRDN_GEOMETRIES, ids=lambda g: f'up{g[0]}-down{g[1]}-pad{g[2]}')
@pytest.mark.parametrize('flip', [False, True])
def test_plugin_upfirdn2d_matches_zero_insertion(form, geometry, flip):
    plugin = built_cpu_plugin()
    gen = torch.Generator().manual_seed(7)
    f = _upfirdn_filter(form, gen)
    (upx, upy), (downx, downy), padding = geometry
    x = torch.randn([2, 3, 9, 12], generator=gen, dtype=torch.float64)
    y, rc = plugin.upfirdn2d(x, f, upx, upy, downx, downy, *padding, flip, 1.7)
    y_def = upfirdn2d_zero_insertion(x, f, (upx, upy), (downx, downy), tuple(padding), flip_filter=flip, gain=1.7)
    assert rc == 0 and y.shape == y_def.shape and y.dtype == torch.float64
    assert (y - y_def).abs().max().item() <= 1e-12 * y_def.abs().max().item()

@pytest.mark.parametrize('what', ['radial', 'almost outer', 'zero sum', 'float16'])
def test_plugin_upfirdn2d_declines_what_it_does_not_handle(what):
    # A 2-D filter that is not an outer product to 2 ulp is never split (stylegan3-r's radial ones).
    plugin = built_cpu_plugin()
    x, f = torch.randn([1, 2, 10, 10]), upfirdn2d.setup_filter([1, 3, 3, 1])
    if what == 'radial':
        r = torch.linspace(-1.5, 1.5, 6)
        f = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2).sqrt())
    if what == 'almost outer':
        f = f.double()
        f[1, 2] *= 1 + 1e-9
    if what == 'zero sum':
        f = torch.outer(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 2.0]))
    if what == 'float16':
        x = x.half()
    y, rc = plugin.upfirdn2d(x, f, 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0)
    assert rc == -1 and y is None

def test_plugin_upfirdn2d_inference_is_taken_and_declined_where_it_should_be(monkeypatch):
    built_cpu_plugin()
    calls = record_plugin_calls(monkeypatch, 'upfirdn2d')
    x = torch.randn([1, 2, 10, 10])
    r = torch.linspace(-1.5, 1.5, 6)
    radial = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2).sqrt())
    with torch.no_grad():
        y = upfirdn2d.upfirdn2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]), down=2, padding=1)
        y_ref = upfirdn2d.upfirdn2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]), down=2, padding=1, impl='ref') # The specification.
        upfirdn2d.upfirdn2d(x, radial, down=2, padding=2) # Declined: the reference runs.
    assert calls == [0, -1]
    assert (y - y_ref).abs().max().item() <= 1e-6 * y_ref.abs().max().item()

def test_plugin_upfirdn2d_results_do_not_depend_on_the_thread_count():
    plugin = built_cpu_plugin()
    x, f = torch.randn([3, 40, 17, 19]), upfirdn2d.setup_filter([1, 3, 3, 1])
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1, _ = plugin.upfirdn2d(x, f, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
        torch.set_num_threads(2)
        y2, _ = plugin.upfirdn2d(x, f, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(y1, y2)

def test_plugin_upfirdn2d_rejects_padding_that_leaves_nothing():
    plugin = built_cpu_plugin()
    with pytest.raises(RuntimeError, match='empty output'):
        plugin.upfirdn2d(torch.randn([1, 1, 4, 4]), torch.ones([4]), 1, 1, 1, 1, -2, -2, 0, 0, False, 1.0)

#----------------------------------------------------------------------------
# bias_act: one pass per mode, the same elements as the aten passes it replaces.

BIAS_ACT_SHAPES = [([8, 32, 17, 17], 1), ([5, 7], 1), ([3, 4, 5], 0), ([3, 4, 5], 2), ([0, 4], 1)]

def _aten_bias_act(x, b, yref, grad, dim, act, alpha, gain, clamp):
    e = x.new_empty([0])
    with cpu_kernels.plugin_loader(lambda: None):
        return bias_act._bias_act_cpu_kernel(x, b, e, yref, e, grad, dim, act, alpha, gain, clamp)

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('act', [1, 2, 3], ids=['linear', 'relu', 'lrelu'])
@pytest.mark.parametrize('shape,dim', BIAS_ACT_SHAPES, ids=lambda v: str(v))
def test_plugin_bias_act_equals_the_aten_passes_bit_for_bit(dtype, act, shape, dim):
    # Both modes, with and without bias, gain and clamp; x includes signed zeros and infinities.
    plugin = built_cpu_plugin()
    gen = torch.Generator().manual_seed(act)
    x = torch.randn(shape, dtype=dtype, generator=gen) * 2
    if x.numel():
        x.view(-1)[:4] = torch.tensor([-0.0, 0.0, float('inf'), -float('inf')], dtype=dtype)
    dy = torch.randn(shape, dtype=dtype, generator=gen)
    e = x.new_empty([0])
    for b in (e, torch.randn([shape[dim]], dtype=dtype, generator=gen)):
        for gain, clamp in ((1.0, -1.0), (np.sqrt(2), 0.7)):
            y_ref = _aten_bias_act(x, b, e, 0, dim, act, 0.2, gain, clamp)
            dx_ref = _aten_bias_act(dy, e, y_ref, 1, dim, act, 0.2, gain, clamp)
            y, code = plugin.bias_act(x, b, e, 0, dim, act, 0.2, gain, clamp)
            dx, code1 = plugin.bias_act(dy, e, y_ref, 1, dim, act, 0.2, gain, clamp)
            bits = torch.int32 if dtype == torch.float32 else torch.int64
            assert code == code1 == 0
            assert torch.equal(y.view(bits), y_ref.view(bits)), (b.numel(), gain, clamp)
            assert torch.equal(dx.view(bits), dx_ref.view(bits)), (b.numel(), gain, clamp)

@pytest.mark.parametrize('what', ['tanh', 'grad 2', 'float16', 'strided'])
def test_plugin_bias_act_declines_what_it_does_not_handle(what):
    plugin = built_cpu_plugin()
    x, e = torch.randn([2, 3, 4]), torch.empty([0])
    act, grad = (4 if what == 'tanh' else 3), (2 if what == 'grad 2' else 0)
    if what == 'float16':
        x = x.half()
    if what == 'strided':
        x = x.transpose(1, 2)
    assert plugin.bias_act(x, e.to(x.dtype), e.to(x.dtype), grad, 1, act, 0.2, 1.0, -1.0)[1] == -1

def test_plugin_bias_act_is_taken_in_training_and_gives_the_aten_gradients(monkeypatch):
    built_cpu_plugin()
    calls = record_plugin_calls(monkeypatch, 'bias_act')
    x = torch.randn([4, 6, 9, 9], requires_grad=True)
    b = torch.randn([6], requires_grad=True)
    y = bias_act.bias_act(x, b, act='lrelu', clamp=1.5)
    dx, db = torch.autograd.grad(y.square().sum(), [x, b])
    assert calls == [0, 0] # Forward, then the derivative.
    with cpu_kernels.plugin_loader(lambda: None):
        y_aten = bias_act.bias_act(x, b, act='lrelu', clamp=1.5)
        dx_aten, db_aten = torch.autograd.grad(y_aten.square().sum(), [x, b])
    assert torch.equal(y, y_aten) and torch.equal(dx, dx_aten) and torch.equal(db, db_aten)

def test_plugin_bias_act_results_do_not_depend_on_the_thread_count():
    plugin = built_cpu_plugin()
    x, b, e = torch.randn([8, 32, 20, 20]), torch.randn([32]), torch.empty([0])
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = plugin.bias_act(x, b, e, 0, 1, 3, 0.2, 1.4, 1.0)[0]
        torch.set_num_threads(2)
        y2 = plugin.bias_act(x, b, e, 0, 1, 3, 0.2, 1.4, 1.0)[0]
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(y1, y2)

#----------------------------------------------------------------------------
# Build policy.

def test_isa_flags_follow_the_cpu(tmp_path, monkeypatch):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n')
    monkeypatch.setattr(cpu_kernels.platform, 'machine', lambda: 'x86_64')
    assert cpu_kernels.isa_flags(str(info)) == ('x86_64-avx2', ['-mavx2', '-mfma'])
    info.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx\n')
    assert cpu_kernels.isa_flags(str(info)) == ('x86_64', [])
    monkeypatch.setattr(cpu_kernels.platform, 'machine', lambda: 'aarch64')
    assert cpu_kernels.isa_flags(str(tmp_path / 'missing')) == ('aarch64', [])

def test_build_is_keyed_by_the_instruction_set_and_needs_no_cuda(tmp_path, monkeypatch):
    from torch.utils import cpp_extension
    seen = []
    monkeypatch.setattr(cpp_extension, 'load', lambda **kw: seen.append(kw) or 'module')
    monkeypatch.setattr(cpp_extension, 'CUDA_HOME', None)
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path))
    monkeypatch.setattr(cpu_kernels, '_loaded', {})
    monkeypatch.setattr(cpu_kernels, 'isa_flags', lambda: ('x86_64-avx2', ['-mavx2', '-mfma']))
    assert cpu_kernels.load_cpu_plugin() == 'module'
    assert cpu_kernels.load_cpu_plugin() == 'module' and len(seen) == 1 # One build attempt per process.
    kw = seen[0]
    assert kw['name'] == 'fundus_cpu_ops' and kw['build_directory'].endswith('-x86_64-avx2')
    assert '-mavx2' in kw['extra_cflags'] and '-fopenmp' in kw['extra_cflags'] and kw['extra_ldflags'] == ['-fopenmp']

def test_failed_build_warns_once_and_training_takes_the_blocked_path(monkeypatch):
    from torch.utils import cpp_extension
    def fail(**kw):
        raise RuntimeError('simulated compiler failure')
    monkeypatch.setattr(cpp_extension, 'load', fail)
    monkeypatch.setattr(cpu_kernels, '_loaded', {})
    monkeypatch.delenv(custom_ops.STRICT_ENV, raising=False)
    fu, fd = _filters()
    x = torch.randn([1, 2, 12, 12], dtype=torch.float64, requires_grad=True)
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, **kw)
        y.sum().backward()
        filtered_lrelu.filtered_lrelu(x.detach(), fu, fd, **kw)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and 'CPU plugin' in messages[0] and 'simulated compiler failure' in messages[0]
    y_ref = filtered_lrelu.filtered_lrelu(x, fu, fd, impl='ref', **kw)
    dx_ref, = torch.autograd.grad(y_ref.sum(), x)
    assert (y - y_ref).abs().max().item() <= 1e-12 and (x.grad - dx_ref).abs().max().item() <= 1e-12

def test_failed_build_raises_in_strict_mode(monkeypatch):
    from torch.utils import cpp_extension
    monkeypatch.setattr(cpp_extension, 'load', lambda **kw: (_ for _ in ()).throw(RuntimeError('no compiler')))
    monkeypatch.setattr(cpu_kernels, '_loaded', {})
    monkeypatch.setenv(custom_ops.STRICT_ENV, '1')
    with pytest.raises(RuntimeError, match='CPU plugin .*fundus_cpu_ops.* failed'):
        cpu_kernels.load_cpu_plugin()

def test_plugin_loader_context_restores_the_built_plugin():
    plugin = built_cpu_plugin()
    with cpu_kernels.plugin_loader(lambda: None):
        assert cpu_kernels.load_cpu_plugin() is None
        with pytest.raises(ValueError):
            with cpu_kernels.plugin_loader(lambda: 'inner'):
                assert cpu_kernels.load_cpu_plugin() == 'inner'
                raise ValueError('inside')
        assert cpu_kernels.load_cpu_plugin() is None
    assert cpu_kernels.load_cpu_plugin() is plugin

#----------------------------------------------------------------------------

def test_bench_script_times_every_separable_call_of_the_demo_generator():
    from click.testing import CliRunner
    from bench import cpu_plugin as bench_cpu_plugin
    built_cpu_plugin()
    result = CliRunner().invoke(bench_cpu_plugin.main, ['--batch=1', '--reps=1', '--threads=1'])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith('| [1, ')]
    assert len(rows) == 6 # The demo generator's six separable calls (the RGB layer has no filters).
    assert 'forward+backward: blocked' in result.output

def test_bench_script_times_the_discriminators_upfirdn2d_calls():
    # Forward and adjoint calls of one D step, grouped by geometry; the plugin loader is restored after.
    from click.testing import CliRunner
    from bench import cpu_plugin as bench_cpu_plugin
    plugin = built_cpu_plugin()
    result = CliRunner().invoke(bench_cpu_plugin.main, ['--op=upfirdn2d', '--batch=1', '--reps=1', '--threads=1'])
    assert result.exit_code == 0, result.output
    assert cpu_kernels.load_cpu_plugin() is plugin
    rows = [line.split('|') for line in result.output.splitlines() if line.startswith('| [1, ')]
    factors = {row[3].strip() for row in rows}
    assert {'1x1/2x2', '2x2/1x1'} <= factors # D's downsampling forward and its adjoint (an upsampling).
    total = next(line for line in result.output.splitlines() if line.startswith('| all '))
    assert int(total.split()[2]) == sum(int(row[4]) for row in rows)
    assert 'D forward+backward upfirdn2d: without plugin' in result.output

def test_bench_backward_call_is_the_functions_backward():
    # The read-mode call that bench/cpu_plugin.py times is the one the sign-tensor Function makes: with it,
    # the kernel's dx equals autograd's.
    from bench import cpu_plugin as bench_cpu_plugin
    fu, fd = _filters(24, 12)
    x = torch.randn([1, 2, 21, 26], dtype=torch.float64, requires_grad=True)
    kw = dict(up=4, down=2, padding=[6, 3, 6, 3], clamp=256)
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, **kw)
    args = _args(x.detach(), fu, fd, up=4, down=2, padding=(6, 3, 6, 3), clamp=256.0)
    y_k, so, _ = filtered_lrelu._filtered_lrelu_blocked_kernel(*args)
    back = bench_cpu_plugin.backward_args(args, y_k, so)
    dx_k, _, _ = filtered_lrelu._filtered_lrelu_blocked_kernel(*back)
    dx, = torch.autograd.grad(y, x, back[0])
    assert (dx_k - dx).abs().max().item() <= 1e-12 * dx.abs().max().item()
