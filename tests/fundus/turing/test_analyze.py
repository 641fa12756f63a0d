# fundus.turing.analyze / export: statistics of a whole study against independent computations, the report
# and results.csv, and the CSV and iMRMC exports.

import csv
import io
import os

import numpy as np
import pytest
import sklearn.metrics
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from fundus.turing import analyze, export, store

from .support import answer_all, make_study

#----------------------------------------------------------------------------

def _planned(reader_bias):
    """Deterministic answers: call synthetic when (position + bias) % 3 == 0, else by truth; confidence by position."""
    def decide(truth, position):
        wrong = (position + reader_bias) % 3 == 0
        call = truth if not wrong else ('real' if truth == 'synthetic' else 'synthetic')
        return call, 1 + position % 5
    return decide

@pytest.fixture(scope='module')
def answered(tmp_path_factory):
    out, _links = make_study(tmp_path_factory.mktemp('answered'), readers=('alice', 'bob', 'carol'), count=12, practice=2, n=12)
    for bias, reader in enumerate(('alice', 'bob', 'carol')):
        answer_all(out, reader, _planned(bias))
    return out

def _test_trials(out):
    return [t for t in store.load_tables(os.path.join(out, 'study.sqlite'))[3] if not t['practice']]

#----------------------------------------------------------------------------

def test_per_reader_and_pooled_statistics_match_independent_computation(answered):
    trials = _test_trials(answered)
    _meta, images, test, finished = analyze.load_test_trials(answered)
    result = analyze.analyze(test, images)
    for reader in ('alice', 'bob', 'carol'):
        mine = [t for t in trials if t['reader'] == reader]
        k = sum(t['call'] == t['truth'] for t in mine)
        acc = result['per_reader'][reader]['accuracy']
        assert (acc['k'], acc['n']) == (k, 12) and abs(acc['value'] - k / 12) < 1e-15
        lo, hi = proportion_confint(k, 12, method='beta')
        assert abs(acc['lo'] - lo) < 1e-12 and abs(acc['hi'] - hi) < 1e-12
        y = [t['truth'] == 'synthetic' for t in mine]
        s = [t['confidence'] if t['call'] == 'synthetic' else -t['confidence'] for t in mine]
        assert abs(result['per_reader'][reader]['auc']['value'] - sklearn.metrics.roc_auc_score(y, s)) < 1e-12
        sens = result['per_reader'][reader]['sensitivity']
        assert sens['n'] == 6 and sens['k'] == sum(t['call'] == 'synthetic' for t in mine if t['truth'] == 'synthetic')
    pooled = result['pooled']['accuracy']
    assert pooled['n'] == 36 and pooled['k'] == sum(t['call'] == t['truth'] for t in trials)
    assert result['by_source']['real']['n'] == 18 and result['by_source']['synthetic']['n'] == 18
    assert sum(s['accuracy']['n'] for s in result['by_grade'].values()) == 36

def test_agreement_and_mrmc_on_the_crossed_cases(answered):
    _meta, images, test, finished = analyze.load_test_trials(answered)
    assert finished == ['alice', 'bob', 'carol']
    result = analyze.analyze(test, images, crossed=finished)
    ids = sorted({t['image_id'] for t in test})
    calls = {(t['reader'], t['image_id']): int(t['call'] == 'synthetic') for t in test}
    matrix = np.array([[calls[r, i] for i in ids] for r in ('alice', 'bob', 'carol')])
    table = np.stack([matrix.sum(0), 3 - matrix.sum(0)], axis=1)
    assert abs(result['agreement']['fleiss'] - fleiss_kappa(table)) < 1e-12
    pair = next(p for p in result['agreement']['pairs'] if (p['a'], p['b']) == ('alice', 'bob'))
    assert abs(pair['kappa'] - sklearn.metrics.cohen_kappa_score(matrix[0], matrix[1])) < 1e-12 and pair['n'] == 12
    m = result['mrmc']
    reader_aucs = [result['per_reader'][r]['auc']['value'] for r in ('alice', 'bob', 'carol')]
    assert abs(m['auc'] - np.mean(reader_aucs)) < 1e-12 and m['n_cases'] == 12 and m['lo'] < m['auc'] < m['hi']

def test_run_writes_report_and_results_csv(answered, tmp_path):
    html_path, csv_path = analyze.run(answered, str(tmp_path / 'analysis'))
    rows = list(csv.DictReader(open(csv_path)))
    acc = {r['reader']: r for r in rows if r['metric'] == 'accuracy' and r['scope'] == 'reader'}
    assert set(acc) == {'alice', 'bob', 'carol'} and all(r['n'] == '12' for r in acc.values())
    assert {r['metric'] for r in rows} >= {'accuracy', 'sensitivity', 'specificity', 'auc', 'auc_orh', 'fleiss_kappa', 'cohen_kappa'}
    assert any(r['subset'] == 'grade=DR0' for r in rows) and any(r['subset'] == 'source=real' for r in rows)
    html = open(html_path).read()
    for title in ('Summary', 'Readers', 'MRMC AUC', 'Agreement', 'By grade and by source'):
        assert f'>{title}<' in html
    assert html.count('src="data:image/png;base64,') == 2

def test_a_reader_who_stopped_is_left_out_of_the_crossed_analyses(tmp_path):
    out, _ = make_study(tmp_path, readers=('a', 'b', 'c'), count=8, practice=0)
    answer_all(out, 'a', _planned(0))
    answer_all(out, 'b', _planned(1))
    answer_all(out, 'c', _planned(2), limit=3)
    _meta, images, test, finished = analyze.load_test_trials(out)
    assert finished == ['a', 'b']
    result = analyze.analyze(test, images, crossed=finished)
    assert result['readers'] == ['a', 'b', 'c'] and result['per_reader']['c']['accuracy']['n'] == 3
    assert result['mrmc']['n_readers'] == 2 and result['mrmc']['n_cases'] == 8
    assert result['agreement']['n_cases'] == 8 and len(result['agreement']['pairs']) == 1

def test_block_design_analyses_use_the_anchor_set(tmp_path):
    out, _ = make_study(tmp_path, readers=('a', 'b'), count=12, practice=0, block_size=4)
    for bias, reader in enumerate(('a', 'b')):
        answer_all(out, reader, _planned(bias))
    _meta, images, test, finished = analyze.load_test_trials(out)
    result = analyze.analyze(test, images, crossed=finished)
    anchor = {i for i, im in images.items() if im['grp'] == 0}
    assert result['per_reader']['a']['accuracy']['n'] == 8 and result['per_reader']['b']['accuracy']['n'] == 8
    assert result['mrmc']['n_cases'] == len(anchor) == 4 and result['agreement']['n_cases'] == 4

def test_analyze_refuses_a_study_without_answers(tmp_path):
    out, _ = make_study(tmp_path, count=4, practice=2)
    answer_all(out, 'alice', lambda truth, pos: ('real', 3), limit=2)     # Practice only.
    with pytest.raises(store.TuringError, match='no test answers yet'):
        analyze.run(out, str(tmp_path / 'a'))

#----------------------------------------------------------------------------

def test_export_csv_has_every_trial(answered, tmp_path):
    path = export.export(answered, 'csv', str(tmp_path / 'trials.csv'))
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 3 * 14 and sum(r['practice'] == '1' for r in rows) == 6
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    for r in rows:
        assert int(r['score']) == (int(r['confidence']) if r['call'] == 'synthetic' else -int(r['confidence']))
        assert r['correct'] == str(int(r['call'] == r['truth']))

def test_export_imrmc_list_mode(answered, tmp_path):
    text = open(export.export(answered, 'imrmc', str(tmp_path / 'study.imrmc'))).read()
    lines = text.splitlines()
    assert 'NR: 3' in lines and 'N0: 6' in lines and 'N1: 6' in lines and 'NM: 1' in lines
    data = [l.split(',') for l in lines[lines.index('BEGIN DATA:') + 1:]]
    truth_rows = [d for d in data if d[0] == '-1']
    assert len(truth_rows) == 12 and all(d[2] == '0' and d[3] in ('0', '1') for d in truth_rows)
    reads = [d for d in data if d[0] != '-1']
    assert len(reads) == 36 and {d[0] for d in reads} == {'1', '2', '3'} and {d[2] for d in reads} == {'1'}
    assert all(-5 <= int(d[3]) <= 5 and int(d[3]) != 0 for d in reads)
    truth = {d[1]: d[3] for d in truth_rows}
    trials = _test_trials(answered)
    assert sum(truth[d[1]] == '1' for d in reads) == sum(t['truth'] == 'synthetic' for t in trials)

def test_export_refuses_unknown_format(answered, tmp_path):
    with pytest.raises(store.TuringError, match='--format=xml'):
        export.export(answered, 'xml', str(tmp_path / 'x'))

#----------------------------------------------------------------------------
