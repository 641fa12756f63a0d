# Network-level check of the CPU training path of filtered_lrelu (docs/ops.md, "CPU training"): the
# gradients of every parameter of a tiny StyleGAN3 generator equal those of native autograd through the
# reference filtered_lrelu, which is what the whole network ran before; a short optimisation gives the
# same loss curve with the CPU training Functions of filtered_lrelu and modulated_conv2d as without.

import pytest
import torch

from tests.support import tiny_configs as tc
from torch_utils.ops import filtered_lrelu, modulated_conv2d

#----------------------------------------------------------------------------

def _param_grads(G, z):
    G.zero_grad(set_to_none=True)
    img = G(z, None, noise_mode='const')
    img.square().mean().backward()
    return img.detach(), {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}

@pytest.mark.parametrize('kind', ['stylegan3-t', 'stylegan3-r'])
def test_generator_gradients_equal_the_reference_path(kind, monkeypatch):
    kwargs = tc.sg3_generator_kwargs() if kind == 'stylegan3-t' else tc.sg3r_generator_kwargs()
    torch.manual_seed(0)
    G = tc.build(kwargs, conv_clamp=256)
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(1))
    applied = []
    orig = filtered_lrelu._filtered_lrelu_cpu_kernel
    monkeypatch.setattr(filtered_lrelu.CpuKernel, 'filtered_lrelu', staticmethod(lambda *a: applied.append(1) or orig(*a)))
    img, ours = _param_grads(G, z)
    assert len(applied) == 2 * len(G.synthesis.layer_names) # Every layer, forward and backward.
    monkeypatch.setattr(filtered_lrelu, '_cpu_training', lambda *a: False) # Native autograd through the reference.
    img_ref, ref = _param_grads(G, z)
    assert (img - img_ref).abs().max().item() <= 1e-6 # Measured: equal.
    assert ours.keys() == ref.keys() and len(ours) == len(list(G.parameters()))
    for name in ref:
        scale = ref[name].abs().max().item()
        # Measured: at most 4.3e-7 relative to the largest gradient of the tensor (-t), 5.3e-7 (-r).
        assert (ours[name] - ref[name]).abs().max().item() <= 1e-5 * scale + 1e-12, name

def _loss_curve(steps=6):
    torch.manual_seed(0)
    G = tc.build(tc.sg3_generator_kwargs(), conv_clamp=256)
    opt = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(2)
    z = torch.randn([4, G.z_dim], generator=gen)
    target = torch.randn([4, 3, 16, 16], generator=gen)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = (G(z, None) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses

@pytest.mark.parametrize('reference', ['filtered_lrelu', 'modulated_conv2d', 'both'])
def test_short_optimisation_gives_the_reference_paths_loss_curve(reference, monkeypatch):
    # The CPU training Functions against native autograd through the reference of one op or of both.
    ours = _loss_curve()
    for name, module in (('filtered_lrelu', filtered_lrelu), ('modulated_conv2d', modulated_conv2d)):
        if reference in (name, 'both'):
            monkeypatch.setattr(module, '_cpu_training', lambda *a: False)
    ref = _loss_curve()
    assert ours[-1] < ours[0] # The run learns something.
    # Measured over the six steps (loss 1.004 -> 0.973): 6.1e-8 relative (filtered_lrelu's reference),
    # 2.0e-6 (modulated_conv2d's) and 0 (both): rounding differences carried through Adam's steps.
    assert max(abs(a - b) / b for a, b in zip(ours, ref)) <= 1e-5

#----------------------------------------------------------------------------
