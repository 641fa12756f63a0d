# Metric registry: NVIDIA's metric names and result keys, the same families at other sample counts, and our
# additions (SSIM, LPIPS, spectra, memorisation). calc_metric() runs one by name; report_metric() prints
# it and appends it to <run_dir>/metric-<name>.jsonl in NVIDIA's format.

import dataclasses
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
# The registry: the one owner of metric names, families and result keys.
#
# A family is a regular expression of metric names whose groups set the sizes, e.g. fid10k_full = FID
# against the whole dataset with 10,000 generated images. Counts are written as upstream does (50k =
# 50,000) or exactly (fid200_full = 200 images, as fundus.demo names small runs). Every family declares
# the result keys it writes, as suffixes after the metric name: value keys (shown as numbers), image
# counts that annotate them, and whether bootstrap interval keys (metrics.bootstrap.INTERVAL_SUFFIXES)
# follow its values. calc_metric() refuses results with undeclared keys, so split_result_key() can
# read every key a family writes. docs/metrics.md, "Adding a metric family", shows a registration.

@dataclasses.dataclass(frozen=True)
class Family:
    name:       str             # Family name shared by its sizes, e.g. 'fid'; reports explain metrics by it.
    pattern:    re.Pattern      # Full-match pattern of the metric names.
    compute:    object          # fn(opts: MetricOptions, match: re.Match) -> {result key: value}.
    examples:   tuple           # Names listed by list_valid_metrics().
    values:     tuple = ('',)   # Suffixes of the value keys, in written order ('' = the metric name itself).
    counts:     tuple = ()      # Suffixes of image-count keys that annotate the values, e.g. '_num_gen'.
    interval:   bool = False    # Bootstrap interval keys follow every value key when opts.bootstrap > 0.
    literal:    bool = False    # One exact name (register_metric), not a pattern.

@dataclasses.dataclass(frozen=True)
class MetricName:
    name:       str             # e.g. 'fid10k_full'.
    family:     Family
    match:      re.Match        # The pattern's match; its groups hold the sizes.

@dataclasses.dataclass(frozen=True)
class ResultKey:
    key:        str             # e.g. 'fid10k_full_boot_p2.5'.
    metric:     str             # The metric that writes it: 'fid10k_full'.
    value:      str             # The value key it belongs to ('fid10k_full'); None for image counts.
    role:       str             # 'value', 'count', or an interval role: 'mean', 'low', 'high', 'n'.
    suffix:     str             # What follows the metric name, without the leading '_' ('boot_p2.5').

INTERVAL_ROLES = tuple(bootstrap.INTERVAL_SUFFIXES) # ('mean', 'low', 'high', 'n')

_families = [] # Family objects in registration order.

def register_family(family, pattern, examples, values=('',), counts=(), interval=False):
    """Decorator: register fn(opts, match) -> results for the metric names fully matching `pattern`."""
    def decorator(fn):
        _families.append(Family(family, re.compile(pattern), fn, tuple(examples), tuple(values), tuple(counts), interval))
        return fn
    return decorator

def register_metric(name, family=None, values=('',), counts=(), interval=False):
    """Decorator: register fn(opts) -> results under one exact metric name (its family defaults to the name)."""
    def decorator(fn):
        _families.append(Family(family or name, re.compile(re.escape(name)), lambda opts, _match: fn(opts), (name,),
                                tuple(values), tuple(counts), interval, literal=True))
        return fn
    return decorator

COUNT_PATTERN = r'(\d+)(k?)' # A sample count: digits, then 'k' for thousands.

def count_of(match, group):
    # The count in `group` (its 'k' is the next group).
    n = int(match.group(group))
    return n * 1000 if match.group(group + 1) else n

def _sizes_valid(match):
    return all(int(g) > 0 for g in match.groups() if g is not None and g.isdigit())

def _lookup(metric):
    # MetricName of a registered name, or None. Exact names first, then patterns in registration order.
    if not isinstance(metric, str):
        return None
    for family in sorted(_families, key=lambda f: not f.literal):
        match = family.pattern.fullmatch(metric)
        if match is not None and _sizes_valid(match):
            return MetricName(metric, family, match)
    return None

def parse_metric_name(metric):
    """MetricName (family, sizes) of a metric name; raises MetricError for an unknown one."""
    parsed = _lookup(metric)
    if parsed is None:
        raise MetricError(f'unknown metric "{metric}"; valid: {", ".join(list_valid_metrics())}')
    return parsed

def _resolve(metric):
    parsed = _lookup(metric)
    return None if parsed is None else (lambda opts: parsed.family.compute(opts, parsed.match))

def is_valid_metric(metric):
    return _lookup(metric) is not None

def metric_family(metric):
    """Family name of a metric ('fid10k_full' -> 'fid', 'lpips_vgg' -> 'lpips'); None when unknown."""
    parsed = _lookup(metric)
    return None if parsed is None else parsed.family.name

def list_valid_metrics():
    """Exact names plus one or more example names of every parameterised family."""
    names = []
    for family in sorted(_families, key=lambda f: not f.literal):
        names.extend(e for e in family.examples if e not in names)
    return names

def family_patterns():
    return [f.pattern.pattern for f in _families if not f.literal]

def sized_name(prefix, count, suffix=''):
    """The metric name for `count` images: sized_name('fid', 2000, '_full') = 'fid2k_full', ('fid', 200) = 'fid200'."""
    name = f'{prefix}{count // 1000}k{suffix}' if count % 1000 == 0 else f'{prefix}{count}{suffix}'
    parse_metric_name(name)
    return name

#----------------------------------------------------------------------------
# Result keys: the writer's declaration (result_keys) and the one parser (split_result_key).

def _key_roles(parsed):
    # {suffix after the metric name: (value key or None, role)} of every key the metric may write.
    name, family = parsed.name, parsed.family
    roles = {v: (name + v, 'value') for v in family.values}
    for v in family.values if family.interval else ():
        roles.update({v + s: (name + v, role) for role, s in bootstrap.INTERVAL_SUFFIXES.items()})
    roles.update({c: (None, 'count') for c in family.counts})
    return roles

def result_keys(metric, bootstrap=False):
    """Every result key calc_metric(metric) writes, in order (interval keys only with bootstrap=True)."""
    parsed = parse_metric_name(metric)
    return [parsed.name + suffix for suffix, (_value, role) in _key_roles(parsed).items()
            if role in ('value', 'count') or bootstrap]

def _split_for(parsed, key):
    if not key.startswith(parsed.name):
        return None
    suffix = key[len(parsed.name):]
    found = _key_roles(parsed).get(suffix)
    return None if found is None else ResultKey(key, parsed.name, found[0], found[1], suffix.lstrip('_'))

def split_result_key(key, metric=None):
    """ResultKey of a result key ('fid10k_full_boot_p2.5' -> value 'fid10k_full', role 'low'); None when no
    registered metric writes it. `metric` names the writer when known (the metric-<name>.jsonl file)."""
    if metric is not None:
        parsed = _lookup(metric)
        return None if parsed is None else _split_for(parsed, key)
    cuts = [len(key)] + [i for i in range(len(key) - 1, 0, -1) if key[i] == '_'] # Longest metric name first.
    for cut in cuts:
        parsed = _lookup(key[:cut])
        found = None if parsed is None else _split_for(parsed, key)
        if found is not None:
            return found
    return None

def is_interval_key(key, metric=None):
    found = split_result_key(key, metric)
    return found is not None and found.role in INTERVAL_ROLES

#----------------------------------------------------------------------------

def calc_metric(metric, **kwargs):
    """Compute one metric.

    Args:
        metric:   A name accepted by is_valid_metric(), e.g. 'fid50k_full' or 'kid10k_full'.
        **kwargs: MetricOptions arguments: G, G_kwargs, dataset_kwargs, gen_dataset_kwargs, models, num_gpus,
                  rank, device, progress, cache, seed, detectors, detector_paths, out_dir, bootstrap.

    Returns:
        EasyDict(results, metric, total_time, total_time_str, num_gpus).
    """
    parsed = parse_metric_name(metric)
    options = MetricOptions(**kwargs)
    t0 = time.time()
    values = dnnlib.EasyDict(parsed.family.compute(options, parsed.match))
    elapsed = time.time() - t0
    undeclared = [k for k in values if k not in result_keys(metric, bootstrap=True)]
    if undeclared:
        raise MetricError(f'{metric}: its family "{parsed.family.name}" wrote result keys it does not declare: {", ".join(undeclared)}')
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

@register_family('fid', rf'fid{COUNT_PATTERN}_full', examples=['fid50k_full', 'fid10k_full', 'fid2k_full'], interval=True)
def fid_full_family(opts, match):
    return _fid(_full(opts), match.group(0), max_real=None, num_gen=count_of(match, 1))

@register_family('fid', rf'fid{COUNT_PATTERN}', examples=['fid50k'], interval=True)
def fid_legacy_family(opts, match):
    n = count_of(match, 1)
    return _fid(_legacy(opts), match.group(0), max_real=n, num_gen=n)

@register_family('kid', rf'kid{COUNT_PATTERN}_full', examples=['kid50k_full', 'kid10k_full'], interval=True)
def kid_full_family(opts, match):
    return _kid(_full(opts), match.group(0), max_real=1000000, num_gen=count_of(match, 1))

@register_family('kid', rf'kid{COUNT_PATTERN}', examples=['kid50k'], interval=True)
def kid_legacy_family(opts, match):
    n = count_of(match, 1)
    return _kid(_legacy(opts), match.group(0), max_real=n, num_gen=n)

#----------------------------------------------------------------------------
# Precision/recall, Inception Score, perceptual path length, equivariance.

_PR_KEYS = ('_precision', '_recall')

def _pr(opts, name, max_real, num_gen, nhood_size):
    precision, recall = precision_recall.compute_pr(opts, max_real=max_real, num_gen=num_gen, nhood_size=nhood_size,
        row_batch_size=10000, col_batch_size=10000)
    return {f'{name}_precision': precision, f'{name}_recall': recall}

@register_family('pr', r'pr(\d+)k(\d+)_full', examples=['pr50k3_full', 'pr10k3_full'], values=_PR_KEYS)
def pr_full_family(opts, match):
    return _pr(_full(opts), match.group(0), max_real=200000, num_gen=int(match.group(1)) * 1000, nhood_size=int(match.group(2)))

@register_family('pr', r'pr(\d+)k(\d+)', examples=['pr50k3'], values=_PR_KEYS)
def pr_legacy_family(opts, match):
    n = int(match.group(1)) * 1000
    return _pr(_legacy(opts), match.group(0), max_real=n, num_gen=n, nhood_size=int(match.group(2)))

@register_family('is', rf'is{COUNT_PATTERN}', examples=['is50k'], values=('_mean', '_std'))
def is_family(opts, match):
    mean, std = inception_score.compute_is(_full(opts), num_gen=count_of(match, 1), num_splits=10)
    return {f'{match.group(0)}_mean': mean, f'{match.group(0)}_std': std}

@register_family('ppl', r'ppl(2?)_([zw])(full|end)', examples=['ppl2_wend', 'ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl_wend'])
def ppl_family(opts, match):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=50000, epsilon=1e-4, space=match.group(2),
        sampling=match.group(3), crop=(match.group(1) != '2'), batch_size=2)
    return {match.group(0): ppl}

def _eq(opts, name, num_samples, **kwargs):
    opts.G_kwargs = dnnlib.EasyDict(opts.G_kwargs, force_fp32=True)
    return {name: equivariance.compute_equivariance_metric(opts, num_samples=num_samples, batch_size=4, **kwargs)}

@register_family('eqt', rf'eqt{COUNT_PATTERN}_int', examples=['eqt50k_int', 'eqt1k_int'])
def eqt_int_family(opts, match):
    return _eq(opts, match.group(0), count_of(match, 1), compute_eqt_int=True)

@register_family('eqt', rf'eqt{COUNT_PATTERN}_frac', examples=['eqt50k_frac'])
def eqt_frac_family(opts, match):
    return _eq(opts, match.group(0), count_of(match, 1), compute_eqt_frac=True)

@register_family('eqr', rf'eqr{COUNT_PATTERN}', examples=['eqr50k'])
def eqr_family(opts, match):
    return _eq(opts, match.group(0), count_of(match, 1), compute_eqr=True)

#----------------------------------------------------------------------------
# Our additions.

_PAIRED_KEYS = ('', '_std', '_num') # paired_folders.summarize()

@register_metric('ssim', values=_PAIRED_KEYS)
def ssim(opts):
    return paired_folders.compute_ssim(opts, multiscale=False)

@register_metric('msssim', values=_PAIRED_KEYS)
def msssim(opts):
    return paired_folders.compute_ssim(opts, multiscale=True)

@register_metric('lpips', values=_PAIRED_KEYS)
def lpips(opts):
    return paired_folders.compute_lpips(opts, net='alex', name='lpips')

@register_metric('lpips_vgg', family='lpips', values=_PAIRED_KEYS)
def lpips_vgg(opts):
    return paired_folders.compute_lpips(opts, net='vgg', name='lpips_vgg')

@register_family('spectrum', rf'spectrum(?:{COUNT_PATTERN})?', examples=['spectrum', 'spectrum10k'], counts=('_num_real', '_num_gen'))
def spectrum_family(opts, match):
    num = count_of(match, 1) if match.group(1) else 10000
    return spectrum.compute_spectrum_metric(_full(opts), name=match.group(0), num_images=num)

@register_family('memorization', rf'memorization(?:{COUNT_PATTERN})?', examples=['memorization', 'memorization5k'],
                 values=memorization.VALUE_SUFFIXES, counts=memorization.COUNT_SUFFIXES)
def memorization_family(opts, match):
    num = count_of(match, 1) if match.group(1) else 1000
    return memorization.compute_memorization_metric(_full(opts), name=match.group(0), num_gen=num)

#----------------------------------------------------------------------------
