# Network-level check of the recomputing modulated-convolution Function (docs/ops.md, "Modulated
# convolution"): tiny generators' parameter gradients, first and second order, equal those of native
# autograd through the reference op, which is what the networks ran before.

import pytest
import torch

from tests.support import tiny_configs as tc
from torch_utils.ops import modulated_conv2d as mc

#----------------------------------------------------------------------------

def _count_function_calls(monkeypatch):
    # Calls that take the Function; the list grows by one per call.
    taken = []
    orig = mc._cpu_training
    monkeypatch.setattr(mc, '_cpu_training', lambda *a: orig(*a) and (taken.append(1) or True))
    return taken

def _param_grads(G, z, **kwargs):
    G.zero_grad(set_to_none=True)
    img = G(z, None, noise_mode='const', **kwargs)
    img.square().mean().backward()
    return img.detach(), {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}

def _path_length_grads(G, z):
    # The path-length regulariser's double backward: d(img . y)/d ws with create_graph, then the
    # backward of its squared norm into every parameter.
    G.zero_grad(set_to_none=True)
    ws = G.mapping(z, None)
    img = G.synthesis(ws, noise_mode='const')
    y = torch.randn(img.shape, generator=torch.Generator().manual_seed(5))
    (g,) = torch.autograd.grad((img * y).sum(), [ws], create_graph=True)
    g.square().sum().backward()
    return {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}

def _assert_close(ours, ref, rel):
    assert ours.keys() == ref.keys()
    for name in ref:
        scale = ref[name].abs().max().item()
        assert (ours[name] - ref[name]).abs().max().item() <= rel * scale + 1e-12, name

def _sg3_generator():
    torch.manual_seed(0)
    G = tc.build(tc.sg3_generator_kwargs(), conv_clamp=256)
    return G, torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(1))

#----------------------------------------------------------------------------

def test_sg3_generator_gradients_equal_the_reference_path(monkeypatch):
    G, z = _sg3_generator()
    taken = _count_function_calls(monkeypatch)
    img, ours = _param_grads(G, z)
    assert len(taken) == len(G.synthesis.layer_names) # Every synthesis layer.
    monkeypatch.setattr(mc, '_cpu_training', lambda *a: False) # Native autograd through the reference.
    img_ref, ref = _param_grads(G, z)
    assert torch.equal(img, img_ref)
    assert len(ours) == len(list(G.parameters()))
    # Measured: at most 1.4e-6 relative. Both are fp32 sums in different orders (the kernels' gradient
    # by tap GEMMs and a closed-form chain); tests/ops/test_modulated_conv2d.py bounds both against fp64.
    _assert_close(ours, ref, rel=3e-6)

def test_sg3_generator_double_backward_equals_the_reference_path(monkeypatch):
    G, z = _sg3_generator()
    ours = _path_length_grads(G, z)
    monkeypatch.setattr(mc, '_cpu_training', lambda *a: False)
    ref = _path_length_grads(G, z)
    # Every parameter but the ToRGB bias, which adds a constant to img and so drops out of d img / d ws.
    torgb_bias = f'synthesis.{G.synthesis.layer_names[-1]}.bias'
    assert set(ours) == {name for name, _ in G.named_parameters()} - {torgb_bias}
    _assert_close(ours, ref, rel=1e-5) # Measured: at most 7.8e-7 relative to the largest gradient of the tensor.

@pytest.mark.parametrize('fused_modconv', [True, False])
def test_sg2_generator_gradients_equal_the_reference_path(fused_modconv, monkeypatch):
    # Fused: the layers without upsampling (conv1 of each block, ToRGB) take the Function, the
    # upsampling conv0 layers keep native autograd; unfused never takes it.
    torch.manual_seed(0)
    G = tc.build(tc.sg2_generator_kwargs())
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(1))
    taken = _count_function_calls(monkeypatch)
    img, ours = _param_grads(G, z, fused_modconv=fused_modconv)
    blocks = len(G.synthesis.block_resolutions)
    assert len(taken) == (2 * blocks if fused_modconv else 0) # conv1 + torgb per block (b4 has no conv0).
    monkeypatch.setattr(mc, '_cpu_training', lambda *a: False)
    img_ref, ref = _param_grads(G, z, fused_modconv=fused_modconv)
    assert torch.equal(img, img_ref)
    _assert_close(ours, ref, rel=3e-6) # Measured: at most 7.0e-7 relative (fused; unfused never takes the Function).

#----------------------------------------------------------------------------
