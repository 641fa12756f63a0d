# The study runner: prepare the data and the leakage check, train one classifier per (condition, seed) cell,
# keep every finished cell in a store under the output folder, and evaluate once all cells are done.
#
# Store layout (outdir/): store.json (the definition hash the cells belong to), cells/<condition>/seed<k>.json
# (test-set probabilities, validation history, gan-test probabilities), then study.json, predictions/*.csv,
# study.html and timing.json. A cell file is written atomically when the cell is finished and is never
# recomputed; a killed study run again continues with the missing cells. Under torchrun every rank takes the
# cells whose index in the full cell list is congruent to its rank, skips finished ones, and rank 0 evaluates.

import dataclasses
import json
import os
import time

import numpy as np
import torch
import tqdm

import dnnlib
from torch_utils import distributed
from torch_utils import device as device_utils
from fundus.classify import config as cconfig
from fundus.classify import data as cdata
from fundus.classify import evaluate
from fundus.classify import models
from fundus.classify import sources
from fundus.classify.config import ClassifyError

#----------------------------------------------------------------------------

@dataclasses.dataclass
class Plan:
    study:      dict            # The resolved definition.
    sets:       dict            # 'train', 'val', 'test' (and 'external') -> data.ImageSet
    needs:      dict            # source name -> {grade: images needed}
    pools:      dict            # source name -> sources.Pool (filled by build_pools)
    gan_train:  list            # [(label, record)] training sets of the generators
    leakage:    list            # Lines of the checks that passed.
    inputs:     dict            # path -> sha256 of every input file
    cells:      list            # [(condition dict, seed)] to train

#----------------------------------------------------------------------------

def _load_sets(study, progress):
    table = cdata.read_patient_csv(study['patients']) if study['patients'] else None
    r, k = study['resolution'], study['num_classes']
    d = study['data']
    if 'zip' in d:
        full = cdata.load_set(d['zip'], 'data.zip', r, k, table, progress)
        parts = cdata.split_by_patient(full, d['split']['val'], d['split']['test'], d['split']['seed'], k)
        sets = dict(zip(('train', 'val', 'test'), parts))
    else:
        sets = {s: cdata.load_set(d[s], f'data.{s}', r, k, table, progress) for s in ('train', 'val', 'test')}
    if study['external']:
        sets['external'] = cdata.load_set(study['external'], 'external', r, k, table, progress)
    for name in ('test', 'external'):
        if name in sets:
            counts = sets[name].counts(k)
            absent = [g for g in range(k) if counts[g] == 0]
            if absent:
                raise ClassifyError(f'{name} set {sets[name].path}: no image of grade {absent[0]} (counts per grade {counts}); '
                                    f'per-grade sensitivity and the macro AUC need every grade, or set num_classes')
    return sets

def _needs(study, train_counts):
    needs = {}
    k = study['num_classes']
    for c in study['conditions']:
        if c['source'] is None:
            continue
        if c['per_grade'] is not None:
            per = {g: c['per_grade'] for g in range(k)}
        else:
            total = int(round(c['ratio'] * sum(train_counts)))
            per = {g: total // k + (1 if g < total % k else 0) for g in range(k)}
        cur = needs.setdefault(c['source'], {g: 0 for g in range(k)})
        for g, n in per.items():
            cur[g] = max(cur[g], n)
    return needs

def _gan_train_records(study, table, progress):
    records, paths = [], []
    if study['gan_train']:
        paths.append(('gan_train', study['gan_train']))
    for name, src in study['sources'].items():
        for pkl, path in sources.snapshot_training_paths(src):
            if path is None or not os.path.exists(path):
                if study['gan_train'] is None:
                    where = f'records {path}, which is not here' if path else 'records no training set'
                    raise ClassifyError(f'sources.{name}: snapshot {pkl} {where}; give the GAN\'s training zip as gan_train '
                                        f'so the leakage check can run')
                continue
            paths.append((f'the training set of {os.path.basename(pkl)}', path))
    for label, path in paths:
        records.append((f'{label} ({path})', cdata.scan_record(path, label, table, progress)))
    return records, [p for _, p in paths]

def prepare(study, progress=False):
    """Load the real sets, check the grades and the leakage guard between the GAN's training images and the
    validation/test sets; synthetic pools are built by build_pools (they may need a generator)."""
    bar = tqdm.tqdm(desc='loading images', unit='img', disable=not progress, leave=False)
    sets = _load_sets(study, bar)
    table = cdata.read_patient_csv(study['patients']) if study['patients'] else None
    gan_train, gan_paths = _gan_train_records(study, table, bar)
    bar.close()
    protected = {f'{n} ({sets[n].path})': cdata.record(sets[n]) for n in ('val', 'test', 'external') if n in sets}
    others = {f'train ({sets["train"].path})': (cdata.record(sets['train']), True)}
    others.update({label: (rec, True) for label, rec in gan_train})
    leakage = cdata.check_leakage(protected, others)
    cdata.check_leakage({f'test ({sets["test"].path})': cdata.record(sets['test'])},
                        {f'val ({sets["val"].path})': (cdata.record(sets['val']), True)})
    leakage.append('val vs test: no shared image, no shared patient')
    inputs = _input_hashes(study, gan_paths)
    cells = [(c, s) for c in study['conditions'] if c['kind'] != 'gan-test' for s in study['seeds']]
    return Plan(study, sets, _needs(study, sets['train'].counts(study['num_classes'])), {}, gan_train, leakage, inputs, cells)

def _input_hashes(study, gan_paths):
    paths = [p for p in list(study['data'].values()) if isinstance(p, str)]
    paths += [p for p in (study['external'], study['patients'], study['model']['weights']) if p]
    for src in study['sources'].values():
        paths += [src['path']] if 'path' in src else list(src.get('paths', {}).values())
    paths += gan_paths
    return {p: cdata.file_sha256(p) for p in sorted(set(paths)) if os.path.exists(p)}

def build_pools(plan, device, progress=False):
    """Render or read every synthetic pool and check it against the validation and test sets."""
    s = plan.study
    total = sum(sum(n.values()) for n in plan.needs.values())
    bar = tqdm.tqdm(total=total, desc='synthetic images', unit='img', disable=not progress, leave=False)
    for name, need in plan.needs.items():
        plan.pools[name] = sources.build_pool(name, s['sources'][name], need, s['resolution'], s['num_classes'], device, bar)
    bar.close()
    protected = {f'{n} ({plan.sets[n].path})': cdata.record(plan.sets[n]) for n in ('val', 'test', 'external') if n in plan.sets}
    others = {f'source {n}': (p.record(), False) for n, p in plan.pools.items()}
    plan.leakage += cdata.check_leakage(protected, others)
    return plan

#----------------------------------------------------------------------------
# One cell.

def training_data(plan, cond):
    """uint8 images [N, 3, R, R] and grades [N] a condition trains on."""
    train = plan.sets['train']
    if cond['kind'] in ('real', 'real+oversample', 'real+classic'):
        return train.images, train.grades
    pool, k = plan.pools[cond['source']], plan.study['num_classes']
    if cond['per_grade'] is not None:
        per = {g: cond['per_grade'] for g in range(k)}
    else:
        tot = int(round(cond['ratio'] * len(train)))
        per = {g: tot // k + (1 if g < tot % k else 0) for g in range(k)}
    syn = [pool.take(g, n) for g, n in per.items() if n > 0]
    syn_grades = np.concatenate([np.full(n, g, np.int64) for g, n in per.items() if n > 0])
    if cond['kind'] == 'synthetic-only':
        return np.concatenate(syn), syn_grades
    return np.concatenate([train.images] + syn), np.concatenate([train.grades, syn_grades])

def run_cell(plan, cond, seed, device, progress=False):
    s = plan.study
    t0 = time.time()
    images, grades = training_data(plan, cond)
    net = models.build_model(s['model']['arch'], s['num_classes'], seed, s['model']['width'], s['model']['weights'])
    val = (plan.sets['val'].images, plan.sets['val'].grades)
    state, history = models.train(net, images, grades, s['model'], seed, val, device, balanced=cond['kind'] == 'real+oversample',
                                  augment=cond['kind'] == 'real+classic', progress=progress, desc=f'{cond["name"]} seed {seed}')
    net.load_state_dict(state)
    out = dict(condition=cond['name'], seed=seed, train_counts=np.bincount(grades, minlength=s['num_classes']).tolist(),
               history=history, test=models.predict(net, plan.sets['test'].images, device).tolist())
    if 'external' in plan.sets:
        out['external'] = models.predict(net, plan.sets['external'].images, device).tolist()
    if cond['kind'] == 'real':
        out['gan_test'] = {c['name']: {str(g): models.predict(net, plan.pools[c['source']].take(g, c['per_grade']), device).tolist()
                                       for g in range(s['num_classes'])} for c in s['conditions'] if c['kind'] == 'gan-test'}
    out['seconds'] = time.time() - t0
    return out

#----------------------------------------------------------------------------
# The store.

def cell_path(outdir, cond_name, seed):
    return os.path.join(outdir, 'cells', cconfig.slug(cond_name), f'seed{seed}.json')

def _write_json(path, obj):
    text = json.dumps(_clean(obj), indent=1, sort_keys=False, allow_nan=False)
    dnnlib.atomic_write(path, lambda f: f.write(text.encode('utf-8')))

def _clean(obj):
    # NaN/inf -> None, numpy scalars -> Python, so study.json is strict JSON.
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj

def open_store(outdir, study):
    """Create or reopen the store; a store of a different definition is refused."""
    path = os.path.join(outdir, 'store.json')
    digest = cconfig.definition_hash(study)
    if os.path.exists(path):
        with open(path) as f:
            have = json.load(f).get('definition_sha256')
        if have != digest:
            raise ClassifyError(f'{outdir}: holds cells of a different study definition (sha256 {str(have)[:12]}, this one {digest[:12]}); '
                                f'use a new --outdir')
    elif distributed.is_main():
        _write_json(path, dict(definition_sha256=digest, definition=study))
    return digest

def done(outdir, cond_name, seed):
    return os.path.exists(cell_path(outdir, cond_name, seed))

def load_cell(outdir, cond_name, seed):
    with open(cell_path(outdir, cond_name, seed)) as f:
        return json.load(f)

#----------------------------------------------------------------------------
# Running and evaluating.

def describe(plan):
    """The plan as text lines (printed by --dry-run)."""
    s, k = plan.study, plan.study['num_classes']
    lines = [f'study {s["name"]}: {len(plan.cells)} cells ({len([c for c in s["conditions"] if c["kind"] != "gan-test"])} '
             f'conditions x {len(s["seeds"])} seeds), model {s["model"]["arch"]}, {s["model"]["steps"]} steps, {s["resolution"]} px']
    for name, st in plan.sets.items():
        lines.append(f'  {name:9s} {len(st):6d} images, {len(np.unique(st.patients)):6d} patients, per grade {st.counts(k)}  ({st.path})')
    for c in s['conditions']:
        extra = '' if c['source'] is None else f'  source {c["source"]}: ' + (f'{c["per_grade"]}/grade' if c['per_grade'] else f'ratio {c["ratio"]:g}')
        lines.append(f'  condition {c["name"]} [{c["kind"]}]{extra}')
    for name, need in plan.needs.items():
        lines.append(f'  source {name} [{s["sources"][name]["kind"]}]: images needed per grade {[need[g] for g in range(k)]}')
    lines += ['leakage check passed:'] + [f'  {line}' for line in plan.leakage]
    return lines

def run_cells(plan, outdir, device, progress=False):
    """Train this rank's unfinished cells into the store; returns the number trained here."""
    rank, world = distributed.get_rank(), distributed.get_world_size()
    mine = [(i, c, s) for i, (c, s) in enumerate(plan.cells) if i % world == rank and not done(outdir, c['name'], s)]
    bar = tqdm.tqdm(total=len(plan.cells), initial=len(plan.cells) - len(mine) if world == 1 else 0, desc='cells',
                    unit='cell', disable=not progress, dynamic_ncols=True)
    for _i, cond, seed in mine:
        result = run_cell(plan, cond, seed, device, progress=progress)
        _write_json(cell_path(outdir, cond['name'], seed), result)
        bar.update(1)
    bar.close()
    return len(mine)

def _probs(outdir, plan, cond_name, key='test'):
    cells = [load_cell(outdir, cond_name, s) for s in plan.study['seeds']]
    return np.array([c[key] for c in cells], np.float64), cells            # [S, N, K]

def _evaluate_split(plan, outdir, split):
    s, k = plan.study, plan.study['num_classes']
    st = plan.sets[split]
    y, groups = st.grades, st.patients
    res = {}
    for c in s['conditions']:
        if c['kind'] == 'gan-test':
            continue
        probs, cells = _probs(outdir, plan, c['name'], split)
        point = evaluate.per_seed(y, probs, k)
        boot = evaluate.bootstrap(y, groups, probs, k, s['bootstrap'], seed=0)
        res[c['name']] = dict(probs=probs, point=point, boot=boot, cells=cells)
    return res

def aggregate(plan, outdir):
    """study.json content from the finished cells."""
    s, k, alpha = plan.study, plan.study['num_classes'], plan.study['alpha']
    out = dict(name=s['name'], definition_sha256=cconfig.definition_hash(s), definition=s, inputs=plan.inputs,
               seeds=s['seeds'], leakage=plan.leakage, data={}, conditions={}, comparisons={}, gan_test={}, external=None)
    for name, st in plan.sets.items():
        out['data'][name] = dict(path=st.path, images=len(st), patients=int(len(np.unique(st.patients))), per_grade=st.counts(k),
                                 sha256_pixels=cdata.file_sha256_list(st.hashes))
    out['synthetic'] = {n: dict(per_grade={str(g): len(p.ids[g]) for g in p.ids}, sha256_pixels=cdata.file_sha256_list(
        [h for g in sorted(p.hashes) for h in p.hashes[g]]), ids={str(g): p.ids[g] for g in p.ids}) for n, p in plan.pools.items()}
    for split in ['test'] + (['external'] if 'external' in plan.sets else []):
        ev = _evaluate_split(plan, outdir, split)
        conds = {n: dict(metrics=evaluate.summarize(e['point'], e['boot'], alpha, k)) for n, e in ev.items()}
        comps = evaluate.apply_holm({n: evaluate.compare(plan.sets[split].grades, ev['real'], e, alpha)
                                     for n, e in ev.items() if n != 'real'})
        if split == 'test':
            for c in s['conditions']:
                if c['kind'] != 'gan-test':
                    conds[c['name']].update(kind=c['kind'], source=c['source'], per_grade=c['per_grade'], ratio=c['ratio'],
                                            train_per_grade=ev[c['name']]['cells'][0]['train_counts'])
            out['conditions'], out['comparisons'] = conds, comps
        else:
            out['external'] = dict(conditions=conds, comparisons=comps)
    out['gan_test'] = _gan_tests(plan, outdir)
    return out

def _gan_tests(plan, outdir):
    s = plan.study
    gts = [c for c in s['conditions'] if c['kind'] == 'gan-test']
    if not gts:
        return {}
    cells = [load_cell(outdir, 'real', seed) for seed in s['seeds']]
    out = {}
    for c in gts:
        out[c['name']] = {f'DR{g}': evaluate.gan_test([np.array(cell['gan_test'][c['name']][str(g)]) for cell in cells], g,
                                                       s['alpha'], s['bootstrap'], seed=g) for g in range(s['num_classes'])}
    return out

#----------------------------------------------------------------------------
