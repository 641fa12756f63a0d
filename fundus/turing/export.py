# Trial tables out of a study: the long CSV (one row per answered trial; practice included and flagged; the
# original file as `source`, for the coordinator only) and the FDA iMRMC list-mode input (header NR/N0/N1/NM,
# `BEGIN DATA:`, truth rows with reader -1, then reader,case,modality,score rows; readers and cases numbered
# from 1, modality 1), so a study can be cross-checked in iMRMC or R.
#
# iMRMC convention used: "diseased" (truth 1) = synthetic, "non-diseased" (truth 0) = real; the score is the
# confidence that the image is synthetic on a 10-point scale: +c for a synthetic call, -c for a real call.

import csv
import io
import os

import dnnlib
from fundus.turing import store

CSV_COLUMNS = ('reader', 'image_id', 'position', 'practice', 'truth', 'call', 'confidence', 'grade_answered',
               'grade_truth', 'response_ms', 'answered_at', 'correct', 'score', 'source')

#----------------------------------------------------------------------------

def synthetic_score(call, confidence):
    """A 10-point rating of "this image is synthetic": 1..5 for a synthetic call, -1..-5 for a real call."""
    return int(confidence) if call == 'synthetic' else -int(confidence)

def load(study_dir):
    return store.load_tables(os.path.join(study_dir, 'study.sqlite'))

def trial_rows(study_dir):
    """Trials as dicts with CSV_COLUMNS, ordered by reader and position."""
    _meta, images, _assignments, trials = load(study_dir)
    rows = []
    for t in trials:
        rows.append(dict(reader=t['reader'], image_id=t['image_id'], position=t['position'], practice=t['practice'],
                         truth=t['truth'], call=t['call'], confidence=t['confidence'], grade_answered=t['grade'],
                         grade_truth=images[t['image_id']]['grade'], response_ms=t['response_ms'],
                         answered_at=f'{t["answered_at"]:.3f}', correct=int(t['call'] == t['truth']),
                         score=synthetic_score(t['call'], t['confidence']), source=images[t['image_id']]['source']))
    return rows

def trials_csv(study_dir):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    writer.writerows(trial_rows(study_dir))
    return buf.getvalue()

#----------------------------------------------------------------------------

def imrmc_text(study_dir):
    """iMRMC list-mode text for the test trials; case ids are 1-based in the study's image order."""
    meta, images, _assignments, trials = load(study_dir)
    test = [t for t in trials if not t['practice']]
    if not test:
        raise store.TuringError(f'{study_dir}: no test answers to export yet')
    read = {t['image_id'] for t in test}
    cases = [i for i, im in images.items() if im['role'] == 'test' and i in read]
    case_no = {image_id: k + 1 for k, image_id in enumerate(cases)}
    readers = sorted({t['reader'] for t in test})
    n1 = sum(images[i]['truth'] == 'synthetic' for i in cases)
    lines = ['fundus-stylegan3 visual Turing test (python -m fundus.turing export --format=imrmc)',
             f'truth 1 = synthetic, 0 = real; score = +confidence for a synthetic call, -confidence for a real call',
             'readers: ' + ', '.join(f'{k + 1}={r}' for k, r in enumerate(readers)), '',
             f'NR: {len(readers)}', f'N0: {len(cases) - n1}', f'N1: {n1}', 'NM: 1', '', 'BEGIN DATA:']
    lines += [f'-1,{case_no[i]},0,{int(images[i]["truth"] == "synthetic")}' for i in cases]
    reader_no = {r: k + 1 for k, r in enumerate(readers)}
    lines += [f'{reader_no[t["reader"]]},{case_no[t["image_id"]]},1,{synthetic_score(t["call"], t["confidence"])}'
              for t in sorted(test, key=lambda t: (reader_no[t['reader']], case_no[t['image_id']]))]
    return '\n'.join(lines) + '\n'

def export(study_dir, fmt, out):
    if fmt not in ('csv', 'imrmc'):
        raise store.TuringError(f'--format={fmt}: expected csv or imrmc')
    text = trials_csv(study_dir) if fmt == 'csv' else imrmc_text(study_dir)
    dnnlib.atomic_write(out, lambda f: f.write(text.encode('utf-8')))
    return out

#----------------------------------------------------------------------------
