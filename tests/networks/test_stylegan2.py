# StyleGAN2 generator and the residual discriminator: counts and layout against the upstream facts,
# forward contracts on tiny 16-px networks, Freeze-D, minibatch stddev against a direct computation.

import numpy as np
import pytest
import torch

from tests.support import tiny_configs as tc
from training import networks_stylegan2 as n2

#----------------------------------------------------------------------------

def _latents(seeds, dim=tc.TINY_Z_DIM):
    return torch.cat([torch.from_numpy(np.random.RandomState(s).randn(1, dim)).float() for s in seeds])

def _count(module):
    return sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers())

@pytest.fixture(scope='module')
def tiny_G():
    torch.manual_seed(0)
    return tc.build(tc.sg2_generator_kwargs()).eval()

@pytest.fixture(scope='module')
def tiny_D():
    torch.manual_seed(0)
    return tc.build(tc.sg2_discriminator_kwargs()).eval()

#----------------------------------------------------------------------------
# Full-size counts and layout (construction only).

@pytest.mark.parametrize('res,g_counts,num_ws', [(256, (30034338, 175568), 14), (512, (30276583, 699904), 16)])
def test_generator_parameter_counts_match_upstream(res, g_counts, num_ws):
    G = n2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs=dict(num_layers=8))
    assert _count(G) == g_counts
    assert G.num_ws == num_ws
    assert _count(G.mapping)[0] == 2101248

@pytest.mark.parametrize('res,d_counts,entries', [(256, (28864129, 416), 64), (512, (28982849, 480), 73), (1024, (29012513, 544), 82)])
def test_discriminator_parameter_counts_match_upstream(res, d_counts, entries):
    D = n2.Discriminator(c_dim=0, img_resolution=res, img_channels=3)
    assert _count(D) == d_counts
    assert len(D.state_dict()) == entries

def test_discriminator_state_dict_layout_512():
    sd = n2.Discriminator(c_dim=0, img_resolution=512, img_channels=3).state_dict()
    expect = {
        'b512.resample_filter': [4, 4], 'b512.fromrgb.weight': [64, 3, 1, 1], 'b512.fromrgb.resample_filter': [4, 4],
        'b512.conv0.weight': [64, 64, 3, 3], 'b512.conv1.weight': [128, 64, 3, 3], 'b512.skip.weight': [128, 64, 1, 1],
        'b256.conv1.weight': [256, 128, 3, 3], 'b8.skip.weight': [512, 512, 1, 1],
        'b4.conv.weight': [512, 513, 3, 3], 'b4.fc.weight': [512, 8192], 'b4.out.weight': [1, 512], 'b4.out.bias': [1],
    }
    for name, shape in expect.items():
        assert list(sd[name].shape) == shape, name
    assert 'b512.skip.bias' not in sd and 'b256.fromrgb.weight' not in sd
    assert list(sd)[:5] == ['b512.resample_filter', 'b512.fromrgb.weight', 'b512.fromrgb.bias',
                            'b512.fromrgb.resample_filter', 'b512.conv0.weight']
    f = sd['b512.resample_filter'].numpy()
    ref = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64
    assert np.allclose(f, ref)

#----------------------------------------------------------------------------
# Config validation.

@pytest.mark.parametrize('builder,override,message', [
    (tc.sg2_generator_kwargs, dict(img_resolution=24), 'power of two'),
    (tc.sg2_generator_kwargs, dict(channel_max=0), 'channel_max'),
    (tc.sg2_generator_kwargs, dict(img_channels=0), 'img_channels'),
    (tc.sg2_generator_kwargs, dict(channel_base=8), 'channel_base'),
    (tc.sg2_generator_kwargs, dict(architecture='bogus'), 'architecture'),
    (tc.sg2_generator_kwargs, dict(mapping_kwargs=dict(num_layers=0)), 'num_layers'),
    (tc.sg2_discriminator_kwargs, dict(img_resolution=4), 'power of two >= 8'),
    (tc.sg2_discriminator_kwargs, dict(channel_max=0), 'channel_max'),
    (tc.sg2_discriminator_kwargs, dict(img_channels=0), 'img_channels'),
    (tc.sg2_discriminator_kwargs, dict(epilogue_kwargs=dict(mbstd_group_size=0)), 'mbstd_group_size'),
])
def test_invalid_config_raises_clear_value_error(builder, override, message):
    with pytest.raises(ValueError, match=message):
        tc.build(builder(), **override)

#----------------------------------------------------------------------------
# Generator forward contracts.

def test_generator_shapes_and_finite(tiny_G):
    with torch.no_grad():
        img = tiny_G(_latents([0, 1]), None, noise_mode='const')
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.abs().max() > 1e-3
    assert tiny_G.num_ws == 6
    assert 30000 < _count(tiny_G)[0] < 60000

def test_generator_const_noise_is_deterministic_and_random_noise_is_not(tiny_G):
    G = tc.build(tc.sg2_generator_kwargs()).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.fill_(0.5)
        z = _latents([2])
        a = G(z, None, noise_mode='const')
        b = G(z, None, noise_mode='const')
        c = G(z, None, noise_mode='random')
        d = G(z, None, noise_mode='none')
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-4 and (a - d).abs().max() > 1e-4

def test_generator_batch_invariance(tiny_G):
    with torch.no_grad():
        batch = tiny_G(_latents([5, 6, 7]), None, noise_mode='const')
        single = torch.cat([tiny_G(_latents([s]), None, noise_mode='const') for s in [5, 6, 7]])
    # Unlike SG3 (output x 0.25) this image is not scaled down. fp32, ~7 convs of K = 288 terms summed in other orders:
    # ~7*sqrt(K)*u*max|img| (3.4) = 2.4e-5; measured <= 2.9e-6 over AVX-512/AVX2/SSE kernels and 1/2 threads.
    assert (batch - single).abs().max() < 2.5e-5

def test_fused_and_unfused_modconv_agree(tiny_G):
    z = _latents([3, 4])
    with torch.no_grad():
        a = tiny_G(z, None, noise_mode='const', fused_modconv=True)
        b = tiny_G(z, None, noise_mode='const', fused_modconv=False)
    assert (a - b).abs().max() < 2.5e-5 # Same bound as batch invariance; measured <= 4.8e-6 (AVX2 kernels).

def test_truncation_psi0_gives_w_avg():
    G = tc.build(tc.sg2_generator_kwargs())
    with torch.no_grad():
        G.mapping(_latents([0, 1, 2]), None, update_emas=True)
        ws = G.mapping(_latents([4, 5]), None, truncation_psi=0)
    assert G.mapping.w_avg.abs().max() > 0
    assert torch.equal(ws, G.mapping.w_avg.expand(2, G.num_ws, -1))

def test_conditional_generator_and_discriminator():
    G = tc.build(tc.sg2_generator_kwargs(c_dim=3)).eval()
    D = tc.build(tc.sg2_discriminator_kwargs(c_dim=3)).eval()
    c = torch.eye(3)[[0, 1]]
    with torch.no_grad():
        img = G(_latents([0, 0]), c, noise_mode='const')
        logits = D(img, c)
        swapped = D(img, c.flip(0))
    assert (img[0] - img[1]).abs().max() > 1e-3
    assert logits.shape == (2, 1)
    assert (logits - swapped).abs().max() > 1e-6
    assert list(D.state_dict()['b4.out.weight'].shape) == [32, 32] # cmap_dim = channels at 4x4.

def test_fp16_blocks_run_fp32_on_cpu():
    G = tc.build(tc.sg2_generator_kwargs(num_fp16_res=4, conv_clamp=256)).eval()
    D = tc.build(tc.sg2_discriminator_kwargs(num_fp16_res=4, conv_clamp=256)).eval()
    assert G.synthesis.b16.use_fp16 and D.b16.use_fp16
    z = _latents([0, 1])
    with torch.no_grad():
        img = G(z, None, noise_mode='const')
        assert img.dtype == torch.float32
        assert torch.equal(img, G(z, None, noise_mode='const', force_fp32=True))
        assert D(img, None).dtype == torch.float32

#----------------------------------------------------------------------------
# Discriminator.

def test_discriminator_shapes_and_bad_input(tiny_D):
    img = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        out = tiny_D(img, None)
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match='img'):
        tiny_D(torch.randn(4, 3, 8, 8), None)
    with pytest.raises(ValueError, match='group size'):
        tiny_D(torch.randn(6, 3, 16, 16), None)

def test_minibatch_std_matches_direct_computation():
    layer = n2.MinibatchStdLayer(group_size=2)
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (4, 4, 2, 2) and torch.equal(y[:, :3], x)
    for i in range(4):
        group = x[[i % 2, i % 2 + 2]] # Sample i is in group i mod (N/G).
        std = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(y[i, 3], std.expand(2, 2))

def test_freeze_d_turns_first_layers_into_buffers():
    D = tc.build(tc.sg2_discriminator_kwargs(block_kwargs=dict(freeze_layers=3)))
    params = dict(D.named_parameters())
    assert 'b16.fromrgb.weight' not in params and 'b16.conv0.weight' not in params and 'b16.conv1.weight' not in params
    assert 'b16.skip.weight' in params and 'b8.conv0.weight' in params
    assert 'b16.conv1.weight' in D.state_dict()
    full = tc.build(tc.sg2_discriminator_kwargs())
    assert set(full.state_dict()) == set(D.state_dict())

def test_discriminator_gradients_reach_parameters(tiny_D):
    D = tc.build(tc.sg2_discriminator_kwargs())
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    D(img, None).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    assert img.grad.abs().max() > 0

#----------------------------------------------------------------------------
