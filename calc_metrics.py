"""Calculate quality metrics for a network pickle or a folder of generated images.

NVIDIA's metric names and definitions (fid50k_full, kid50k_full, pr50k3_full, is50k, ppl2_wend,
eqt50k_int, eqt50k_frac, eqr50k), the same families at other sizes (fid10k_full, kid2k_full, or exact
counts such as fid200_full and eqt32_int), and ssim, msssim, lpips, lpips_vgg, spectrum and
memorization. Details: docs/metrics.md.
"""

import click

from fundus.fundusgan import metrics as fundusgan_metrics
from metrics import calc
from metrics.errors import DetectorError, MetricError
from torch_utils import cpu_memory
from torch_utils.device import DeviceError, resolve_device

fundusgan_metrics.register() # ssim_recon, lpips_recon, fid_recon, kid_recon, lesion_recall_recon.

#----------------------------------------------------------------------------

@click.command()
@click.option('--network', 'network',       help='Network pickle filename or URL (ours or official)', metavar='PATH')
@click.option('--metrics',                  help='Quality metrics: comma list or "none"', metavar='[NAME|A,B,C|none]', default='fid50k_full', show_default=True)
@click.option('--data',                     help='Reference dataset (zip or folder) [default: from the network pickle]', metavar='[ZIP|DIR]')
@click.option('--mirror',                   help='Enable dataset x-flips [default: from the network pickle]', type=bool, metavar='BOOL')
@click.option('--gpus',                     help='Number of GPUs to use', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--verbose',                  help='Print progress bars and messages', type=bool, default=True, metavar='BOOL', show_default=True)
@click.option('--seed',                     help='Seed of latents, labels and metric sampling (results repeat for a seed)', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--images',                   help='Score a folder or zip of generated images (from any tool) instead of --network', metavar='[DIR|ZIP]')
@click.option('--bootstrap',                help='Bootstrap replicates for FID/KID confidence intervals (0 = off)', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--out',                      help='Also write all results to this JSON file (plots go next to it)', metavar='FILE')
@click.option('--detector-path', 'detector_path', help='Local file or URL of a detector, NAME=FILE with NAME in inception, inception-full, vgg16, lpips-alex, lpips-vgg (repeatable)', multiple=True, metavar='NAME=FILE')
@click.option('--device',                   help='Device: auto, cpu, cuda, cuda:1, ...', default='auto', show_default=True)
def calc_metrics(network, metrics, data, mirror, gpus, verbose, seed, images, bootstrap, out, detector_path, device):
    """Calculate quality metrics for a network pickle or a folder of generated images.

    \b
    Examples:
    # FID of a snapshot against its training set; appends to metric-fid50k_full.jsonl in the run folder.
    python calc_metrics.py --metrics=fid50k_full,kid50k_full --network=runs/00000-stylegan3-t/network-snapshot-000400.pkl
    \b
    # Score images made by another tool, with a bootstrap interval.
    python calc_metrics.py --metrics=fid10k_full --images=fakes/ --data=dr1-512.zip --bootstrap=200 --out=fid.json
    \b
    # Memorisation audit and power spectra (CSV/PNG written next to --out).
    python calc_metrics.py --metrics=memorization,spectrum --network=snapshot.pkl --data=dr1-512.zip --out=audit/results.json
    """
    cpu_memory.keep_freed_memory() # torch_utils/cpu_memory.py
    try:
        metric_list = calc.parse_metric_list(metrics)
        paths = calc.parse_detector_paths(detector_path)
        device = resolve_device(device)
        if network is None and images is None:
            raise MetricError('give --network=PKL or --images=DIR (the generated images to score)')
        if network is not None and images is not None:
            raise MetricError('give either --network or --images, not both')
        if gpus > 1:
            raise MetricError(f'--gpus={gpus}: calc_metrics.py runs one process for now; the metrics library supports num_gpus > 1 '
                              'inside an initialised torch.distributed group (the training loop uses that)')
        calc.calc_all(metric_list, network, data, mirror, gpus, verbose, seed, images, bootstrap, out, paths, device,
                      adapters=(fundusgan_metrics.metric_network,))
    except (MetricError, DetectorError, DeviceError) as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e: # Dataset errors (training.dataset.DatasetError) and bad pickles.
        raise click.ClickException(str(e).splitlines()[0]) from None

#----------------------------------------------------------------------------

if __name__ == '__main__':
    calc_metrics() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
