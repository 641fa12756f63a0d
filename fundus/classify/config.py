# The study definition: one JSON (or YAML, when PyYAML is installed) file or the equivalent command-line
# options, validated key by key, with defaults filled in and the condition sweeps expanded into a list of
# named conditions. Paths are resolved relative to the study file.

import copy
import hashlib
import json
import os

#----------------------------------------------------------------------------

class ClassifyError(Exception):
    """Bad input to the classifier study; the CLI prints the message as one line."""

#----------------------------------------------------------------------------

CONDITION_KINDS = ('real', 'real+oversample', 'real+classic', 'real+synthetic', 'synthetic-only', 'gan-test')
SOURCE_KINDS = ('folder', 'snapshot', 'snapshots', 'noise')
ARCHS = ('resnet18', 'resnet50', 'mobilenet_v3_small', 'tiny')

DEFAULTS = dict(
    name        = 'study',
    resolution  = 64,           # Images are resized to this side (pixels) on load.
    num_classes = 5,            # ICDR grades 0..4.
    seeds       = 5,            # Seeds per condition (an int n means 0..n-1, or a list).
    bootstrap   = 1000,         # Patient-bootstrap resamples for CIs and paired differences.
    alpha       = 0.05,         # 1 - confidence level.
    device      = 'auto',
    data        = None,         # {train, val, test} zips, or {zip, split: {val, test, seed}}.
    external    = None,         # Optional external test zip.
    patients    = None,         # Optional CSV (image, patient) for every zip.
    gan_train   = None,         # The GAN's training zip (else read from each snapshot's training_set_kwargs).
    sources     = {},           # name -> {kind, path | paths, ...}
    conditions  = None,         # [{kind, source?, per_grade? | ratio?, name?}]
    model       = {},
)

MODEL_DEFAULTS = dict(
    arch        = 'resnet18',
    weights     = None,         # Local state-dict file to start from; None = from scratch.
    steps       = 1000,         # Optimiser steps (the same for every condition, whatever its data size).
    batch       = 32,
    lr          = 1e-3,         # AdamW, cosine decay to 0 over `steps`.
    weight_decay= 1e-4,
    val_every   = 200,          # Keep the weights with the best validation quadratic kappa.
    amp         = True,         # Mixed precision (float16 autocast) on CUDA only.
    width       = 16,           # Channels of the first block of the 'tiny' model.
)

_TOP_KEYS = set(DEFAULTS)

#----------------------------------------------------------------------------

def load_study(path):
    """Read a study file (JSON, or YAML with PyYAML installed) into a resolved definition."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        raise ClassifyError(f'{path}: cannot read study file ({e.strerror or e})') from None
    if path.lower().endswith(('.yaml', '.yml')):
        try:
            import yaml # Optional: only YAML study files need PyYAML.
        except ImportError:
            raise ClassifyError(f'{path}: YAML study files need PyYAML (pip install pyyaml); or write the study as JSON') from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ClassifyError(f'{path}: not valid YAML ({str(e).splitlines()[0]})') from None
    else:
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise ClassifyError(f'{path}: not valid JSON ({e})') from None
    return resolve(raw, base=os.path.dirname(os.path.abspath(path)), where=path)

def _abspath(base, p):
    return None if p is None else os.path.normpath(os.path.join(base, os.path.expanduser(str(p))))

def _check_keys(d, allowed, where):
    if not isinstance(d, dict):
        raise ClassifyError(f'{where}: expected a mapping, got {type(d).__name__}')
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ClassifyError(f'{where}: unknown key {unknown[0]!r} (allowed: {", ".join(sorted(allowed))})')

def resolve(raw, base='.', where='study'):
    """Validate a raw definition, fill defaults, make paths absolute and expand the conditions."""
    _check_keys(raw, _TOP_KEYS, where)
    s = copy.deepcopy(DEFAULTS)
    s.update(copy.deepcopy(raw))
    _check_keys(s['model'], MODEL_DEFAULTS, f'{where}: model')
    s['model'] = dict(MODEL_DEFAULTS, **s['model'])
    if s['model']['arch'] not in ARCHS:
        raise ClassifyError(f'{where}: model.arch={s["model"]["arch"]!r}; choose one of {", ".join(ARCHS)}')
    s['model']['weights'] = _abspath(base, s['model']['weights'])
    s['seeds'] = list(range(int(s['seeds']))) if isinstance(s['seeds'], int) else [int(x) for x in s['seeds']]
    if len(s['seeds']) < 1:
        raise ClassifyError(f'{where}: seeds: at least one seed is needed (5 or more recommended)')
    s['data'] = _resolve_data(s['data'], base, where)
    for key in ('external', 'patients', 'gan_train'):
        s[key] = _abspath(base, s[key])
    s['sources'] = {name: _resolve_source(name, src, base, where) for name, src in (s['sources'] or {}).items()}
    s['conditions'] = expand_conditions(s['conditions'] or [{'kind': 'real'}], s['sources'], where)
    return s

def _resolve_data(data, base, where):
    if data is None:
        raise ClassifyError(f'{where}: data is required: {{"train", "val", "test"}} zips or {{"zip", "split"}}')
    _check_keys(data, {'train', 'val', 'test', 'zip', 'split'}, f'{where}: data')
    if 'zip' in data:
        split = dict(dict(val=0.15, test=0.25, seed=0), **(data.get('split') or {}))
        _check_keys(split, {'val', 'test', 'seed'}, f'{where}: data.split')
        if not (0 < split['val'] < 1 and 0 < split['test'] < 1 and split['val'] + split['test'] < 1):
            raise ClassifyError(f'{where}: data.split: val and test must be fractions in (0, 1) with val + test < 1')
        return dict(zip=_abspath(base, data['zip']), split=split)
    missing = [k for k in ('train', 'val', 'test') if k not in data]
    if missing:
        raise ClassifyError(f'{where}: data.{missing[0]} is missing (give train, val and test zips, or one zip with a split)')
    return {k: _abspath(base, data[k]) for k in ('train', 'val', 'test')}

def _resolve_source(name, src, base, where):
    w = f'{where}: sources.{name}'
    _check_keys(src, {'kind', 'path', 'paths', 'trunc', 'seed', 'batch'}, w)
    kind = src.get('kind')
    if kind not in SOURCE_KINDS:
        raise ClassifyError(f'{w}: kind={kind!r}; choose one of {", ".join(SOURCE_KINDS)}')
    out = dict(kind=kind, trunc=float(src.get('trunc', 1.0)), seed=int(src.get('seed', 0)), batch=int(src.get('batch', 8)))
    if kind in ('folder', 'snapshot'):
        if not src.get('path'):
            raise ClassifyError(f'{w}: a {kind} source needs "path"')
        out['path'] = _abspath(base, src['path'])
    if kind == 'snapshots':
        paths = src.get('paths')
        if not isinstance(paths, dict) or not paths:
            raise ClassifyError(f'{w}: a snapshots source needs "paths": {{"0": "dr0.pkl", "1": "dr1.pkl", ...}}')
        out['paths'] = {int(g): _abspath(base, p) for g, p in paths.items()}
    return out

#----------------------------------------------------------------------------

def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]

def expand_conditions(conds, sources, where='study'):
    """[{kind, ...}] -> list of dicts with a unique 'name'; sweeps (lists of per_grade or ratio) become one
    condition per value. 'real' is always present and first (the reference of every paired comparison)."""
    out = []
    for i, c in enumerate(conds):
        c = {'kind': c} if isinstance(c, str) else dict(c)
        w = f'{where}: conditions[{i}]'
        _check_keys(c, {'kind', 'source', 'per_grade', 'ratio', 'name'}, w)
        kind = c.get('kind')
        if kind not in CONDITION_KINDS:
            raise ClassifyError(f'{w}: kind={kind!r}; choose one of {", ".join(CONDITION_KINDS)}')
        if kind in ('real+synthetic', 'synthetic-only', 'gan-test'):
            out += _expand_synthetic(c, kind, sources, w)
        else:
            out.append(dict(name=c.get('name', kind), kind=kind, source=None, per_grade=None, ratio=None))
    if not any(c['kind'] == 'real' for c in out):
        out.insert(0, dict(name='real', kind='real', source=None, per_grade=None, ratio=None))
    out.sort(key=lambda c: c['kind'] != 'real')
    names = [c['name'] for c in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ClassifyError(f'{where}: two conditions are named {dup!r}; give one of them a "name"')
    return out

def _expand_synthetic(c, kind, sources, w):
    src = c.get('source')
    if src not in sources:
        raise ClassifyError(f'{w}: source={src!r} is not one of the study\'s sources ({", ".join(sources) or "none defined"})')
    if ('per_grade' in c) == ('ratio' in c):
        raise ClassifyError(f'{w}: give exactly one of "per_grade" (images per grade) or "ratio" (synthetic:real)')
    if kind == 'gan-test' and 'ratio' in c:
        raise ClassifyError(f'{w}: gan-test takes "per_grade" (images generated per grade)')
    key = 'per_grade' if 'per_grade' in c else 'ratio'
    values = _as_list(c[key])
    out = []
    for v in values:
        v = int(v) if key == 'per_grade' else float(v)
        if v <= 0:
            raise ClassifyError(f'{w}: {key}={v} must be positive')
        label = f'{src}@{v}/grade' if key == 'per_grade' else f'{src}@{v:g}x'
        prefix = {'real+synthetic': 'real+', 'synthetic-only': 'synthetic-only:', 'gan-test': 'gan-test:'}[kind]
        name = c.get('name', prefix + label) if len(values) == 1 else prefix + label
        out.append(dict(name=name, kind=kind, source=src, per_grade=v if key == 'per_grade' else None,
                        ratio=v if key == 'ratio' else None))
    return out

#----------------------------------------------------------------------------

def definition_hash(study):
    """sha256 of the resolved definition except the device (a study may move between machines)."""
    d = {k: v for k, v in study.items() if k != 'device'}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

def slug(name):
    """A condition name as a file name."""
    return ''.join(ch if ch.isalnum() or ch in '-_.@' else '_' for ch in name)

#----------------------------------------------------------------------------
