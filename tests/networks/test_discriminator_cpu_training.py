# Network-level check of the CPU training paths of bias_act and upfirdn2d (docs/ops.md, "CPU training")
# in the discriminator, as the loss uses it: the logistic term and the R1 penalty (a double backward
# taken under no_weight_gradients, as training/loss.py does) give every parameter of a tiny conditional
# discriminator the gradient that native autograd through the references gives.

import torch
import torch.nn.functional as F

from tests.support import tiny_configs as tc
from torch_utils.ops import bias_act, upfirdn2d
from torch_utils.ops.conv2d_gradfix import no_weight_gradients

#----------------------------------------------------------------------------

def _logistic(D, img, c):
    return F.softplus(-D(img, c)).mean()

def _r1(D, img, c):
    x = img.detach().requires_grad_(True)
    logits = D(x, c)
    with no_weight_gradients():
        (dx,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return dx.square().sum([1, 2, 3]).mean()

def _param_grads(D, loss_fn, img, c):
    D.zero_grad(set_to_none=True)
    loss = loss_fn(D, img, c)
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in D.named_parameters() if p.grad is not None}

def _counting(monkeypatch, module):
    # Wraps module._cpu_training; returns the list of its True answers (calls that took the CPU path).
    taken, orig = [], module._cpu_training
    monkeypatch.setattr(module, '_cpu_training', lambda *a: bool(orig(*a)) and (taken.append(1) or True))
    return taken

def test_discriminator_gradients_equal_the_reference_paths(monkeypatch):
    torch.manual_seed(0)
    D = tc.build(tc.sg2_discriminator_kwargs(), c_dim=5) # float32: the blocks cast to it.
    gen = torch.Generator().manual_seed(1)
    img = torch.rand([4, 3, tc.TINY_RESOLUTION, tc.TINY_RESOLUTION], generator=gen) * 2 - 1
    c = F.one_hot(torch.tensor([0, 2, 4, 1]), 5).float()
    for loss_fn in (_logistic, _r1):
        with monkeypatch.context() as m:
            taken = [_counting(m, bias_act), _counting(m, upfirdn2d)]
            loss, ours = _param_grads(D, loss_fn, img, c)
            assert all(taken), loss_fn.__name__ # Both ops took their CPU training path.
        with monkeypatch.context() as m:
            for module in (bias_act, upfirdn2d):
                m.setattr(module, '_cpu_training', lambda *a: False) # Native autograd through the references.
            loss_ref, ref = _param_grads(D, loss_fn, img, c)
        assert abs(loss - loss_ref) <= 1e-6 * abs(loss_ref)
        assert ours.keys() == ref.keys() and len(ref) >= len(list(D.parameters())) - 1, loss_fn.__name__
        for name in ref:
            scale = ref[name].abs().max().item()
            # Measured: at most 6.9e-7 (logistic) and 2.9e-6 (R1) relative to the tensor's largest gradient.
            assert (ours[name] - ref[name]).abs().max().item() <= 1e-5 * scale + 1e-12, f'{loss_fn.__name__}: {name}'

#----------------------------------------------------------------------------
