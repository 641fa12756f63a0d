"""FundusGAN / pSp w+ encoders: train, invert, mix and vary. Guide: docs/fundusgan.md.

\b
python -m fundus.fundusgan train  --generator=G.pkl --data=phantoms.zip --outdir=runs --arch=psp
python -m fundus.fundusgan invert --network=runs/00000-fundusgan-psp-phantoms/encoder-snapshot-001000.pkl --images=photos/ --outdir=out
python -m fundus.fundusgan mix    --network=ENC.pkl --coarse=a.png --fine=b.png --outdir=out
python -m fundus.fundusgan vary   --network=ENC.pkl --images=photos/ --outdir=out --count=8 --layers=0-2
python -m fundus.fundusgan report --run=runs/00000-fundusgan-psp-phantoms
"""

import os

import click

from fundus.fundusgan import common
from fundus.fundusgan import invert as invert_lib
from fundus.fundusgan import report as report_lib
from fundus.fundusgan import train as train_lib
from torch_utils import cpu_memory

#----------------------------------------------------------------------------

@click.group(help=__doc__)
def main():
    cpu_memory.keep_freed_memory() # torch_utils/cpu_memory.py

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

def _parse_layers(text):
    if text is None:
        return None
    try:
        out = []
        for part in text.split(','):
            lo, _sep, hi = part.strip().partition('-')
            out += list(range(int(lo), int(hi or lo) + 1))
        return out
    except ValueError:
        raise click.ClickException(f'--layers={text}: expected indices such as 0-2 or 0,1,5') from None

@main.command()
@click.option('--network',   help='Encoder snapshot (encoder-snapshot-*.pkl)', required=True, metavar='PKL')
@click.option('--images',    help='Photos to invert: folder, zip or one image, at the generator\'s resolution', required=True, metavar='DIR|ZIP|PNG')
@click.option('--outdir',    help='Where the reconstructions, dataset.json and ws.npz go', required=True, metavar='DIR')
@click.option('--generator', help='Pair the encoder with this generator snapshot instead of its own (must match num_ws, w_dim, resolution)', metavar='PKL')
@click.option('--device',    help='Device: auto, cpu, cuda, cuda:1, ...', default='cpu', show_default=True)
def invert(network, images, outdir, generator, device):
    """Reconstruct photos through the encoder and generator; save PNGs and their w+ (ws.npz)."""
    paths, skipped = _run(invert_lib.run_invert, network, images, outdir, _run(invert_lib.resolve_device, device), generator)
    click.echo(f'{len(paths)} reconstruction(s) in {outdir}' + (f'; skipped {len(skipped)} unreadable (skipped-images.txt)' if skipped else ''))

@main.command()
@click.option('--network',    help='Encoder snapshot', required=True, metavar='PKL')
@click.option('--coarse',     help='Photo(s) giving the coarse ws (anatomy)', required=True, metavar='DIR|ZIP|PNG')
@click.option('--fine',       help='Photo(s) giving the other ws (fine detail, lesions)', required=True, metavar='DIR|ZIP|PNG')
@click.option('--outdir',     help='Where the mixes and dataset.json go (labels from --fine)', required=True, metavar='DIR')
@click.option('--coarse-end', help='ws[0:N] from --coarse [default: the encoder\'s low-level count]', type=click.IntRange(min=1), metavar='N')
@click.option('--device',     help='Device: auto, cpu, cuda, cuda:1, ...', default='cpu', show_default=True)
def mix(network, coarse, fine, outdir, coarse_end, device):
    """Style mixing in w+: every --coarse photo with every --fine photo."""
    paths = _run(invert_lib.run_mix, network, coarse, fine, outdir, coarse_end, _run(invert_lib.resolve_device, device))
    click.echo(f'{len(paths)} mix(es) in {outdir}')

@main.command()
@click.option('--network',  help='Encoder snapshot', required=True, metavar='PKL')
@click.option('--images',   help='Photos to vary', required=True, metavar='DIR|ZIP|PNG')
@click.option('--outdir',   help='Where the variants and dataset.json (source labels) go', required=True, metavar='DIR')
@click.option('--count',    help='Variants per photo', type=click.IntRange(min=1), default=8, show_default=True)
@click.option('--layers',   help='ws to perturb, e.g. 0-2 [default: the coarse ws, which leaves the lesion-carrying fine ws alone]', metavar='LIST')
@click.option('--strength', help='Perturbation in units of the per-dimension std of w', type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option('--seed',     help='Seed of the perturbations', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--device',   help='Device: auto, cpu, cuda, cuda:1, ...', default='cpu', show_default=True)
def vary(network, images, outdir, count, layers, strength, seed, device):
    """Lesion-preserving variants: perturb only the chosen ws of each inverted photo."""
    paths = _run(invert_lib.run_vary, network, images, outdir, count, _parse_layers(layers), strength, seed, _run(invert_lib.resolve_device, device))
    click.echo(f'{len(paths)} variant(s) in {outdir}')

@main.command()
@click.option('--run', 'run_dir', help='Encoder run directory', required=True, metavar='RUN_DIR')
@click.option('--out', help='HTML file [default: RUN_DIR/report.html]', metavar='FILE')
def report(run_dir, out):
    """HTML report of an encoder run: curves, reconstruction grid, validation and *_recon metric tables."""
    if not os.path.isdir(run_dir):
        raise click.ClickException(f'--run={run_dir}: no such folder')
    click.echo(report_lib.write_report(run_dir, out))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
