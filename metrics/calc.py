# The library half of calc_metrics.py: metric and detector options parsed, the generator and the reference
# and generated image sets resolved, every metric computed through the registry and reported (printed as
# NVIDIA's JSON lines, appended to the run's metric-<name>.jsonl, optionally written to one JSON file).
# Errors are MetricError / DetectorError with one-line messages naming the option.

import json
import os

import dnnlib
from metrics import detectors
from metrics import metric_main
from metrics import metric_utils
from metrics.errors import MetricError
from torch_utils import persistence

#----------------------------------------------------------------------------

def parse_metric_list(text):
    names = [] if text.strip().lower() == 'none' else [m.strip() for m in text.split(',') if m.strip()]
    bad = [m for m in names if not metric_main.is_valid_metric(m)]
    if bad:
        raise MetricError(f'--metrics: unknown metric(s) {", ".join(bad)}; valid: {", ".join(metric_main.list_valid_metrics())} '
                          f'and the patterns {", ".join(metric_main.family_patterns())}')
    return names

def parse_detector_paths(values):
    paths = {}
    for value in values:
        name, sep, path = value.partition('=')
        if not sep or name not in detectors.DETECTOR_NAMES or not path:
            raise MetricError(f'--detector-path: expected NAME=FILE with NAME one of {", ".join(detectors.DETECTOR_NAMES)}, got "{value}"')
        paths[name] = path
    return paths

#----------------------------------------------------------------------------

def load_generator(network, adapters=()):
    """(network to score, training_set_kwargs) of a snapshot. Each adapter maps the snapshot dict to the network
    the metrics get, or None; the first that answers wins (e.g. an encoder snapshot's E + G), else G_ema or G."""
    if not dnnlib.util.is_url(network, allow_file_urls=True) and not os.path.isfile(network):
        raise MetricError(f'--network={network}: no such file')
    try:
        data = persistence.load_network_pkl(network)
    except (OSError, ValueError) as e:
        raise MetricError(f'--network={network}: {str(e).splitlines()[0]}') from None
    G = next((net for net in (adapt(data) for adapt in adapters) if net is not None), None)
    G = G or data.get('G_ema') or data.get('G')
    if G is None:
        raise MetricError(f'--network={network}: the pickle holds no generator (G_ema or G)')
    return G.eval().requires_grad_(False), data.get('training_set_kwargs')

def real_dataset_kwargs(data, training_set_kwargs, G, mirror, images_mode):
    if data is not None:
        if not os.path.exists(data):
            raise MetricError(f'--data={data}: no such file or folder')
        if images_mode:
            return dnnlib.EasyDict(class_name='metrics.image_folder.ImageFolder', path=data)
        kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data)
    elif training_set_kwargs is not None:
        kwargs = dnnlib.EasyDict(training_set_kwargs)
        path = kwargs.get('path')
        if not isinstance(path, str) or not os.path.exists(path):
            raise MetricError(f'the network pickle names its training set as {path!r}, which does not exist here; '
                              f'pass --data=ZIP_OR_DIR')
    else:
        raise MetricError('--data is required: the network pickle does not name its training set')
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
        raise MetricError(f'mismatched resolutions: --images has {gen.image_shape[2]}x{gen.image_shape[1]} images, '
                          f'--data has {real.image_shape[2]}x{real.image_shape[1]}')

def run_dir_of(network):
    if network is None or dnnlib.util.is_url(network):
        return None
    folder = os.path.dirname(os.path.abspath(network))
    return folder if os.path.isfile(os.path.join(folder, 'training_options.json')) else None

#----------------------------------------------------------------------------

def calc_all(metrics, network, data, mirror, gpus, verbose, seed, images, bootstrap, out, detector_paths, device, adapters=()):
    """Run every metric on one process; returns {metric: result dict}."""
    G, training_set_kwargs = load_generator(network, adapters) if network is not None else (None, None)
    if G is not None:
        G = G.to(device)
    gen_kwargs = None
    if images is not None:
        if not os.path.exists(images):
            raise MetricError(f'--images={images}: no such file or folder')
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
