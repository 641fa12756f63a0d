"""Generate images with a trained network pickle (ours or an official StyleGAN2-ADA / StyleGAN3 one).

A thin command line over training/generate.py, which holds the seeds -> latents -> images logic.
"""

import click
import torch

from fundus import grades
from torch_utils import cpu_memory, distributed
from torch_utils.device import DeviceError, resolve_device
from training import generate
from training.generate import GenerateError

#----------------------------------------------------------------------------

def run(network, seeds, trunc=1.0, class_text=None, noise_mode='const', translate='0,0', rotate=0.0, outdir='out', batch=4, grid=False, device='auto', progress=True):
    """Parse the options, load the network and write the images. Returns the PNG paths this rank wrote."""
    seed_list = generate.parse_range(seeds)
    translate_xy = generate.parse_vec2(translate)
    if distributed.launched_by_torchrun():
        distributed.init(device='cuda' if device != 'cpu' and torch.cuda.is_available() else 'cpu')
    dev = resolve_device(device)
    G = generate.load_generator(network, dev)
    class_idx = grades.class_index(class_text, G.c_dim)
    generate.set_input_transform(G, translate_xy, rotate)
    return generate.write_images(G, seed_list, outdir, class_idx=class_idx, trunc=trunc, noise_mode=noise_mode,
                                 batch=batch, grid=grid, device=dev, progress=progress)

#----------------------------------------------------------------------------

@click.command()
@click.option('--network', 'network',   help='Network pickle: path or URL (G_ema is used)', metavar='PATH', required=True)
@click.option('--seeds',                help='Seeds, e.g. 0,1,4-6 or 0-4999 (ranges are inclusive)', metavar='LIST', required=True)
@click.option('--trunc', 'trunc',       help='Truncation psi (1 = none; smaller = closer to the average image)', type=float, default=1, show_default=True)
@click.option('--class', 'class_text',  help='Class for conditional networks: an index or a grade name such as DR1', metavar='NAME')
@click.option('--noise-mode',           help='Per-pixel noise of StyleGAN2 layers (StyleGAN3 has none)', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--translate',            help='Translate the StyleGAN3 input by x,y (fraction of the image)', metavar='VEC2', default='0,0', show_default=True)
@click.option('--rotate',               help='Rotate the StyleGAN3 input by this many degrees', type=float, default=0, show_default=True)
@click.option('--outdir',               help='Where to write seedNNNN.png files', metavar='DIR', required=True)
@click.option('--batch',                help='Images per forward pass (does not change the images)', type=int, default=4, show_default=True)
@click.option('--grid',                 help='Also write grid.png tiling all seeds', is_flag=True)
@click.option('--device',               help='Where to run', type=click.Choice(['auto', 'cpu', 'cuda']), default='auto', show_default=True)
def main(network, seeds, trunc, class_text, noise_mode, translate, rotate, outdir, batch, grid, device):
    """Generate images using a pretrained network pickle.

    One PNG per seed (seedNNNN.png; grayscale for 1-channel networks). Under torchrun the seeds are shared
    out across the ranks.

    \b
    Examples:
    # Six images from a DR1 network, as a grid too.
    python gen_images.py --network=runs/00000-stylegan3-t-dr1/network-snapshot-000200.pkl \\
        --seeds=0-5 --grid --outdir=out
    \b
    # Grade 2 images from a conditional network, with truncation.
    python gen_images.py --network=cond.pkl --seeds=0-99 --class=DR2 --trunc=0.7 --outdir=out
    """
    cpu_memory.keep_freed_memory() # torch_utils/cpu_memory.py
    try:
        run(network, seeds, trunc=trunc, class_text=class_text, noise_mode=noise_mode, translate=translate,
                    rotate=rotate, outdir=outdir, batch=batch, grid=grid, device=device)
    except (GenerateError, DeviceError, grades.GradeError) as e:
        raise click.ClickException(str(e)) from None
    # Every rank has passed the barrier in run(), so all seeds are on disk now.
    grid_note = ' and grid.png' if grid else ''
    distributed.print0(f'Wrote {len(generate.parse_range(seeds))} images{grid_note} to {outdir}')
    distributed.shutdown()

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
