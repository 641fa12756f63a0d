# The encoder run's report section (fundus/report/page.py blocks): training and validation curves, the
# latest input | reconstruction grid, the validation table against the w_avg baseline, and the *_recon
# metrics computed by calc_metrics.py (metric-*_recon.jsonl in the run directory).

import glob
import json
import os

from fundus.report import media
from fundus.report import page

#----------------------------------------------------------------------------

def _read_jsonl(path, problems):
    rows = []
    if not os.path.isfile(path):
        return rows
    for n, line in enumerate(open(path, encoding='utf-8'), 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            problems.append(f'{os.path.basename(path)} line {n}: not JSON')
    return rows

def _curves(stats, val):
    from matplotlib.figure import Figure # Optional at import time: only the report needs matplotlib.
    fig = Figure(figsize=(11, 3.4))
    panels = [('training loss', stats, ['loss/total', 'loss/l2', 'loss/lpips']), ('validation', val, ['val/ssim', 'val/lpips', 'val/l2'])]
    for i, (title, rows, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        for key in keys:
            pts = [(r['step'], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts), marker='.' if len(pts) < 30 else None, label=key)
        ax.set_title(title)
        ax.set_xlabel('step')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return media.png_data_uri(media.figure_png(fig))

def _metric_table(run_dir, problems):
    rows = []
    for path in sorted(glob.glob(os.path.join(run_dir, 'metric-*_recon.jsonl'))):
        for rec in _read_jsonl(path, problems):
            name = rec.get('metric')
            res = rec.get('results', {})
            rows.append([name, rec.get('snapshot_pkl'), res.get(name), res.get(f'{name}_boot_p2.5'), res.get(f'{name}_boot_p97.5')])
    return rows

def report_section(run_dir, problems=None):
    """A page.Section for one encoder run directory."""
    problems = [] if problems is None else problems
    stats = _read_jsonl(os.path.join(run_dir, 'stats.jsonl'), problems)
    val = _read_jsonl(os.path.join(run_dir, 'validation.jsonl'), problems)
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
