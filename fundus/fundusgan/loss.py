# The reconstruction loss of pSp / FundusGAN:
#     total = l2 * MSE(x, G(w)) + lpips * LPIPS_VGG(x, G(w)) + wreg * mean((w - w_avg)^2) [+ adv * softplus(-D(G(w)))]
# Defaults are pSp's (l2 1.0, lpips 0.8, w-norm 0.005). pSp's w-norm is the L2 norm of the whole
# [num_ws, w_dim] offset; we use the mean squared offset per element (the issue's ||w - w_avg||^2,
# normalised by num_ws * w_dim), so one weight means the same at every resolution and w_dim.
# The optional adversarial term (off by default) is the non-saturating generator loss against our
# StyleGAN2 discriminator; the paper does not say whether it has one (docs/fundusgan.md).

import torch
from torch.nn import functional as F

import dnnlib

#----------------------------------------------------------------------------

class ReconstructionLoss:
    def __init__(self,
        l2          = 1.0,      # Weight of the pixel MSE (images in [-1, 1]).
        lpips       = 0.8,      # Weight of LPIPS; needs lpips_fn when > 0.
        wreg        = 0.005,    # Weight of mean((w - w_avg)^2).
        adv         = 0.0,      # Weight of the non-saturating adversarial term; needs D when > 0.
        lpips_fn    = None,     # Callable (x0, x1) -> [N], e.g. paired.lpips_model('vgg').
        D           = None,     # Discriminator D(img, c) -> [N, 1] logits.
    ):
        if lpips > 0 and lpips_fn is None:
            raise ValueError('ReconstructionLoss: lpips > 0 needs lpips_fn')
        if adv > 0 and D is None:
            raise ValueError('ReconstructionLoss: adv > 0 needs a discriminator')
        self.l2, self.lpips, self.wreg, self.adv = l2, lpips, wreg, adv
        self.lpips_fn, self.D = lpips_fn, D

    def __call__(self, real, fake, ws, w_avg):
        """Named scalar terms (weighted sum in 'total'); real, fake: [N, C, R, R]; ws: [N, num_ws, w_dim]."""
        terms = dnnlib.EasyDict()
        terms.l2 = F.mse_loss(fake, real)
        terms.lpips = self.lpips_fn(fake, real).mean() if self.lpips > 0 else fake.new_zeros([])
        terms.wreg = (ws - w_avg[None, None, :]).square().mean()
        terms.adv = F.softplus(-self.D(fake, None)).mean() if self.adv > 0 else fake.new_zeros([])
        terms.total = self.l2 * terms.l2 + self.lpips * terms.lpips + self.wreg * terms.wreg + self.adv * terms.adv
        return terms

def discriminator_loss(D, real, fake):
    """Non-saturating D loss on one batch (no R1: the adversarial term is an ablation switch)."""
    return (F.softplus(D(fake.detach(), None)) + F.softplus(-D(real, None))).mean()

#----------------------------------------------------------------------------
