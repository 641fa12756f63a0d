# Network-level check of the CPU training paths of bias_act and upfirdn2d (docs/ops.md, "CPU training of
# bias_act and upfirdn2d") in the discriminator, through the loss's own D-on-reals pass: the logistic term
# and the R1 penalty (a double backward under no_weight_gradients) give every parameter of a tiny
# conditional discriminator the gradient that native autograd through the references gives.

import pytest
import torch
import torch.nn.functional as F

from tests.support import tiny_configs as tc
from torch_utils.ops import bias_act, upfirdn2d
from training.loss import StyleGAN2Loss

#----------------------------------------------------------------------------

def _param_grads(D, term, img, c):
    # One term of StyleGAN2Loss._D_real (Dreal: logistic on reals; Dr1: the R1 penalty), backpropagated.
    loss = StyleGAN2Loss('cpu', G=None, D=D, r1_gamma=1)
    D.zero_grad(set_to_none=True)
    terms, _, _ = loss._D_real(term == 'Dreal', term == 'Dr1', img, c, blur_sigma=0, generator=None)
    terms[term].backward()
    return terms[term].item(), {name: p.grad.clone() for name, p in D.named_parameters() if p.grad is not None}

def _counting(monkeypatch, module):
    # Wraps module._cpu_training; returns the list of calls that took the CPU path.
    taken, orig = [], module._cpu_training
    def counted(*args):
        use = orig(*args)
        if use:
            taken.append(1)
        return use
    monkeypatch.setattr(module, '_cpu_training', counted)
    return taken

@pytest.mark.parametrize('term', ['Dreal', 'Dr1'])
def test_discriminator_gradients_equal_the_reference_paths(term, monkeypatch):
    torch.manual_seed(0)
    D = tc.build(tc.sg2_discriminator_kwargs(), c_dim=5) # float32: the blocks cast to it.
    gen = torch.Generator().manual_seed(1)
    img = torch.rand([4, 3, tc.TINY_RESOLUTION, tc.TINY_RESOLUTION], generator=gen) * 2 - 1
    c = F.one_hot(torch.tensor([0, 2, 4, 1]), 5).float()
    with monkeypatch.context() as m:
        taken = [_counting(m, bias_act), _counting(m, upfirdn2d)]
        loss, ours = _param_grads(D, term, img, c)
        assert all(taken) # Both ops took their CPU training path.
    with monkeypatch.context() as m:
        for module in (bias_act, upfirdn2d):
            m.setattr(module, '_cpu_training', lambda *a: False) # Native autograd through the references.
        loss_ref, ref = _param_grads(D, term, img, c)
    assert abs(loss - loss_ref) <= 1e-6 * abs(loss_ref)
    assert ours.keys() == ref.keys() and len(ref) >= len(list(D.parameters())) - 1
    for name in ref:
        scale = ref[name].abs().max().item()
        # Measured: at most 6.9e-7 (Dreal) and 2.5e-6 (Dr1) relative to the tensor's largest gradient.
        assert (ours[name] - ref[name]).abs().max().item() <= 1e-5 * scale + 1e-12, name

#----------------------------------------------------------------------------
