"""FundusGAN / pSp w+ encoders: train, invert, mix and vary. Guide: docs/fundusgan.md.

\b
python -m fundus.fundusgan train  --generator=G.pkl --data=phantoms.zip --outdir=runs --arch=psp
python -m fundus.fundusgan invert --network=runs/00000-fundusgan-psp-phantoms/encoder-snapshot-001000.pkl --images=photos/ --outdir=out
python -m fundus.fundusgan mix    --network=ENC.pkl --coarse=a.png --fine=b.png --outdir=out
python -m fundus.fundusgan vary   --network=ENC.pkl --images=photos/ --outdir=out --count=8 --layers=0-6
"""

import click

from fundus.fundusgan import common
from fundus.fundusgan import invert as invert_lib
from fundus.fundusgan import train as train_lib

#----------------------------------------------------------------------------

@click.group(help=__doc__)
def main():
    pass

def _run(fn, *args, **kwargs):
    # Library errors become one line; nothing else is caught.
    try:
        return fn(*args, **kwargs)
    except common.FundusGANError as e:
        raise click.ClickException(str(e)) from None

#----------------------------------------------------------------------------

@main.command()
@click.option('--generator',        help='Generator snapshot (ours or official StyleGAN2/3) the encoder serves', metavar='PKL')
@click.option('--data',             help='Training images: zip or folder from dataset_tool.py', metavar='ZIP|DIR')
@click.option('--outdir',           help='Parent folder of the new run directory', metavar='DIR')
@click.option('--resume',           help='Continue the run in this directory exactly where it stopped (other options are read from it)', metavar='RUN_DIR')
@click.option('--arch',             help='psp: encoder into the (frozen) generator; fundusgan: + dilated generator fed by the encoder', type=click.Choice(train_lib.ARCHS), default='psp', show_default=True)
@click.option('--steps',            help='Optimiser steps', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--batch',            help='Images per step', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--lr',               help='Adam learning rate of the encoder', type=click.FloatRange(min=0), default=1e-4, show_default=True)
@click.option('--train-g',          help='Fine-tune the generator\'s synthesis weights too (psp: frozen otherwise)', is_flag=True)
@click.option('--g-lr',             help='Adam learning rate of the generator weights that train', type=click.FloatRange(min=0), default=1e-4, show_default=True)
@click.option('--l2',               help='Weight of the pixel MSE', type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option('--lpips',            help='Weight of LPIPS', type=click.FloatRange(min=0), default=0.8, show_default=True)
@click.option('--lpips-net',        help='LPIPS backbone (offline weights)', type=click.Choice(['vgg', 'alex']), default='vgg', show_default=True)
@click.option('--wreg',             help='Weight of mean((w - w_avg)^2)', type=click.FloatRange(min=0), default=0.005, show_default=True)
@click.option('--adv',              help='Weight of an adversarial term from a StyleGAN2 discriminator (0 = off)', type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option('--backbone',         help='Encoder trunk', type=click.Choice(['resnet18', 'resnet34', 'resnet50']), default='resnet34', show_default=True)
@click.option('--backbone-weights', help='torchvision ResNet state dict (local file) to initialise the trunk', metavar='FILE')
@click.option('--width',            help='Base width of the trunk (64 = torchvision)', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--fpn-channels',     help='Channels of every pyramid level', type=click.IntRange(min=1), default=512, show_default=True)
@click.option('--coarse-end',       help='ws[0:N] come from the low pyramid level', type=click.IntRange(min=1), default=3, show_default=True)
@click.option('--middle-end',       help='ws[coarse-end:N] from the mid level, the rest from the high level', type=click.IntRange(min=1), default=7, show_default=True)
@click.option('--dilation',         help='fundusgan: dilation of the first synthesis layer', type=click.IntRange(min=1), default=8, show_default=True)
@click.option('--skips',            help='fundusgan: encoder-to-generator skip connections', type=click.Choice(['delta', 'none']), default='delta', show_default=True)
@click.option('--post-layers',      help='fundusgan: dilated layers at full resolution after the last upsampling', type=click.IntRange(min=0), default=2, show_default=True)
@click.option('--val',              help='Held-out validation images: a fraction (< 1) or a count', type=click.FloatRange(min=0), default=0.1, show_default=True)
@click.option('--val-every',        help='Validate (SSIM, LPIPS, L2 and a grid) every N steps', type=click.IntRange(min=1), default=100, show_default=True)
@click.option('--snap-every',       help='Write a snapshot and the training state every N steps', type=click.IntRange(min=1), default=100, show_default=True)
@click.option('--log-every',        help='Append the loss terms to stats.jsonl every N steps', type=click.IntRange(min=1), default=10, show_default=True)
@click.option('--seed',             help='Seed of the initialisation, the split and the batch order', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--device',           help='Device: auto, cpu, cuda, cuda:1, ...', default='cpu', show_default=True)
@click.option('--progress/--no-progress', help='Show a progress bar', default=True, show_default=True)
def train(resume, outdir, progress, device, **kwargs):
    """Train an encoder (and for --arch=fundusgan the dilated generator)."""
    if resume is not None:
        run_dir = _run(train_lib.training_loop, resume=resume, progress=progress)
    else:
        for name in ('generator', 'data'):
            if not kwargs[name]:
                raise click.ClickException(f'--{name} is required (or --resume=RUN_DIR)')
        if not outdir:
            raise click.ClickException('--outdir is required (or --resume=RUN_DIR)')
        kwargs['device'] = _run(invert_lib.resolve_device, device)
        opts = _run(train_lib.default_options, **kwargs)
        run_dir = _run(train_lib.training_loop, opts, train_lib.new_run_dir(outdir, opts.arch, opts.data), progress=progress)
    click.echo(run_dir)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
