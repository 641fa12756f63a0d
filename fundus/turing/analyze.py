# `analyze`: the statistics of a reader study (test trials only; practice never counts) written as an HTML
# report (fundus/report toolkit) and results.csv (one row per statistic).
#
# Conventions: "positive" = synthetic. Accuracy = share of correct real/synthetic calls; sensitivity = share of
# synthetic images called synthetic; specificity = share of real images called real. The rating for ROC/AUC is
# +confidence for a synthetic call and -confidence for a real call (export.synthetic_score), so AUC 0.5 means
# readers could not tell the sources apart. Pooled proportions treat trials as independent (they are clustered
# by reader and image); the ORH MRMC AUC is the analysis that accounts for both reader and case variation.

import csv
import io
import itertools
import os

import numpy as np

import dnnlib
from fundus.classify.stats import StatsError, delong_ci
from fundus.grades import grade_name
from fundus.report import media, page
from fundus.turing import export, report, stats, store

CSV_COLUMNS = ('scope', 'reader', 'subset', 'metric', 'value', 'lo', 'hi', 'p', 'n')

#----------------------------------------------------------------------------

def load_test_trials(study_dir):
    """(meta, images, test trials with 'score' and 'correct', readers who finished); TuringError when no test
    answer exists."""
    meta, images, assignments, trials = export.load(study_dir)
    test = [dict(t, score=export.synthetic_score(t['call'], t['confidence']), correct=t['call'] == t['truth'])
            for t in trials if not t['practice']]
    if not test:
        raise store.TuringError(f'{study_dir}: no test answers yet; nothing to analyse')
    return meta, images, test, complete_readers(assignments, test)

def _auc(trials, alpha):
    y = [t['truth'] == 'synthetic' for t in trials]
    try:
        auc, lo, hi = delong_ci(y, [t['score'] for t in trials], alpha=alpha)
    except StatsError:
        return None
    return dict(value=auc, lo=lo, hi=hi, n=len(trials), p=None)

def _rate(trials, alpha):
    """Share correct with its Clopper-Pearson interval, no test (the binomial test is reported for accuracy)."""
    s = stats.proportion(sum(t['correct'] for t in trials), len(trials), alpha)
    return None if s is None else dict(s, p=None)

def summarize(trials, alpha=0.05):
    """{metric: dict(value, lo, hi, p, n) or None} for one group of trials."""
    synth = [t for t in trials if t['truth'] == 'synthetic']
    real = [t for t in trials if t['truth'] == 'real']
    out = dict(accuracy=stats.proportion(sum(t['correct'] for t in trials), len(trials), alpha),
               sensitivity=_rate(synth, alpha), specificity=_rate(real, alpha), auc=_auc(trials, alpha))
    times = [t['response_ms'] for t in trials]
    out['median_response_s'] = dict(value=float(np.median(times)) / 1000, lo=None, hi=None, p=None, n=len(times))
    return out

#----------------------------------------------------------------------------

def crossed_matrix(trials, readers):
    """Cases every reader rated: (image ids, truth [N] bool, scores [J, N], calls [J, N])."""
    by_reader = {r: {t['image_id']: t for t in trials if t['reader'] == r} for r in readers}
    common = sorted(set.intersection(*(set(v) for v in by_reader.values())))
    truth = np.array([by_reader[readers[0]][i]['truth'] == 'synthetic' for i in common], dtype=bool)
    scores = np.array([[by_reader[r][i]['score'] for i in common] for r in readers], dtype=np.float64)
    calls = np.array([[by_reader[r][i]['call'] == 'synthetic' for i in common] for r in readers], dtype=int)
    return common, truth, scores.reshape(len(readers), len(common)), calls.reshape(len(readers), len(common))

def mrmc(trials, readers, alpha=0.05):
    """ORH single-test analysis on the fully crossed part; dict or a reason string."""
    if len(readers) < 2:
        return 'needs at least two readers'
    _ids, truth, scores, _calls = crossed_matrix(trials, readers)
    try:
        return stats.orh_single_test(truth, scores, alpha=alpha)
    except StatsError as e:
        return str(e)

def agreement(trials, readers):
    """Fleiss' kappa (all readers) and Cohen's kappa per pair, on the real/synthetic calls of shared cases."""
    out = dict(fleiss=None, n_cases=0, pairs=[])
    if len(readers) < 2:
        return out
    _ids, _truth, _scores, calls = crossed_matrix(trials, readers)
    if calls.shape[1] > 0:
        counts = np.stack([calls.sum(axis=0), len(readers) - calls.sum(axis=0)], axis=1)
        out.update(fleiss=stats.fleiss_kappa(counts), n_cases=calls.shape[1])
    for a, b in itertools.combinations(readers, 2):
        ids, _t, _s, pair = crossed_matrix(trials, [a, b])
        kappa = stats.cohen_kappa(pair[0], pair[1]) if ids else None
        out['pairs'].append(dict(a=a, b=b, kappa=kappa, n=len(ids)))
    return out

#----------------------------------------------------------------------------

def complete_readers(assignments, trials):
    """Readers who answered every test image assigned to them."""
    assigned, answered = {}, {}
    for a in assignments:
        assigned[a['reader']] = assigned.get(a['reader'], 0) + (not a['practice'])
    for t in trials:
        answered[t['reader']] = answered.get(t['reader'], 0) + 1
    return sorted(r for r, n in assigned.items() if n > 0 and answered.get(r, 0) == n)

def analyze(trials, images, alpha=0.05, crossed=None):
    """Everything the report shows, as plain data. `crossed`: readers for the MRMC and agreement analyses
    (default: every reader with answers); a reader who stopped half-way would shrink the shared cases."""
    readers = sorted({t['reader'] for t in trials})
    crossed = readers if crossed is None or len(crossed) < 2 else sorted(crossed)
    grades = sorted({images[t['image_id']]['grade'] for t in trials}, key=lambda g: (g is None, g))
    return dict(
        readers=readers, alpha=alpha,
        per_reader={r: summarize([t for t in trials if t['reader'] == r], alpha) for r in readers},
        pooled=summarize(trials, alpha),
        by_grade={g: summarize([t for t in trials if images[t['image_id']]['grade'] == g], alpha) for g in grades},
        by_source={s: stats.proportion(sum(t['correct'] for t in trials if t['truth'] == s),
                                       sum(t['truth'] == s for t in trials), alpha) for s in ('real', 'synthetic')},
        crossed=crossed, mrmc=mrmc(trials, crossed, alpha), agreement=agreement(trials, crossed))

def result_rows(result):
    """Flat rows (CSV_COLUMNS) of an analyze() result."""
    rows = []
    def add(scope, reader, subset, metric, s):
        if s is not None:
            rows.append(dict(scope=scope, reader=reader, subset=subset, metric=metric, value=s['value'],
                             lo=s.get('lo'), hi=s.get('hi'), p=s.get('p'), n=s.get('n')))
    for r, summary in result['per_reader'].items():
        for metric, s in summary.items():
            add('reader', r, 'all', metric, s)
    for metric, s in result['pooled'].items():
        add('pooled', '', 'all', metric, s)
    for g, summary in result['by_grade'].items():
        add('pooled', '', 'grade=' + ('unknown' if g is None else grade_name(g)), 'accuracy', summary['accuracy'])
    for source, s in result['by_source'].items():
        add('pooled', '', f'source={source}', 'accuracy', s)
    m = result['mrmc']
    if isinstance(m, dict):
        add('mrmc', '', 'crossed', 'auc_orh', dict(m, value=m['auc'], n=m['n_cases']))
    a = result['agreement']
    if a['fleiss'] is not None:
        add('agreement', '', 'crossed', 'fleiss_kappa', dict(value=a['fleiss'], n=a['n_cases']))
    for pair in a['pairs']:
        if pair['kappa'] is not None:
            add('agreement', f'{pair["a"]}|{pair["b"]}', 'shared', 'cohen_kappa', dict(value=pair['kappa'], n=pair['n']))
    return rows

def results_csv(rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ('' if v is None else (f'{v:.10g}' if isinstance(v, float) else v)) for k, v in row.items()})
    return buf.getvalue()

#----------------------------------------------------------------------------

def run(study_dir, out, alpha=0.05):
    """Analyse a study folder; write out/report.html and out/results.csv. Returns both paths."""
    if not 0 < alpha < 1:
        raise store.TuringError(f'--alpha={alpha}: must be in (0, 1)')
    meta, images, trials, finished = load_test_trials(study_dir)
    result = analyze(trials, images, alpha, crossed=finished)
    rows = result_rows(result)
    os.makedirs(out, exist_ok=True)
    csv_path, html_path = os.path.join(out, 'results.csv'), os.path.join(out, 'report.html')
    text = results_csv(rows)
    dnnlib.atomic_write(csv_path, lambda f: f.write(text.encode('utf-8')))
    page.write(report.build_page(study_dir, meta, trials, result), html_path)
    return [html_path, csv_path]

#----------------------------------------------------------------------------
