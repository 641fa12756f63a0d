# GAN losses. StyleGAN2Loss computes, for one training phase and one micro-batch, the named scalar loss
# terms; the training loop sums them and calls backward(). Nothing here steps an optimiser.
#
#   G main:  softplus(-D(G(z)))                          non-saturating logistic (Goodfellow et al. 2014)
#   D main:  softplus(D(G(z))) + softplus(-D(x))
#   R1:      gamma/2 * |dD(x)/dx|^2 on reals              Mescheder et al. 2018
#   PL:      (|J_w^T y| - a)^2, stylegan2 only            Karras et al. 2020 (StyleGAN2), Sec. 4
# Regularisers run lazily: the loop calls the 'reg' phase every `interval` minibatches with gain = interval.
# For stylegan3-r, both reals and fakes are blurred before D with a Gaussian whose sigma fades to zero.

import numpy as np
import torch

import dnnlib
from torch_utils import distributed, training_stats
from torch_utils.ops.upfirdn2d import filter2d

#----------------------------------------------------------------------------

PHASES = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')

# Loss parts each phase evaluates: G's adversarial term, G's path-length term, D's adversarial terms
# (fakes and reals) and D's R1 term. A part whose weight is zero is dropped at call time.
_PHASE_PARTS = {
    'Gmain': {'G_adv'},
    'Greg':  {'G_pl'},
    'Gboth': {'G_adv', 'G_pl'},
    'Dmain': {'D_adv'},
    'Dreg':  {'D_r1'},
    'Dboth': {'D_adv', 'D_r1'},
}

class Loss:
    def phase_losses(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg, generator=None):
        raise NotImplementedError()

#----------------------------------------------------------------------------

class StyleGAN2Loss(Loss):
    def __init__(self, device, G, D,
        augment_pipe        = None,     # AugmentPipe applied to every D input, or None.
        r1_gamma            = 10,       # R1 weight gamma; 0 disables R1.
        style_mixing_prob   = 0,        # Probability of mixing two latents in a batch (stylegan2: 0.9).
        pl_weight           = 0,        # Path-length weight; 0 disables PL (stylegan2: 2).
        pl_batch_shrink     = 2,        # PL runs on batch // pl_batch_shrink samples.
        pl_decay            = 0.01,     # Decay of the running PL mean.
        pl_no_weight_grad   = False,    # Skip weight gradients inside the PL gradient computation.
        blur_init_sigma     = 0,        # Initial D-input blur sigma in pixels; 0 disables (stylegan3-r: 10).
        blur_fade_kimg      = 0,        # Blur fades linearly to zero over this many kimg.
    ):
        super().__init__()
        self.device = torch.device(device)
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.pl_no_weight_grad = bool(pl_no_weight_grad)
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.pl_mean = torch.zeros([], device=self.device)

    def state_dict(self):
        return dict(pl_mean=self.pl_mean.detach().cpu().clone())

    def load_state_dict(self, state):
        self.pl_mean = state['pl_mean'].to(self.device).clone()

    def blur_sigma(self, cur_nimg):
        if self.blur_fade_kimg <= 0:
            return self.blur_init_sigma
        return max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    #------------------------------------------------------------------------

    def run_G(self, z, c, update_emas=False, generator=None):
        ws = self.G.mapping(z, c, update_emas=update_emas)                  # [N, num_ws, w_dim]
        if self.style_mixing_prob != 0:
            ws = self._mix_styles(ws, z, c, update_emas, generator)
        return self.G.synthesis(ws, update_emas=update_emas), ws

    def _mix_styles(self, ws, z, c, update_emas, generator):
        # With probability style_mixing_prob, layers from a random cutoff on take a second latent's styles.
        num_ws = ws.shape[1]
        draws = torch.rand([2], generator=generator, device=_gen_device(generator)).to(ws.device)
        cutoff = 1 + int(draws[0] * (num_ws - 1)) if float(draws[1]) < self.style_mixing_prob else num_ws
        z2 = torch.randn(z.shape, generator=generator, device=_gen_device(generator)).to(z.device, z.dtype)
        ws2 = self.G.mapping(z2, c, update_emas=False)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def run_D(self, img, c, blur_sigma=0, update_emas=False, generator=None):
        img = _gaussian_blur(img, blur_sigma)
        augment = self.augment_pipe
        if augment is not None:
            img = augment(img, generator=generator)
        return self.D(img, c, update_emas=update_emas)

    #------------------------------------------------------------------------

    def phase_losses(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg, generator=None):
        """Loss terms of one phase on one micro-batch.

        Args:
            phase:     One of PHASES.
            real_img:  [N, C, H, W] reals in [-1, 1].
            real_c:    [N, c_dim] labels of the reals.
            gen_z:     [N, z_dim] latents for the fakes.
            gen_c:     [N, c_dim] labels for the fakes.
            gain:      Multiplier of every term (the lazy-regularisation interval for reg phases).
            cur_nimg:  Images shown so far (drives the blur fade).
            generator: torch.Generator for style mixing, PL noise and augmentation.
        Returns:
            EasyDict(terms=EasyDict of named scalar tensors to sum and backpropagate,
                     real_logits=[N, 1] D outputs on reals or None).
        """
        if phase not in PHASES:
            raise ValueError(f'StyleGAN2Loss: unknown phase {phase!r}; expected one of {PHASES}')
        parts = set(_PHASE_PARTS[phase])
        if self.pl_weight == 0:
            parts.discard('G_pl')
        if self.r1_gamma == 0:
            parts.discard('D_r1')
        blur_sigma = self.blur_sigma(cur_nimg)
        terms = dnnlib.EasyDict()
        real_logits = None
        if 'G_adv' in parts:
            terms.Gmain = self._G_main(gen_z, gen_c, blur_sigma, generator).mul(gain)
        if 'G_pl' in parts:
            terms.Gpl = self._G_pl(gen_z, gen_c, generator).mul(gain)
        loss_Dgen = None
        if 'D_adv' in parts:
            loss_Dgen = self._D_gen(gen_z, gen_c, blur_sigma, generator)        # [N]
            terms.Dgen = loss_Dgen.mean().mul(gain)
        if parts & {'D_adv', 'D_r1'}:
            real_terms, real_logits, loss_Dreal = self._D_real('D_adv' in parts, 'D_r1' in parts,
                                                               real_img, real_c, blur_sigma, generator)
            for name, value in real_terms.items():
                terms[name] = value.mul(gain)
            if loss_Dgen is not None and loss_Dreal is not None and loss_Dgen.shape == loss_Dreal.shape:
                training_stats.report('Loss/D/loss', loss_Dgen.detach() + loss_Dreal.detach()) # Both halves, per sample.
        return dnnlib.EasyDict(terms=terms, real_logits=real_logits)

    def _G_main(self, gen_z, gen_c, blur_sigma, generator):
        # Non-saturating logistic loss: minimise softplus(-D(G(z))).
        gen_img, _gen_ws = self.run_G(gen_z, gen_c, generator=generator)
        gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, generator=generator)
        _report_logits('fake', gen_logits)
        loss = torch.nn.functional.softplus(-gen_logits)
        training_stats.report('Loss/G/loss', loss)
        return loss.mean()

    def _G_pl(self, gen_z, gen_c, generator):
        # Path-length regularisation: the Jacobian-vector norm |J_w^T y| should stay near its running mean.
        from torch_utils.ops.conv2d_gradfix import no_weight_gradients
        batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch], generator=generator)
        noise = torch.randn(gen_img.shape, generator=generator, device=_gen_device(generator)).to(gen_img.device, gen_img.dtype)
        noise = noise / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        with no_weight_gradients(self.pl_no_weight_grad):
            (pl_grads,) = torch.autograd.grad((gen_img * noise).sum(), gen_ws, create_graph=True)   # [N, num_ws, w_dim]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()                 # [N]
        batch_mean = distributed.all_reduce_mean_(pl_lengths.mean().detach().clone())
        self.pl_mean = self.pl_mean.lerp(batch_mean, self.pl_decay).detach()
        training_stats.report('Loss/pl_penalty', (pl_lengths - self.pl_mean).square())
        loss = (pl_lengths - self.pl_mean).square() * self.pl_weight
        training_stats.report('Loss/G/reg', loss)
        return loss.mean()

    def _D_gen(self, gen_z, gen_c, blur_sigma, generator):
        # Push D(G(z)) down. G runs with update_emas=True so its running averages track training.
        gen_img, _gen_ws = self.run_G(gen_z, gen_c, update_emas=True, generator=generator)
        gen_logits = self.run_D(gen_img.detach(), gen_c, blur_sigma=blur_sigma, update_emas=True, generator=generator)
        _report_logits('fake', gen_logits)
        return torch.nn.functional.softplus(gen_logits).flatten()

    def _D_real(self, do_main, do_r1, real_img, real_c, blur_sigma, generator):
        # One D pass on reals serves both the main term and R1 (gradient w.r.t. the unblurred, unaugmented x).
        from torch_utils.ops.conv2d_gradfix import no_weight_gradients
        x = real_img.detach().requires_grad_(do_r1)
        real_logits = self.run_D(x, real_c, blur_sigma=blur_sigma, generator=generator)
        _report_logits('real', real_logits)
        terms = dnnlib.EasyDict()
        loss_Dreal = None
        if do_main:
            loss_Dreal = torch.nn.functional.softplus(-real_logits).flatten()  # [N]
            terms.Dreal = loss_Dreal.mean()
        if do_r1:
            with no_weight_gradients():
                (dx,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)  # [N, C, H, W]
            penalty = dx.square().sum([1, 2, 3])                               # [N]
            training_stats.report('Loss/r1_penalty', penalty)
            weighted = penalty * (0.5 * self.r1_gamma)
            training_stats.report('Loss/D/reg', weighted)
            terms.Dr1 = weighted.mean()
        return terms, real_logits.detach(), loss_Dreal

#----------------------------------------------------------------------------

def _gen_device(generator):
    return generator.device if generator is not None else torch.device('cpu')

def _report_logits(kind, logits):
    # D's raw outputs and their signs; ADA reads the mean sign on reals ('Loss/signs/real').
    for stat, value in (('scores', logits), ('signs', logits.sign())):
        training_stats.report(f'Loss/{stat}/{kind}', value)

def _gaussian_blur(img, sigma):
    # Separable Gaussian exp(-x^2 / (2 s^2)) with s = sigma / sqrt(2 ln 2), written with base 2 as
    # 2^(-(x/sigma)^2), truncated at 3 sigma and normalised to unit sum. sigma < 1/3 is a no-op.
    radius = int(np.floor(sigma * 3))
    if radius <= 0:
        return img
    taps = torch.exp2(-(torch.arange(-radius, radius + 1, device=img.device) / sigma).square())   # [2 * radius + 1]
    return filter2d(img, taps / taps.sum())

#----------------------------------------------------------------------------
