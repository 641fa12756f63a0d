# The analysis report of a reader study as a fundus.report Page: summary, per-reader table, MRMC, agreement,
# splits by grade and source, plots (per-reader accuracy with intervals; empirical ROC curves of the ratings).

import numpy as np

from fundus.grades import grade_name
from fundus.report import page, plots

#----------------------------------------------------------------------------

def _ci(s, digits=3):
    if s is None:
        return None
    if s.get('lo') is None:
        return f'{s["value"]:.{digits}f}'
    return f'{s["value"]:.{digits}f} [{s["lo"]:.{digits}f}, {s["hi"]:.{digits}f}]'

def _p(s):
    return None if s is None or s.get('p') is None else float(s['p'])

def _summary_row(label, summary):
    acc = summary['accuracy']
    return [label, acc['n'], acc['k'], _ci(acc), _p(acc), _ci(summary['sensitivity']), _ci(summary['specificity']),
            _ci(summary['auc']), summary['median_response_s']['value']]

SUMMARY_HEADER = ['reader', 'trials', 'correct', 'accuracy [CI]', 'p (binomial vs 0.5)', 'sensitivity [CI]',
                  'specificity [CI]', 'AUC [DeLong CI]', 'median time (s)']

#----------------------------------------------------------------------------

def _accuracy_figure(result):
    labels = result['readers'] + ['pooled']
    rows = [result['per_reader'][r]['accuracy'] for r in result['readers']] + [result['pooled']['accuracy']]
    return plots.forest_plot(labels, [s['value'] for s in rows], [s['lo'] for s in rows], [s['hi'] for s in rows], ref=0.5,
                             xlabel=f'accuracy with {100 * (1 - result["alpha"]):.0f}% Clopper-Pearson interval (dotted: chance)')

def _roc_figure(trials, result):
    curves = []
    for r in result['readers']:
        mine = [t for t in trials if t['reader'] == r]
        y = np.array([t['truth'] == 'synthetic' for t in mine])
        curves.append((r, *plots.roc_points(y, [t['score'] for t in mine])))
    return plots.roc_plot(curves, title='synthetic images called synthetic against real images called synthetic')

#----------------------------------------------------------------------------

def _summary_section(meta, trials, result):
    pooled, m = result['pooled'], result['mrmc']
    acc = pooled['accuracy']
    lines = [page.Text(f'{len(result["readers"])} reader(s), {len({t["image_id"] for t in trials})} test images, '
                       f'{acc["n"]} test answers (practice answers excluded). Study seed {meta["seed"]}, '
                       f'centre crop {meta["crop_center"]}, block size {meta["block_size"]}, '
                       f'stratification {meta["stratification"]}.'),
             page.Text(f'Pooled accuracy {_ci(acc)} (exact binomial p = {acc["p"]:.3g} against 0.5).')]
    if isinstance(m, dict):
        lines.append(page.Text(f'MRMC AUC (ORH) {m["auc"]:.3f} [{m["lo"]:.3f}, {m["hi"]:.3f}], df {m["df"]:.1f}, '
                               f'p = {m["p"]:.3g} against 0.5 ({m["n_readers"]} readers x {m["n_cases"]} cases).'))
    lines.append(page.Note('Accuracy 0.5 and AUC 0.5 mean the readers could not tell real from synthetic photographs. '
                           'Sensitivity is the share of synthetic images spotted; specificity the share of real images '
                           'accepted as real. The AUC uses the confidence ratings (+c for a "synthetic" call, -c for '
                           '"real"). Pooled figures treat every answer as independent; the MRMC AUC accounts for '
                           'variation between readers and between images.'))
    return page.Section('summary', 'Summary', lines)

def _reader_section(trials, result):
    rows = [_summary_row(r, result['per_reader'][r]) for r in result['readers']]
    rows.append(_summary_row('pooled', result['pooled']))
    return page.Section('readers', 'Readers', [
        page.Table(SUMMARY_HEADER, rows, caption=f'{100 * (1 - result["alpha"]):.0f}% intervals'),
        page.Image(_accuracy_figure(result), 'accuracy of each reader with its confidence interval'),
        page.Image(_roc_figure(trials, result), 'empirical ROC curve of each reader from the confidence ratings')])

def _mrmc_section(result):
    m = result['mrmc']
    if not isinstance(m, dict):
        return page.Section('mrmc', 'MRMC AUC', [page.Missing('ORH MRMC AUC', m)])
    table = page.Table(['AUC', 'CI low', 'CI high', 'SE', 'df (Hillis)', 't', 'p vs 0.5', 'MS(R)', 'Var(error)', 'Cov2',
                        'readers', 'cases'],
                       [[m['auc'], m['lo'], m['hi'], m['se'], m['df'], m['t'], m['p'], m['ms_r'], m['var_e'], m['cov2'],
                         m['n_readers'], m['n_cases']]])
    note = page.Note('Obuchowski-Rockette-Hillis analysis of one test: reader-averaged AUC, error covariances from '
                     'jackknifing cases, Hillis degrees of freedom. Only cases that every included reader rated are '
                     f'used; readers included: {", ".join(result["crossed"])} (readers who finished their images).')
    return page.Section('mrmc', 'MRMC AUC', [table, note])

def _agreement_section(result):
    a = result['agreement']
    blocks = [page.Text(f'Fleiss\' kappa across {", ".join(result["crossed"])}: {a["fleiss"]:.3f} on {a["n_cases"]} '
                        'shared cases.')
              if a['fleiss'] is not None else page.Missing('Fleiss\' kappa', 'needs two readers with shared cases')]
    if a['pairs']:
        blocks.append(page.Table(['reader A', 'reader B', 'Cohen\'s kappa', 'shared cases'],
                                 [[p['a'], p['b'], p['kappa'], p['n']] for p in a['pairs']]))
    return page.Section('agreement', 'Agreement', blocks)

def _split_section(result):
    grade_rows = [_summary_row('unknown' if g is None else grade_name(g), s) for g, s in result['by_grade'].items()]
    source_rows = [[src, s['n'], s['k'], _ci(s)] for src, s in result['by_source'].items() if s is not None]
    return page.Section('splits', 'By grade and by source', [
        page.Table(['grade'] + SUMMARY_HEADER[1:], grade_rows, caption='All readers pooled, by the image\'s grade label'),
        page.Table(['source', 'trials', 'correct', 'share correct [CI]'], source_rows,
                   caption='Real images called real; synthetic images called synthetic')])

def build_page(study_dir, meta, trials, result):
    return page.Page(title='Visual Turing test: analysis', subtitle=study_dir, sections=[
        _summary_section(meta, trials, result), _reader_section(trials, result), _mrmc_section(result),
        _agreement_section(result), _split_section(result)])

#----------------------------------------------------------------------------
