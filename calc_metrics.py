"""Calculate quality metrics for a network pickle or a folder of generated images.

NVIDIA's metric names and definitions (fid50k_full, kid50k_full, pr50k3_full, is50k, ppl2_wend,
eqt50k_int, eqt50k_frac, eqr50k), the same families at other sizes (fid10k_full, kid2k_full, or exact
counts such as fid200_full and eqt32_int), and ssim, msssim, lpips, lpips_vgg, spectrum and
memorization. Details: docs/metrics.md.
"""

import json
import os

import click
import torch

import dnnlib
from fundus.fundusgan import metrics as fundusgan_metrics
from metrics import detectors
from metrics import metric_main
from metrics import metric_utils

fundusgan_metrics.register() # ssim_recon, lpips_recon, fid_recon, kid_recon, lesion_recall_recon.

#----------------------------------------------------------------------------

class CalcError(Exception):
    """Bad command-line input; printed as one line."""

def parse_metric_list(text):
    names = [] if text.strip().lower() == 'none' else [m.strip() for m in text.split(',') if m.strip()]
    bad = [m for m in names if not metric_main.is_valid_metric(m)]
    if bad:
        raise CalcError(f'--metrics: unknown metric(s) {", ".join(bad)}; valid: {", ".join(metric_main.list_valid_metrics())} '
                        f'and the patterns {", ".join(metric_main.family_patterns())}')
    return names

def parse_detector_paths(values):
    paths = {}
    for value in values:
        name, sep, path = value.partition('=')
        if not sep or name not in detectors.DETECTOR_NAMES or not path:
            raise CalcError(f'--detector-path: expected NAME=FILE with NAME one of {", ".join(detectors.DETECTOR_NAMES)}, got "{value}"')
        paths[name] = path
    return paths

def resolve_device(device):
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise CalcError(f'--device={device}: CUDA is not available on this machine')
    return device

#----------------------------------------------------------------------------

def load_generator(network):
    from torch_utils import persistence # Imported here: only needed with --network.
    try:
        data = persistence.load_network_pkl(network)
    except (OSError, ValueError) as e:
        raise CalcError(f'--network={network}: {str(e).splitlines()[0]}') from None
    G = fundusgan_metrics.metric_network(data) or data.get('G_ema') or data.get('G') # Encoder snapshots: E + G.
    if G is None:
        raise CalcError(f'--network={network}: the pickle holds no generator (G_ema or G)')
    return G.eval().requires_grad_(False), data.get('training_set_kwargs')

def real_dataset_kwargs(data, training_set_kwargs, G, mirror, images_mode):
    if data is not None:
        if not os.path.exists(data):
            raise CalcError(f'--data={data}: no such file or folder')
        if images_mode:
            return dnnlib.EasyDict(class_name='metrics.image_folder.ImageFolder', path=data)
        kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data)
    elif training_set_kwargs is not None:
        kwargs = dnnlib.EasyDict(training_set_kwargs)
        path = kwargs.get('path')
        if not isinstance(path, str) or not os.path.exists(path):
            raise CalcError(f'the network pickle names its training set as {path!r}, which does not exist here; '
                            f'pass --data=ZIP_OR_DIR')
    else:
        raise CalcError('--data is required: the network pickle does not name its training set')
    if G is not None:
        kwargs.resolution = G.img_resolution
        kwargs.use_labels = G.c_dim > 0
    if mirror is not None:
        kwargs.xflip = mirror
    return kwargs

def check_images_match(real_kwargs, gen_kwargs):
    real = metric_utils.construct_dataset(real_kwargs)
    gen = metric_utils.construct_dataset(gen_kwargs)
    if real.image_shape[1:] != gen.image_shape[1:]:
        raise CalcError(f'mismatched resolutions: --images has {gen.image_shape[2]}x{gen.image_shape[1]} images, '
                        f'--data has {real.image_shape[2]}x{real.image_shape[1]}')

def run_dir_of(network):
    if network is None or dnnlib.util.is_url(network):
        return None
    folder = os.path.dirname(os.path.abspath(network))
    return folder if os.path.isfile(os.path.join(folder, 'training_options.json')) else None

#----------------------------------------------------------------------------

def calc_all(metrics, network, data, mirror, gpus, verbose, seed, images, bootstrap, out, detector_paths, device):
    """Run every metric on one process; returns {metric: result dict}."""
    G, training_set_kwargs = load_generator(network) if network is not None else (None, None)
    if G is not None:
        G = G.to(device)
    gen_kwargs = None
    if images is not None:
        if not os.path.exists(images):
            raise CalcError(f'--images={images}: no such file or folder')
        gen_kwargs = dnnlib.EasyDict(class_name='metrics.image_folder.ImageFolder', path=images)
    real_kwargs = real_dataset_kwargs(data, training_set_kwargs, G, mirror, images_mode=G is None)
    if gen_kwargs is not None:
        check_images_match(real_kwargs, gen_kwargs)
    run_dir = run_dir_of(network)
    out_dir = os.path.dirname(os.path.abspath(out)) if out is not None else run_dir
    results = {}
    for metric in metrics:
        if verbose:
            print(f'Calculating {metric}...')
        result = metric_main.calc_metric(metric, G=G, dataset_kwargs=real_kwargs, gen_dataset_kwargs=gen_kwargs, num_gpus=gpus, rank=0,
            device=device, progress=verbose, seed=seed, detector_paths=detector_paths, out_dir=out_dir, bootstrap=bootstrap)
        metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=network)
        results[metric] = dict(result)
    if out is not None:
        dnnlib.atomic_write(out, lambda f: f.write(json.dumps(results, indent=2) + '\n'), mode='w')
    return results

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
    try:
        metric_list = parse_metric_list(metrics)
        paths = parse_detector_paths(detector_path)
        device = resolve_device(device)
        if network is None and images is None:
            raise CalcError('give --network=PKL or --images=DIR (the generated images to score)')
        if network is not None and images is not None:
            raise CalcError('give either --network or --images, not both')
        if gpus > 1:
            raise CalcError(f'--gpus={gpus}: calc_metrics.py runs one process for now; the metrics library supports num_gpus > 1 '
                            'inside an initialised torch.distributed group (the training loop uses that)')
        calc_all(metric_list, network, data, mirror, gpus, verbose, seed, images, bootstrap, out, paths, device)
    except (CalcError, metric_utils.MetricError, detectors.DetectorError) as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e: # Dataset errors (training.dataset.DatasetError) and bad pickles.
        raise click.ClickException(str(e).splitlines()[0]) from None

#----------------------------------------------------------------------------

if __name__ == '__main__':
    calc_metrics() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
