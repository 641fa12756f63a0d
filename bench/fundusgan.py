"""CPU speed of the FundusGAN / pSp encoder path; results go to docs/benchmarks.md ("FundusGAN encoder").

    python bench/fundusgan.py --res=64 --width=16 --fpn=64 --cbase=4096 --cmax=128
    python bench/fundusgan.py --res=256            # torchvision ResNet-34 width, FPN 512, SG2 cbase 16384 / cmax 512

Times (median of --reps): encoder forward, one training step (encoder + generator forward and backward
through L2 + LPIPS-VGG + w regulariser, generator frozen), and inversion throughput (images/s, no grad).
"""

import os
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def _median_time(fn, reps):
    fn() # Warm-up.
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]

def bench(res, batch, backbone, width, fpn, cbase, cmax, reps, threads):
    from fundus.fundusgan import encoder, generator, loss, paired
    from training import networks_stylegan2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    G = networks_stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, channel_base=cbase,
                                     channel_max=cmax, num_fp16_res=0, conv_clamp=None).eval().requires_grad_(False)
    E = encoder.build_encoder(G, backbone=backbone, width=width, fpn_channels=fpn)
    crit = loss.ReconstructionLoss(lpips_fn=paired.lpips_model('vgg'))
    opt = torch.optim.Adam(E.parameters(), lr=1e-4)
    x = torch.rand([batch, 3, res, res]) * 2 - 1

    def step():
        fake, ws = generator.reconstruct(E, G, x)
        terms = crit(x, fake, ws, G.mapping.w_avg)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            E(x)

    def invert():
        with torch.no_grad():
            E.eval()
            generator.reconstruct(E, G, x)
            E.train()

    t_fwd, t_step, t_inv = _median_time(forward, reps), _median_time(step, reps), _median_time(invert, reps)
    return dict(encoder_forward_s=t_fwd, train_step_s=t_step, invert_images_per_s=batch / t_inv)

@click.command()
@click.option('--res',      type=int, default=64, show_default=True, help='Image resolution (SG2 generator and encoder input)')
@click.option('--batch',    type=int, default=4, show_default=True, help='Images per call')
@click.option('--backbone', type=click.Choice(['resnet18', 'resnet34', 'resnet50']), default='resnet34', show_default=True, help='Encoder trunk')
@click.option('--width',    type=int, default=64, show_default=True, help='Trunk base width')
@click.option('--fpn',      type=int, default=512, show_default=True, help='FPN channels')
@click.option('--cbase',    type=int, default=16384, show_default=True, help='Generator channel_base')
@click.option('--cmax',     type=int, default=512, show_default=True, help='Generator channel_max')
@click.option('--reps',     type=int, default=3, show_default=True, help='Timed repetitions (median)')
@click.option('--threads',  type=int, default=1, show_default=True, help='torch CPU threads')
def main(res, batch, backbone, width, fpn, cbase, cmax, reps, threads):
    """Time the encoder forward, a training step and inversion on CPU."""
    out = bench(res, batch, backbone, width, fpn, cbase, cmax, reps, threads)
    click.echo(f'res={res} batch={batch} {backbone} width={width} fpn={fpn} G cbase={cbase} cmax={cmax} threads={threads}: '
               f'encoder forward {out["encoder_forward_s"]:.3f} s, training step {out["train_step_s"]:.3f} s, '
               f'inversion {out["invert_images_per_s"]:.2f} images/s')

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
