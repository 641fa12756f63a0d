# Metric registry: NVIDIA's metric names and result keys, the same families at other sample counts, and our
# additions (SSIM, LPIPS, spectra, memorisation). calc_metric() runs one by name; report_metric() prints
# it and appends it to <run_dir>/metric-<name>.jsonl in NVIDIA's format.

import json
import os
import re
import time

import dnnlib
from metrics import bootstrap
from metrics import equivariance
from metrics import frechet_inception_distance
from metrics import inception_score
from metrics import kernel_inception_distance
from metrics import memorization
from metrics import paired_folders
from metrics import perceptual_path_length
from metrics import precision_recall
from metrics import spectrum
from metrics.errors import MetricError
from metrics.metric_utils import MetricOptions

#----------------------------------------------------------------------------
# Registry. Exact names map to functions; families are regular expressions whose groups set the sizes,
# e.g. fid10k_full = FID against the whole dataset with 10,000 generated images. Counts are written as
# upstream does (50k = 50,000) or exactly (fid200_full = 200 images, as fundus.demo names small runs).

_metric_dict = dict()   # name -> fn(opts)
_metric_families = []   # (compiled regex, fn(opts, match), example names)

def register_metric(fn):
    """Decorator: register fn(opts) -> results dict under the function's own name."""
    _metric_dict.update({fn.__name__: fn})
    return fn

def register_family(pattern, examples):
    def decorator(fn):
        _metric_families.append((re.compile(pattern), fn, tuple(examples)))
        return fn
    return decorator

def _resolve(metric):
    if metric in _metric_dict:
        return lambda opts: _metric_dict[metric](opts)
    for regex, fn, _examples in _metric_families:
        match = regex.fullmatch(metric)
        if match is not None and _sizes_valid(match):
            return lambda opts: fn(opts, match)
    return None

_COUNT = r'(\d+)(k?)' # A sample count: digits, then 'k' for thousands.

def _count(match, group):
    # The count in `group` (its 'k' is the next group).
    n = int(match.group(group))
    return n * 1000 if match.group(group + 1) else n

def _sizes_valid(match):
    return all(int(g) > 0 for g in match.groups() if g is not None and g.isdigit())

def is_valid_metric(metric):
    return isinstance(metric, str) and _resolve(metric) is not None

def list_valid_metrics():
    """Exact names plus one or more example names of every parameterised family."""
    names = list(_metric_dict.keys())
    for _regex, _fn, examples in _metric_families:
        names.extend(e for e in examples if e not in names)
    return names

def family_patterns():
    return [regex.pattern for regex, _fn, _examples in _metric_families]

#----------------------------------------------------------------------------

def calc_metric(metric, **kwargs):
    """Compute one metric.

    Args:
        metric:   A name accepted by is_valid_metric(), e.g. 'fid50k_full' or 'kid10k_full'.
        **kwargs: MetricOptions arguments: G, G_kwargs, dataset_kwargs, gen_dataset_kwargs, num_gpus, rank,
                  device, progress, cache, seed, detectors, detector_paths, out_dir, bootstrap.

    Returns:
        EasyDict(results, metric, total_time, total_time_str, num_gpus).
    """
    run = _resolve(metric)
    if run is None:
        raise MetricError(f'unknown metric "{metric}"; valid: {", ".join(list_valid_metrics())}')
    options = MetricOptions(**kwargs)
    t0 = time.time()
    values = dnnlib.EasyDict(run(options))
    elapsed = time.time() - t0
    # Key order is part of the jsonl format: results, metric, total_time, total_time_str, num_gpus.
    return dnnlib.EasyDict([('results', values), ('metric', metric), ('total_time', elapsed),
                            ('total_time_str', dnnlib.format_time(elapsed)), ('num_gpus', options.num_gpus)])

def report_metric(result_dict, run_dir=None, snapshot_pkl=None):
    """Print one JSON line and append it to <run_dir>/metric-<metric>.jsonl when run_dir is given.

    Returns the line. Key order: results, metric, total_time, total_time_str, num_gpus, snapshot_pkl, timestamp.
    """
    name = result_dict['metric']
    if not is_valid_metric(name):
        raise MetricError(f'report_metric: unknown metric "{name}"')
    # Inside a run directory the snapshot is recorded relative to it, so runs can be moved.
    pkl = snapshot_pkl if (snapshot_pkl is None or run_dir is None) else os.path.relpath(snapshot_pkl, run_dir)
    line = json.dumps({**result_dict, 'snapshot_pkl': pkl, 'timestamp': time.time()})
    print(line)
    if run_dir and os.path.isdir(run_dir): # No run directory (e.g. a pickle outside any run): print only.
        _append_line(os.path.join(run_dir, f'metric-{name}.jsonl'), line)
    return line

def _append_line(path, line):
    # One write call per record keeps concurrent readers (report.py, a plotting notebook) from seeing half lines.
    with open(path, 'a', encoding='utf-8') as log:
        log.write(f'{line}\n')

#----------------------------------------------------------------------------
# FID and KID families, with optional bootstrap intervals.

def _full(opts):
    return opts.with_dataset_overrides(max_size=None, xflip=False)

def _legacy(opts):
    return opts.with_dataset_overrides(max_size=None)

def _fid(opts, name, max_real, num_gen):
    fid, real, gen = frechet_inception_distance.compute_fid(opts, max_real=max_real, num_gen=num_gen)
    results = {name: fid}
    if opts.bootstrap > 0 and opts.rank == 0:
        values = bootstrap.bootstrap_fid(gen.get_all(), real.get_all(), opts.bootstrap, seed=opts.seed)
        results.update(bootstrap.summarize(values, name))
    return results

def _kid(opts, name, max_real, num_gen):
    kid, real, gen = kernel_inception_distance.compute_kid(opts, max_real=max_real, num_gen=num_gen, num_subsets=100, max_subset_size=1000)
    results = {name: kid}
    if opts.bootstrap > 0 and opts.rank == 0:
        values = bootstrap.bootstrap_kid(gen, real, opts.bootstrap, num_subsets=100, max_subset_size=1000, seed=opts.seed)
        results.update(bootstrap.summarize(values, name))
    return results

@register_family(rf'fid{_COUNT}_full', examples=['fid50k_full', 'fid10k_full', 'fid2k_full'])
def fid_full_family(opts, match):
    return _fid(_full(opts), match.group(0), max_real=None, num_gen=_count(match, 1))

@register_family(rf'fid{_COUNT}', examples=['fid50k'])
def fid_legacy_family(opts, match):
    n = _count(match, 1)
    return _fid(_legacy(opts), match.group(0), max_real=n, num_gen=n)

@register_family(rf'kid{_COUNT}_full', examples=['kid50k_full', 'kid10k_full'])
def kid_full_family(opts, match):
    return _kid(_full(opts), match.group(0), max_real=1000000, num_gen=_count(match, 1))

@register_family(rf'kid{_COUNT}', examples=['kid50k'])
def kid_legacy_family(opts, match):
    n = _count(match, 1)
    return _kid(_legacy(opts), match.group(0), max_real=n, num_gen=n)

#----------------------------------------------------------------------------
# Precision/recall, Inception Score, perceptual path length, equivariance.

def _pr(opts, name, max_real, num_gen, nhood_size):
    precision, recall = precision_recall.compute_pr(opts, max_real=max_real, num_gen=num_gen, nhood_size=nhood_size,
        row_batch_size=10000, col_batch_size=10000)
    return {f'{name}_precision': precision, f'{name}_recall': recall}

@register_family(r'pr(\d+)k(\d+)_full', examples=['pr50k3_full', 'pr10k3_full'])
def pr_full_family(opts, match):
    return _pr(_full(opts), match.group(0), max_real=200000, num_gen=int(match.group(1)) * 1000, nhood_size=int(match.group(2)))

@register_family(r'pr(\d+)k(\d+)', examples=['pr50k3'])
def pr_legacy_family(opts, match):
    n = int(match.group(1)) * 1000
    return _pr(_legacy(opts), match.group(0), max_real=n, num_gen=n, nhood_size=int(match.group(2)))

@register_family(rf'is{_COUNT}', examples=['is50k'])
def is_family(opts, match):
    mean, std = inception_score.compute_is(_full(opts), num_gen=_count(match, 1), num_splits=10)
    return {f'{match.group(0)}_mean': mean, f'{match.group(0)}_std': std}

@register_family(r'ppl(2?)_([zw])(full|end)', examples=['ppl2_wend', 'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend'])
def ppl_family(opts, match):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=50000, epsilon=1e-4, space=match.group(2),
        sampling=match.group(3), crop=(match.group(1) != '2'), batch_size=2)
    return {match.group(0): ppl}

def _eq(opts, name, num_samples, **kwargs):
    opts.G_kwargs = dnnlib.EasyDict(opts.G_kwargs, force_fp32=True)
    return {name: equivariance.compute_equivariance_metric(opts, num_samples=num_samples, batch_size=4, **kwargs)}

@register_family(rf'eqt{_COUNT}_int', examples=['eqt50k_int', 'eqt1k_int'])
def eqt_int_family(opts, match):
    return _eq(opts, match.group(0), _count(match, 1), compute_eqt_int=True)

@register_family(rf'eqt{_COUNT}_frac', examples=['eqt50k_frac'])
def eqt_frac_family(opts, match):
    return _eq(opts, match.group(0), _count(match, 1), compute_eqt_frac=True)

@register_family(rf'eqr{_COUNT}', examples=['eqr50k'])
def eqr_family(opts, match):
    return _eq(opts, match.group(0), _count(match, 1), compute_eqr=True)

#----------------------------------------------------------------------------
# Our additions.

@register_metric
def ssim(opts):
    return paired_folders.compute_ssim(opts, multiscale=False)

@register_metric
def msssim(opts):
    return paired_folders.compute_ssim(opts, multiscale=True)

@register_metric
def lpips(opts):
    return paired_folders.compute_lpips(opts, net='alex', name='lpips')

@register_metric
def lpips_vgg(opts):
    return paired_folders.compute_lpips(opts, net='vgg', name='lpips_vgg')

@register_family(rf'spectrum(?:{_COUNT})?', examples=['spectrum', 'spectrum10k'])
def spectrum_family(opts, match):
    num = _count(match, 1) if match.group(1) else 10000
    return spectrum.compute_spectrum_metric(_full(opts), name=match.group(0), num_images=num)

@register_family(rf'memorization(?:{_COUNT})?', examples=['memorization', 'memorization5k'])
def memorization_family(opts, match):
    num = _count(match, 1) if match.group(1) else 1000
    return memorization.compute_memorization_metric(_full(opts), name=match.group(0), num_gen=num)

#----------------------------------------------------------------------------
