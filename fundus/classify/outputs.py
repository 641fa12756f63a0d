# Everything a finished study writes: study.json, one predictions CSV per condition, timing.json and the
# HTML page (built with the report toolkit), and `run`, the whole study as one function.

import csv
import io
import json
import os

import numpy as np

import dnnlib
from torch_utils import distributed
from torch_utils import device as device_utils
from fundus.report import media
from fundus.report import page as rpage
from fundus.classify import plots
from fundus.classify import stats
from fundus.classify import study as cstudy
from fundus.classify.config import slug

#----------------------------------------------------------------------------

def write_predictions(plan, outdir):
    """predictions/<condition>.csv: one row per (test image, seed) with the class probabilities."""
    st, k = plan.sets['test'], plan.study['num_classes']
    paths = []
    for c in plan.study['conditions']:
        if c['kind'] == 'gan-test':
            continue
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator='\n')
        w.writerow(['image', 'patient', 'grade', 'seed', 'predicted'] + [f'p_DR{g}' for g in range(k)])
        for seed in plan.study['seeds']:
            probs = np.array(cstudy.load_cell(outdir, c['name'], seed)['test'])
            for name, pat, g, p in zip(st.names, st.patients, st.grades, probs):
                w.writerow([name, pat, int(g), seed, int(p.argmax())] + [f'{v:.6f}' for v in p])
        path = os.path.join(outdir, 'predictions', f'{slug(c["name"])}.csv')
        dnnlib.atomic_write(path, lambda f, t=buf.getvalue(): f.write(t.encode()))
        paths.append(path)
    return paths

def write_timing(plan, outdir):
    t = {f'{c["name"]}/seed{s}': cstudy.load_cell(outdir, c['name'], s)['seconds'] for c, s in plan.cells}
    cstudy._write_json(os.path.join(outdir, 'timing.json'), dict(cells=t, total_seconds=sum(t.values())))

#----------------------------------------------------------------------------
# The page.

def _fmt(m):
    if m is None or m.get('value') is None:
        return None
    lo, hi = m['ci']
    return f'{m["value"]:.3f} ({lo:.3f}-{hi:.3f})' if lo is not None else f'{m["value"]:.3f}'

def _diff(c):
    lo, hi = c['ci']
    return f'{c["diff"]:+.3f} ({lo:+.3f} to {hi:+.3f})' if lo is not None else f'{c["diff"]:+.3f}'

def _p(d, key='p'):
    if d is None or d.get(key) is None:
        return None
    return f'{d[key]:.3g}' + (f' / {d["p_holm"]:.3g}' if d.get('p_holm') is not None else '')

def _tables(res):
    metrics = [rpage.Table(['condition', 'kind', 'accuracy', 'balanced accuracy', 'quadratic kappa', 'macro AUC', 'referable AUC'],
                           [[n, c.get('kind'), _fmt(c['metrics']['accuracy']), _fmt(c['metrics']['balanced_accuracy']),
                             _fmt(c['metrics']['kappa']), _fmt(c['metrics']['macro_auc']), _fmt(c['metrics']['referable_auc'])]
                            for n, c in res['conditions'].items()], caption='Mean over seeds (95% patient-bootstrap CI).')]
    rows = [[n, _diff(c['balanced_accuracy']), _p(c['balanced_accuracy'], 'p_bootstrap'), _diff(c['kappa']), _p(c['kappa'], 'p_bootstrap'),
             _p(c['delong_referable_auc']), _p(c['mcnemar_accuracy']), _p(c.get('wilcoxon_balanced_accuracy'))]
            for n, c in res['comparisons'].items()]
    metrics.append(rpage.Table(['condition', 'balanced acc. - real', 'p', 'kappa - real', 'p', 'DeLong ref. AUC p', 'McNemar p',
                                'Wilcoxon bal. acc. p'], rows, caption='Paired with real on the same test images; p / Holm-adjusted p.'))
    return metrics

def _sweep_points(res):
    pts = {}
    for n, c in res['conditions'].items():
        if c.get('kind') == 'real+synthetic':
            x = c['per_grade'] if c['per_grade'] is not None else c['ratio']
            m = c['metrics']['balanced_accuracy']
            pts.setdefault(c['source'], []).append((x, m['value'], m['ci'][0], m['ci'][1]))
    return pts

def _figures(plan, outdir, res):
    blocks = []
    if res['comparisons']:
        for m, label in (('balanced_accuracy', 'balanced accuracy'), ('kappa', 'quadratic kappa'), ('referable_auc', 'referable-DR AUC')):
            blocks.append(rpage.Image(media.figure_uri(plots.forest(res['comparisons'], m, label)), f'forest plot of {label}'))
    pts = _sweep_points(res)
    if pts:
        blocks.append(rpage.Image(media.figure_uri(plots.sweep(pts, 'balanced accuracy')), 'balanced accuracy against the amount of synthetic data'))
    y, k = plan.sets['test'].grades, plan.study['num_classes']
    curves = {}
    for c in plan.study['conditions']:
        if c['kind'] == 'gan-test':
            continue
        ens = np.mean([cstudy.load_cell(outdir, c['name'], s)['test'] for s in plan.study['seeds']], axis=0)
        blocks.append(rpage.Image(media.figure_uri(plots.confusion(stats.confusion(y, ens.argmax(1), k), c['name'])),
                                  f'confusion matrix of {c["name"]}'))
        curves[c['name']] = (y >= 2, stats.referable_scores(ens))
    blocks.append(rpage.Image(media.figure_uri(plots.roc(curves, 'referable DR (grade >= 2), seed ensemble')), 'ROC curves'))
    return blocks

def _gan_section(res):
    rows = [[n] + [_fmt(v[f'DR{g}']) for g in range(len(v))] for n, v in res['gan_test'].items()]
    k = len(next(iter(res['gan_test'].values())))
    return rpage.Section('gan-test', 'GAN test', [
        rpage.Note('The real classifier (condition real, every seed) grades images generated for each grade; the share it assigns '
                   'to the requested grade measures how faithful the generator is to the grade it was asked for.'),
        rpage.Table(['source'] + [f'DR{g}' for g in range(k)], rows, caption='Share graded as requested (image-bootstrap 95% CI).')])

def write_page(plan, outdir, res):
    s = plan.study
    sections = [rpage.Section('summary', 'Summary', [
        rpage.Text(f'{len(s["conditions"])} conditions, seeds {s["seeds"]}, model {s["model"]["arch"]} ({s["model"]["steps"]} steps), '
                   f'{s["resolution"]} px, test set {len(plan.sets["test"])} real images of {len(np.unique(plan.sets["test"].patients))} patients.'),
        rpage.Note('Every number is the mean over seeds with a 95% CI from resampling test patients (both eyes together). '
                   'Differences are paired with the real-only classifier on the same test images.'),
        rpage.Code('\n'.join(plan.leakage))] + _tables(res)),
        rpage.Section('figures', 'Figures', _figures(plan, outdir, res))]
    if res['gan_test']:
        sections.append(_gan_section(res))
    return rpage.write(rpage.Page(f'Classifier study: {s["name"]}', sections, subtitle=outdir), os.path.join(outdir, 'study.html'))

#----------------------------------------------------------------------------

def run(study, outdir, dry_run=False, device='auto', progress=True, echo=print):
    """The whole study: prepare, check leakage, train missing cells, evaluate, write. Returns study.json's path
    (or None for a dry run / a rank other than 0)."""
    dev = device_utils.resolve_device(device, option='--device')
    distributed.init(device=dev)
    plan = cstudy.prepare(study, progress=progress and distributed.is_main())
    dynamic = {n for n, src in study['sources'].items() if src['kind'] in ('snapshot', 'snapshots')}
    if dry_run:
        plan.needs = {n: v for n, v in plan.needs.items() if n not in dynamic}
        cstudy.build_pools(plan, dev)
        for line in cstudy.describe(plan) + [f'  (sources {", ".join(sorted(dynamic))} are generated and checked at run time)'] * bool(dynamic):
            echo(line)
        done = sum(cstudy.done(outdir, c['name'], s) for c, s in plan.cells)
        echo(f'{done} of {len(plan.cells)} cells already finished in {outdir}')
        return None
    os.makedirs(outdir, exist_ok=True)
    cstudy.open_store(outdir, study)
    cstudy.build_pools(plan, dev, progress=progress and distributed.is_main())
    cstudy.run_cells(plan, outdir, dev, progress=progress and distributed.is_main())
    distributed.barrier()
    if not distributed.is_main():
        return None
    res = cstudy.aggregate(plan, outdir)
    path = os.path.join(outdir, 'study.json')
    cstudy._write_json(path, res)
    write_predictions(plan, outdir)
    write_timing(plan, outdir)
    write_page(plan, outdir, json.loads(json.dumps(cstudy._clean(res))))
    return path

#----------------------------------------------------------------------------
