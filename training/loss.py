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

#----------------------------------------------------------------------------

PHASES = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')

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
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
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
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            ws = self._mix_styles(ws, z, c, update_emas, generator)
        img = self.G.synthesis(ws, update_emas=update_emas)
        return img, ws

    def _mix_styles(self, ws, z, c, update_emas, generator):
        # With probability style_mixing_prob, layers from a random cutoff on take a second latent's styles.
        num_ws = ws.shape[1]
        draws = torch.rand([2], generator=generator, device=_gen_device(generator)).to(ws.device)
        cutoff = 1 + int(draws[0] * (num_ws - 1)) if float(draws[1]) < self.style_mixing_prob else num_ws
        z2 = torch.randn(z.shape, generator=generator, device=_gen_device(generator)).to(z.device, z.dtype)
        ws2 = self.G.mapping(z2, c, update_emas=False)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def run_D(self, img, c, blur_sigma=0, update_emas=False, generator=None):
        blur_size = int(np.floor(blur_sigma * 3))
        if blur_size > 0:
            from torch_utils.ops import upfirdn2d
            f = torch.arange(-blur_size, blur_size + 1, device=img.device).div(blur_sigma).square().neg().exp2()
            img = upfirdn2d.filter2d(img, f / f.sum())
        if self.augment_pipe is not None:
            img = self.augment_pipe(img, generator=generator)
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
        if self.pl_weight == 0:
            phase = {'Greg': 'none', 'Gboth': 'Gmain'}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {'Dreg': 'none', 'Dboth': 'Dmain'}.get(phase, phase)
        blur_sigma = self.blur_sigma(cur_nimg)
        terms = dnnlib.EasyDict()
        real_logits = None
        if phase in ('Gmain', 'Gboth'):
            terms.Gmain = self._G_main(gen_z, gen_c, blur_sigma, generator).mul(gain)
        if phase in ('Greg', 'Gboth'):
            terms.Gpl = self._G_pl(gen_z, gen_c, generator).mul(gain)
        loss_Dgen = None
        if phase in ('Dmain', 'Dboth'):
            loss_Dgen = self._D_gen(gen_z, gen_c, blur_sigma, generator)        # [N]
            terms.Dgen = loss_Dgen.mean().mul(gain)
        if phase in ('Dmain', 'Dreg', 'Dboth'):
            real_terms, real_logits, loss_Dreal = self._D_real(phase, real_img, real_c, blur_sigma, generator)
            for name, value in real_terms.items():
                terms[name] = value.mul(gain)
            if loss_Dgen is not None and loss_Dreal is not None and loss_Dgen.shape == loss_Dreal.shape:
                training_stats.report('Loss/D/loss', loss_Dgen.detach() + loss_Dreal.detach()) # Both halves, per sample.
        return dnnlib.EasyDict(terms=terms, real_logits=real_logits)

    def _G_main(self, gen_z, gen_c, blur_sigma, generator):
        # Non-saturating logistic loss: minimise softplus(-D(G(z))).
        gen_img, _gen_ws = self.run_G(gen_z, gen_c, generator=generator)
        gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, generator=generator)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        loss = torch.nn.functional.softplus(-gen_logits)
        training_stats.report('Loss/G/loss', loss)
        return loss.mean()

    def _G_pl(self, gen_z, gen_c, generator):
        # Path-length regularisation: the Jacobian-vector norm |J_w^T y| should stay near its running mean.
        from torch_utils.ops import conv2d_gradfix
        batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch], generator=generator)
        noise = torch.randn(gen_img.shape, generator=generator, device=_gen_device(generator)).to(gen_img.device, gen_img.dtype)
        noise = noise / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        with conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad):
            pl_grads = torch.autograd.grad(outputs=[(gen_img * noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True)[0]
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
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        return torch.nn.functional.softplus(gen_logits).flatten()

    def _D_real(self, phase, real_img, real_c, blur_sigma, generator):
        # One D pass on reals serves both the main term and R1 (gradient w.r.t. the unblurred, unaugmented x).
        from torch_utils.ops import conv2d_gradfix
        do_main = phase in ('Dmain', 'Dboth')
        do_r1 = phase in ('Dreg', 'Dboth')
        real_img_tmp = real_img.detach().requires_grad_(do_r1)
        real_logits = self.run_D(real_img_tmp, real_c, blur_sigma=blur_sigma, generator=generator)
        training_stats.report('Loss/scores/real', real_logits)
        training_stats.report('Loss/signs/real', real_logits.sign())
        terms = dnnlib.EasyDict()
        loss_Dreal = None
        if do_main:
            loss_Dreal = torch.nn.functional.softplus(-real_logits).flatten()  # [N]
            terms.Dreal = loss_Dreal.mean()
        if do_r1:
            with conv2d_gradfix.no_weight_gradients():
                r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True, only_inputs=True)[0]
            r1_penalty = r1_grads.square().sum([1, 2, 3])                    # [N]
            training_stats.report('Loss/r1_penalty', r1_penalty)
            loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
            training_stats.report('Loss/D/reg', loss_Dr1)
            terms.Dr1 = loss_Dr1.mean()
        return terms, real_logits.detach(), loss_Dreal

#----------------------------------------------------------------------------

def _gen_device(generator):
    return generator.device if generator is not None else torch.device('cpu')

#----------------------------------------------------------------------------
