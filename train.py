"""Train a GAN (StyleGAN3-T, StyleGAN3-R or StyleGAN2) with ADA, NVIDIA's command line, exact resume."""

# Thin CLI: click options -> training.config.make_config (one resolved, JSON-serialisable config) or
# training.launch.resume_run -> training.launch.launch_training. Typed errors become one line.

import click

import dnnlib
from torch_utils import cpu_memory
from torch_utils.device import DeviceError
from training import config, launch
from training.training_loop import TrainingDivergedError

# Options of this command that are not training options (make_config does not take them).
CLI_ONLY = ('outdir', 'desc', 'dry_run')

#----------------------------------------------------------------------------

@click.command()
@click.pass_context

# Required for a new run. Continuing a run (--resume=<run dir or training-state-*.pt>) reads them from the state.
@click.option('--outdir',       metavar='DIR',
              help='Parent directory for runs; each run gets a new numbered subdirectory (00000-<cfg>-<data>-...)')
@click.option('--cfg',          type=click.Choice(list(config.CFGS)),
              help='Architecture preset: stylegan3-t (translation equivariant, the usual choice for fundus), '
                   'stylegan3-r (also rotation equivariant, ~2x slower), stylegan2 (fastest, a good baseline)')
@click.option('--data',         metavar='[ZIP|DIR]',
              help='Training images: a zip or folder made by dataset_tool.py (square, power-of-two resolution)')
@click.option('--gpus',         metavar='INT', type=click.IntRange(min=1),
              help='Processes to train with: one per GPU, or CPU workers with --device=cpu')
@click.option('--batch',        metavar='INT', type=click.IntRange(min=1),
              help='Images per optimiser step, summed over all processes; 32 suits most fundus sets')
@click.option('--gamma',        metavar='FLOAT', type=click.FloatRange(min=0),
              help='Strength of the R1 gradient penalty on D; try 2 at 256 px, 8 at 512 px, 16+ at 1024 px, '
                   'and raise it if training collapses')

# What to train.
@click.option('--cond',         metavar='BOOL', type=bool, default=False, show_default=True,
              help='Condition G and D on the labels in dataset.json (e.g. retinopathy grade)')
@click.option('--mirror',       metavar='BOOL', type=bool, default=False, show_default=True,
              help='Add left-right mirrored copies of the images; mirroring swaps left and right eyes, '
                   'so leave it off when laterality matters')
@click.option('--aug',          type=click.Choice(['noaug', 'ada', 'fixed']), default='ada', show_default=True,
              help='Augmentation of images seen by D: ada adapts the strength to D overfitting, fixed uses --p, '
                   'noaug turns it off (only for very large sets)')
@click.option('--augpipe',      type=click.Choice(['bgc', 'bg', 'bgcf', 'bgcfn', 'bgcfnc', 'fundus', 'fundus-xflip']), default='bgc', show_default=True,
              help='Which augmentations to use; fundus keeps the anatomy plausible (no hue change, luma flip, '
                   '90-degree rotation or x-flip; milder colour), fundus-xflip adds x-flips')
@click.option('--resume',       metavar='[PATH|URL]', type=str,
              help='A network-snapshot-*.pkl starts a new run from its weights (a pickle with G_ema only, '
                   'such as fundus/demo/model/phantom-G.pkl, starts G from it too); a run directory or '
                   'training-state-*.pt continues that run exactly')
@click.option('--freezed',      metavar='INT', type=click.IntRange(min=0), default=0, show_default=True,
              help='Keep this many of D\'s highest-resolution layers fixed (useful when fine-tuning on a small set)')

# Hyperparameters.
@click.option('--p',            metavar='FLOAT', type=click.FloatRange(min=0, max=1), default=0.2, show_default=True,
              help='Augmentation probability used with --aug=fixed')
@click.option('--target',       metavar='FLOAT', type=click.FloatRange(min=0, max=1), default=0.6, show_default=True,
              help='With --aug=ada: the D overfitting level (mean sign of D on reals) that ADA steers towards')
@click.option('--batch-gpu',    metavar='INT', type=click.IntRange(min=1),
              help='Images per process per forward pass; lower it to save memory, the batch is then '
                   'accumulated  [default: batch/gpus]')
@click.option('--cbase',        metavar='INT', type=click.IntRange(min=1), default=32768, show_default=True,
              help='Network width: feature maps at a layer are about cbase / resolution; halve it for a quicker, smaller model')
@click.option('--cmax',         metavar='INT', type=click.IntRange(min=1), default=512, show_default=True,
              help='Upper bound on the feature maps of any layer')
@click.option('--glr',          metavar='FLOAT', type=click.FloatRange(min=0),
              help='Adam learning rate of G  [default: 0.0025 for stylegan3-*, 0.002 for stylegan2]')
@click.option('--dlr',          metavar='FLOAT', type=click.FloatRange(min=0), default=0.002, show_default=True,
              help='Adam learning rate of D')
@click.option('--map-depth',    metavar='INT', type=click.IntRange(min=1),
              help='Layers in the z -> w mapping network  [default: 2 for stylegan3-*, 8 for stylegan2]')
@click.option('--zdim',         metavar='INT', type=click.IntRange(min=1), default=512, show_default=True,
              help='Size of the latent z and of the intermediate latent w; smaller trains faster on a CPU')
@click.option('--layers',       metavar='INT', type=click.IntRange(min=1),
              help='stylegan3-* only: synthesis layers between the input and the output  [default: 14]')
@click.option('--margin',       metavar='INT', type=click.IntRange(min=0),
              help='stylegan3-* only: extra pixels computed around the image on each side  [default: 10]')
@click.option('--mbstd-group',  metavar='INT', type=click.IntRange(min=1), default=4, show_default=True,
              help='Images per group for D\'s minibatch-standard-deviation layer; must not exceed --batch-gpu')

# Run length, logging and performance.
@click.option('--desc',         metavar='STR', type=str,
              help='Extra text appended to the run directory name')
@click.option('--metrics',      metavar='[NAME|A,B,C|none]', type=config.parse_comma_list, default='fid50k_full', show_default=True,
              help='Metrics computed at every network snapshot (see calc_metrics.py); none saves time on small runs')
@click.option('--kimg',         metavar='KIMG', type=click.IntRange(min=1), default=25000, show_default=True,
              help='Stop after D has seen this many thousand real images')
@click.option('--tick',         metavar='KIMG', type=click.IntRange(min=1), default=4, show_default=True,
              help='Thousands of images between progress lines in log.txt and stats.jsonl')
@click.option('--snap',         metavar='TICKS', type=click.IntRange(min=1), default=50, show_default=True,
              help='Ticks between snapshots (image grid, network pickle, training state, metrics)')
@click.option('--seed',         metavar='INT', type=click.IntRange(min=0), default=0, show_default=True,
              help='Seed for weights, latents, augmentation and data order')
@click.option('--fp32',         metavar='BOOL', type=bool, default=False, show_default=True,
              help='Keep every layer in float32 (no fp16 in the highest-resolution blocks); slower on GPU')
@click.option('--nobench',      metavar='BOOL', type=bool, default=False, show_default=True,
              help='Skip cuDNN autotuning of convolution algorithms (GPU only)')
@click.option('--workers',      metavar='INT', type=click.IntRange(min=0), default=3, show_default=True,
              help='Background processes that load and decode images; 0 loads in the training process')
@click.option('--device',       type=click.Choice(['auto', 'cuda', 'cpu']), default='auto', show_default=True,
              help='Where to train; auto uses CUDA when a GPU is present, otherwise the CPU')
@click.option('--deterministic', metavar='BOOL', type=bool, default=False, show_default=True,
              help='Use deterministic algorithms only (slower; on CPU a resumed run then matches an uninterrupted one bit for bit)')
@click.option('-n', '--dry-run', is_flag=True,
              help='Print the resolved options, build G, D, the loss and optimisers on the CPU, then exit without training')

def main(ctx, **kwargs):
    """Train StyleGAN3 / StyleGAN2 ("Alias-Free Generative Adversarial Networks", Karras et al. 2021) with ADA.

    \b
    # Train StyleGAN3-T for the DR1 fundus set using 1 GPU.
    python train.py --outdir=~/training-runs --cfg=stylegan3-t --data=~/datasets/dr1-512x512.zip \\
        --gpus=1 --batch=32 --gamma=8 --batch-gpu=8 --snap=10 --augpipe=fundus

    \b
    # Continue that run exactly where it stopped (kimg, augment p, optimiser state and RNGs carry on).
    python train.py --resume=~/training-runs/00000-stylegan3-t-dr1-512x512-gpus1-batch32-gamma8

    \b
    # Fine-tune from a network pickle (a new run; first 10 D layers frozen).
    python train.py --outdir=~/training-runs --cfg=stylegan3-r --data=~/datasets/dr1.zip --gpus=8 \\
        --batch=32 --gamma=8 --resume=network-snapshot-005000.pkl --freezed=10

    \b
    # Tiny CPU run (see docs/training.md).
    python train.py --outdir=runs --cfg=stylegan2 --data=phantom.zip --gpus=1 --batch=4 --gamma=1 \\
        --cbase=1024 --cmax=32 --map-depth=2 --kimg=1 --tick=1 --snap=1 --metrics=none --device=cpu
    """
    cpu_memory.keep_freed_memory() # torch_utils/cpu_memory.py
    opts = dnnlib.EasyDict(kwargs)
    try:
        if config.is_state_resume(opts.resume):
            c, desc = _resume_from_cli(ctx, opts), None
        else:
            if opts.outdir is None:
                raise click.ClickException('Missing option --outdir')
            c = config.make_config(**{k: v for k, v in opts.items() if k not in CLI_ONLY})
            desc = opts.desc
        launch.launch_training(c, outdir=opts.outdir, desc=desc, dry_run=opts.dry_run, echo=click.echo)
    except (config.ConfigError, launch.LaunchError, DeviceError, TrainingDivergedError, OSError, ValueError) as e:
        raise click.ClickException(str(e)) from None

def _resume_from_cli(ctx, opts):
    given = {name: opts[name] for name in opts if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    return launch.resume_with_options(opts.resume, given)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
