# StyleGAN3 generator: schedules, parameter counts and state-dict layout against the upstream facts;
# filter design against SciPy check values; forward contracts on tiny 16-px networks.

import numpy as np
import pytest
import torch

from tests.networks.sg3_schedule_facts import SCHEDULES
from tests.support import tiny_configs as tc
from training import networks_stylegan3 as n3

#----------------------------------------------------------------------------

def _full_kwargs(cfg, res):
    kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), num_fp16_res=4, conv_clamp=256)
    if cfg == 'stylegan3-r':
        kwargs.update(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
    return kwargs

def _build_meta(cfg, res):
    # Full-size construction on the meta device: shapes and counts without allocating 25M weights.
    with torch.device('meta'):
        return n3.Generator(**_full_kwargs(cfg, res))

@pytest.fixture(scope='module')
def tiny_G():
    torch.manual_seed(0)
    return tc.build(tc.sg3_generator_kwargs()).eval()

def _latents(seeds, dim=tc.TINY_Z_DIM):
    return torch.cat([torch.from_numpy(np.random.RandomState(s).randn(1, dim)).float() for s in seeds])

#----------------------------------------------------------------------------
# Schedules, counts and state-dict layout (full size, no forward passes).

@pytest.mark.parametrize('cfg,res', sorted(SCHEDULES.keys()))
def test_layer_schedule_matches_upstream_table(cfg, res):
    G = _build_meta(cfg, res)
    rows = SCHEDULES[(cfg, res)]
    assert G.synthesis.layer_names == [row[0] for row in rows]
    assert G.synthesis.input.channels == rows[0][1]
    assert list(G.synthesis.input.size) == [36, 36]
    assert G.synthesis.input.sampling_rate == 16 and G.synthesis.input.bandwidth == 2
    for row in rows:
        (name, ci, co, si, so, ri, ro, rt, cui, cuo, hi, ho, crit, fp16, up, down, tu, td, pad, df) = row
        L = getattr(G.synthesis, name)
        got = (L.in_channels, L.out_channels, int(L.in_size[0]), int(L.out_size[0]),
               L.in_sampling_rate, L.out_sampling_rate, L.tmp_sampling_rate)
        assert got == (ci, co, si, so, ri, ro, rt), name
        assert np.allclose([L.in_cutoff, L.out_cutoff, L.in_half_width, L.out_half_width], [cui, cuo, hi, ho], atol=6e-5), name
        assert (int(L.is_critically_sampled), int(L.use_fp16), L.up_factor, L.down_factor, L.up_taps, L.down_taps) == (crit, fp16, up, down, tu, td), name
        assert L.padding == pad, name
        if df is None:
            assert L.down_filter is None and L.up_filter is None
        else:
            kind, taps = df
            assert list(L.down_filter.shape) == ([taps, taps] if kind == 'radial' else [taps]), name
            assert list(L.up_filter.shape) == [tu], name
        assert list(L.weight.shape) == [co, ci, L.conv_kernel, L.conv_kernel]
        assert L.conv_kernel == (1 if cfg == 'stylegan3-r' or name == rows[-1][0] else 3)

@pytest.mark.parametrize('cfg,res,params,buffers', [
    ('stylegan3-t', 256, 28472133, 2456), ('stylegan3-t', 512, 24873519, 2468), ('stylegan3-t', 1024, 22313167, 2480),
    ('stylegan3-r', 256, 18816387, 5576), ('stylegan3-r', 512, 16665594, 5588), ('stylegan3-r', 1024, 15093151, 5600),
])
def test_parameter_counts_match_upstream(cfg, res, params, buffers):
    G = _build_meta(cfg, res)
    assert sum(p.numel() for p in G.parameters()) == params
    assert sum(b.numel() for b in G.buffers()) == buffers
    assert sum(p.numel() for p in G.mapping.parameters()) == 525312
    assert G.num_ws == 16 and G.synthesis.num_ws == 16

def test_state_dict_names_order_and_shapes_t512():
    sd = _build_meta('stylegan3-t', 512).state_dict()
    names = list(sd.keys())
    assert len(names) == 114
    assert names[:6] == ['synthesis.input.weight', 'synthesis.input.transform', 'synthesis.input.freqs',
                         'synthesis.input.phases', 'synthesis.input.affine.weight', 'synthesis.input.affine.bias']
    assert names[6:13] == [f'synthesis.L0_36_512.{k}' for k in
                           ['weight', 'bias', 'magnitude_ema', 'up_filter', 'down_filter', 'affine.weight', 'affine.bias']]
    assert names[-5:] == ['mapping.w_avg', 'mapping.fc0.weight', 'mapping.fc0.bias', 'mapping.fc1.weight', 'mapping.fc1.bias']
    assert names[-10:-5] == [f'synthesis.L14_512_3.{k}' for k in ['weight', 'bias', 'magnitude_ema', 'affine.weight', 'affine.bias']]
    expect = {
        'synthesis.input.weight': [512, 512], 'synthesis.input.freqs': [512, 2], 'synthesis.input.transform': [3, 3],
        'synthesis.L2_52_512.up_filter': [24], 'synthesis.L7_148_483.weight': [483, 512, 3, 3],
        'synthesis.L8_276_323.affine.weight': [483, 512], 'synthesis.L13_512_64.magnitude_ema': [],
        'synthesis.L14_512_3.weight': [3, 64, 1, 1], 'synthesis.L14_512_3.affine.bias': [64],
    }
    for name, shape in expect.items():
        assert list(sd[name].shape) == shape, name
    sd_r = _build_meta('stylegan3-r', 512).state_dict()
    assert list(sd_r['synthesis.L11_532_192.down_filter'].shape) == [12, 12]
    assert list(sd_r['synthesis.L12_532_128.down_filter'].shape) == [12]

#----------------------------------------------------------------------------
# Filters and padding: SciPy check values from the facts.

def test_separable_filter_matches_firwin_check_values():
    expect = [0.0007919, 0.01001832, 0.03894952, 0.09241279, 0.15652561, 0.20130186,
              0.20130186, 0.15652561, 0.09241279, 0.03894952, 0.01001832, 0.0007919]
    f = n3.design_lowpass_filter(numtaps=12, cutoff=2, width=12, fs=32)
    assert f.dtype == torch.float32
    assert np.allclose(f.numpy(), expect, atol=1e-7)
    assert n3.design_lowpass_filter(numtaps=1, cutoff=2, width=12, fs=32) is None
    G = tc.build(tc.sg3_generator_kwargs(img_resolution=16, num_layers=4, channel_base=512, margin_size=10))
    assert np.allclose(G.synthesis.L0_36_32.up_filter.numpy(), expect, atol=1e-7)

def test_radial_filter_check_values():
    f = n3.design_lowpass_filter(numtaps=12, cutoff=2, width=12, fs=32, radial=True).numpy()
    assert f.shape == (12, 12)
    assert abs(f.sum() - 1) < 1e-6
    assert np.allclose(f[5:7, 5:7], 0.0387549, atol=1e-7)
    assert abs(f[0, 0] - 8.412e-07) < 1e-9
    assert np.allclose(f, f.T) and np.allclose(f, f[::-1, ::-1])

def test_padding_worked_example():
    # T-512 L0: out 36, down 2, in 36, k 3, up 2, taps 12/12 -> pad_total 17 -> [9, 8].
    assert n3.layer_padding(36, 36, 3, 2, 2, 12, 12) == [9, 8, 9, 8]
    assert n3.layer_padding(276, 256, 3, 2, 2, 12, 12) == [-11, -12, -11, -12]

#----------------------------------------------------------------------------
# Config validation.

@pytest.mark.parametrize('override,message', [
    (dict(num_layers=2), 'num_layers'),
    (dict(num_layers=1, num_critical=2), 'num_layers'),
    (dict(img_resolution=24), 'power of two'),
    (dict(img_resolution=8), 'power of two >= 16'),
    (dict(channel_max=0), 'channel_max'),
    (dict(channel_base=0), 'channel_base'),
    (dict(channel_base=2), 'channel_base'),
    (dict(margin_size=-1), 'margin_size'),
    (dict(img_channels=0), 'img_channels'),
    (dict(conv_kernel=0), 'conv_kernel'),
    (dict(magnitude_ema_beta=1.5), 'magnitude_ema_beta'),
    (dict(mapping_kwargs=dict(num_layers=0)), 'num_layers'),
    (dict(bogus_option=1), 'bogus_option'),
])
def test_invalid_config_raises_clear_value_error(override, message):
    with pytest.raises(ValueError, match=message):
        tc.build(tc.sg3_generator_kwargs(), **override)

#----------------------------------------------------------------------------
# Forward contracts on the tiny network.

def test_output_shape_dtype_and_finite(tiny_G):
    with torch.no_grad():
        img = tiny_G(_latents([0, 1]), None)
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.abs().max() > 1e-3
    assert tiny_G.num_ws == 6 and tiny_G.synthesis.layer_names == ['L0_20_32', 'L1_20_32', 'L2_20_32', 'L3_16_32', 'L4_16_3']

def test_bad_input_shapes_raise(tiny_G):
    with pytest.raises(ValueError, match='z'):
        tiny_G(torch.zeros(2, 7), None)
    with pytest.raises(ValueError, match='ws'):
        tiny_G.synthesis(torch.zeros(2, 5, tc.TINY_W_DIM))
    with pytest.raises(ValueError, match='noise_mode'):
        tiny_G(_latents([0]), None, noise_mode='bogus')

def test_repeat_determinism_is_bitwise(tiny_G):
    z = _latents([3, 4])
    with torch.no_grad():
        a = tiny_G(z, None, noise_mode='const')
        b = tiny_G(z, None, noise_mode='const')
    assert torch.equal(a, b)

def test_batch_invariance_per_seed_latents(tiny_G):
    with torch.no_grad():
        batch = tiny_G(_latents([5, 6, 7]), None)
        single = torch.cat([tiny_G(_latents([s]), None) for s in [5, 6, 7]])
    # fp32 layers summed in other orders at another batch size: ~6*sqrt(288)*u*max|img| (0.4) = 2.4e-6; measured <= 2.8e-7.
    assert (batch - single).abs().max() < 2.5e-6

def test_truncation_psi0_gives_w_avg(tiny_G):
    G = tc.build(tc.sg3_generator_kwargs())
    with torch.no_grad():
        G.mapping(_latents([0, 1, 2, 3]), None, update_emas=True) # Make w_avg non-zero.
        assert G.mapping.w_avg.abs().max() > 0
        ws = G.mapping(_latents([8, 9]), None, truncation_psi=0)
        assert torch.equal(ws, G.mapping.w_avg.expand(2, G.num_ws, -1))
        full = G.mapping(_latents([8, 9]), None)
        ws = G.mapping(_latents([8, 9]), None, truncation_psi=0.5, truncation_cutoff=2)
        assert torch.allclose(ws[:, :2], G.mapping.w_avg + 0.5 * (full[:, :2] - G.mapping.w_avg), atol=1e-6)
        assert torch.equal(ws[:, 2:], full[:, 2:])

def test_update_emas_closed_form():
    G = tc.build(tc.sg3_generator_kwargs(magnitude_ema_beta=0.9))
    z = _latents([1, 2])
    with torch.no_grad():
        w = G.mapping(z, None)[:, 0]
        x0 = G.synthesis.input(w)
        G(z, None, update_emas=True)
    expect_w_avg = 0.002 * w.mean(0) # beta 0.998, starting from zeros
    assert torch.allclose(G.mapping.w_avg, expect_w_avg, atol=1e-7)
    expect_mag = 0.9 * 1 + 0.1 * x0.square().mean()
    assert torch.allclose(G.synthesis.L0_20_32.magnitude_ema, expect_mag, atol=1e-6)

def test_conditioning_changes_output():
    G = tc.build(tc.sg3_generator_kwargs(c_dim=4)).eval()
    z = _latents([0, 0])
    c = torch.eye(4)[[0, 2]]
    with torch.no_grad():
        img = G(z, c)
    assert 'mapping.embed.weight' in G.state_dict()
    assert (img[0] - img[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match='c'):
        G(z, torch.zeros(2, 3))

def test_fp16_layers_run_fp32_on_cpu():
    G = tc.build(tc.sg3_generator_kwargs(num_fp16_res=4, conv_clamp=256)).eval()
    assert any(getattr(G.synthesis, n).use_fp16 for n in G.synthesis.layer_names)
    z = _latents([0, 1])
    with torch.no_grad():
        a = G(z, None)
        b = G(z, None, force_fp32=True)
    assert a.dtype == torch.float32 and torch.equal(a, b)

def test_gradients_reach_every_parameter(tiny_G):
    G = tc.build(tc.sg3_generator_kwargs())
    G(_latents([0, 1]), None).square().sum().backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == [] # Including the input affine (weight_init 0) through its bias path.

#----------------------------------------------------------------------------
# Components against independent computations.

def test_modulated_conv2d_matches_per_sample_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 7, 7, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    s = torch.randn(3, 4, generator=g, dtype=torch.float64)
    gain = torch.tensor(0.7, dtype=torch.float64)
    got = n3.modulated_conv2d(x, w, s, demodulate=True, padding=2, input_gain=gain)
    for n in range(3):
        wn = w * s[n].view(1, 4, 1, 1)
        wn = wn / wn.square().sum(dim=[1, 2, 3], keepdim=True).sqrt() # Scalar pre-normalisations cancel here.
        ref = torch.nn.functional.conv2d(x[n:n + 1] * 0.7, wn, padding=2)
        assert torch.allclose(got[n:n + 1], ref, atol=1e-6)
    got = n3.modulated_conv2d(x, w, s, demodulate=False, padding=1)
    ref = torch.nn.functional.conv2d(x[1:2] * s[1].view(1, 4, 1, 1), w, padding=1)
    assert torch.allclose(got[1:2], ref, atol=1e-10)

def test_fourier_features_closed_form():
    torch.manual_seed(3)
    layer = n3.SynthesisInput(w_dim=8, channels=6, size=12, sampling_rate=16, bandwidth=2)
    with torch.no_grad():
        layer.affine.weight.zero_() # t = (1, 0, 0, 0): identity rotation, no translation.
        layer.transform[:2, 2] = torch.tensor([0.25, -0.5])
        x = layer(torch.randn(1, 8)).numpy()[0] # [C, H, W]
    freqs, phases, weight = layer.freqs.numpy().astype(np.float64), layer.phases.numpy(), layer.weight.detach().numpy()
    pos = (np.arange(12) + 0.5 - 6) / 16 # Pixel centres in units of 1/sampling_rate.
    X, Y = np.meshgrid(pos, pos) # [H, W]
    phase = phases + freqs @ np.array([0.25, -0.5])
    amp = np.clip(1 - (np.linalg.norm(freqs, axis=1) - 2) / (8 - 2), 0, 1)
    feats = np.sin(2 * np.pi * (X[..., None] * freqs[:, 0] + Y[..., None] * freqs[:, 1] + phase)) * amp # [H, W, C]
    ref = (feats @ (weight / np.sqrt(6)).T).transpose(2, 0, 1)
    assert np.abs(x - ref).max() < 1e-5

#----------------------------------------------------------------------------
