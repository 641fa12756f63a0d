# The encoder run's report section (fundus/report/page.py blocks): training and validation curves, the
# latest input | reconstruction grid, the validation table against the w_avg baseline, and the *_recon
# metrics computed by calc_metrics.py (metric-*_recon.jsonl in the run directory).

import glob
import os

from fundus.report import media
from fundus.report import page
from fundus.report import plots
from metrics import bootstrap
from training import run_dir as run_dir_lib

#----------------------------------------------------------------------------

def _series(rows, keys):
    # [(key, steps, values)] of the keys present in the rows (stats.jsonl / validation.jsonl lines carry 'step').
    out = []
    for key in keys:
        pts = [(r['step'], r[key]) for r in rows if key in r and 'step' in r]
        if pts:
            out.append((key, *map(list, zip(*pts))))
    return out

def _curves(stats, val):
    panels = [plots.Panel(_series(stats, ['loss/total', 'loss/l2', 'loss/lpips']), 'training loss', 'step'),
              plots.Panel(_series(val, ['val/ssim', 'val/lpips', 'val/l2']), 'validation', 'step')]
    return plots.panels_plot([p for p in panels if p.series], panel_size=(5.5, 3.4))

def _metric_table(run_dir, problems):
    low, high = bootstrap.INTERVAL_SUFFIXES['low'], bootstrap.INTERVAL_SUFFIXES['high']
    rows = []
    for name, records in run_dir_lib.read_metric_files(run_dir, problems).items():
        if not name.endswith('_recon'):
            continue
        for rec in records:
            res = rec['results']
            rows.append([name, rec.get('snapshot_pkl'), res.get(name), res.get(name + low), res.get(name + high)])
    return rows

def report_section(run_dir, problems=None):
    """A page.Section for one encoder run directory."""
    problems = [] if problems is None else problems
    stats = run_dir_lib.read_stats(run_dir, problems)
    val = run_dir_lib.read_jsonl(os.path.join(run_dir, 'validation.jsonl'), problems)
    blocks = []
    if stats or val:
        blocks.append(page.Image(_curves(stats, val), 'training loss and validation curves against step'))
    else:
        blocks.append(page.Missing('curves', 'no stats.jsonl or validation.jsonl yet'))
    grids = sorted(glob.glob(os.path.join(run_dir, 'recon-*.png')))
    image = media.open_image(grids[-1]) if grids else None
    if image is not None:
        blocks.append(page.Image(media.image_data_uri(image), 'held-out photos (top) and their reconstructions (bottom)',
                                 caption=os.path.basename(grids[-1])))
    if val:
        last = val[-1]
        blocks.append(page.Table(['measure', 'reconstruction', 'w_avg image'],
                                 [[m, last.get(f'val/{m}'), last.get(f'val/base_{m}')] for m in ('ssim', 'lpips', 'l2')],
                                 caption=f'held-out validation at step {last["step"]}'))
    metrics = _metric_table(run_dir, problems)
    blocks.append(page.Table(['metric', 'snapshot', 'value', 'CI 2.5%', 'CI 97.5%'], metrics) if metrics else
                  page.Missing('reconstruction metrics', 'run calc_metrics.py --metrics=ssim_recon,... --network=ENCODER_SNAPSHOT'))
    return page.Section('fundusgan', 'Encoder (FundusGAN / pSp)', blocks)

def write_report(run_dir, path=None):
    problems = []
    section = report_section(run_dir, problems)
    return page.write(page.Page('Encoder run', [section], subtitle=run_dir, problems=problems), path or os.path.join(run_dir, 'report.html'))

#----------------------------------------------------------------------------
