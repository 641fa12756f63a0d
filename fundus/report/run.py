"""One self-contained HTML page per training run, written for the people who judge the images.

    python -m fundus.report runs/00000-stylegan3-t-dr1-gpus1-batch32-gamma8

reads what the run directory holds (training_options.json, stats.jsonl, metric-*.jsonl, reals.png,
fakes*.png, network snapshots, spectrum and memorisation outputs) and writes `report.html` next to them.
Every image is embedded, so the file can be mailed or archived alone. Anything the run lacks is shown as
"not computed for this run"; the page is still written.
"""

import dataclasses
import datetime
import glob
import html
import io
import json
import math
import os
import re

import click
import numpy as np
import PIL.Image

import dnnlib
from fundus import grades
from metrics import metric_main
from fundus.report.media import figure_png, image_data_uri, open_image, png_data_uri
from training import generate
from training import run_dir as run_dir_lib
from training.run_dir import load_run, metric_series, read_json, snapshot_kimg, stat_series, training_seconds

#----------------------------------------------------------------------------
# Plain-language explanations. Keys are metric families (the metric name's leading letters).

PAPER_NOTE = ('For scale: the StyleGAN3 DR1 study (arXiv 2501.00954; 2,602 DR1 photographs at 512x512, about 12 '
              'days of training on one GPU) reports FID 17.29 (bootstrap mean 21.18, 95% interval 20.83-21.56), '
              'KID 0.018, EQ-T 65.65 dB and EQ-R 64.64 dB. Small demo runs are far from those values.')

METRIC_HELP = {
    'fid': ('Frechet Inception Distance', 'lower is better, 0 = same statistics',
            'Compares the statistics of real and synthetic images as seen by an image-recognition network '
            '(Inception-v3). It summarises realism and variety in one number. It depends on the number of images '
            'used (fewer images give a higher value), so only compare FIDs computed with the same count.'),
    'kid': ('Kernel Inception Distance', 'lower is better, 0 = same statistics',
            'The same comparison as FID with an estimator that is not biased by small samples; better suited to '
            'datasets of a few thousand photographs.'),
    'eqt': ('Translation equivariance (EQ-T)', 'higher is better, in dB',
            'How faithfully the picture moves when the generator is asked to shift it, as a peak signal-to-noise '
            'ratio. High values mean anatomy and lesions move with the eye instead of sticking to pixel positions.'),
    'eqr': ('Rotation equivariance (EQ-R)', 'higher is better, in dB',
            'The same check for rotations of the picture.'),
    'pr': ('Precision and recall', 'both between 0 and 1, higher is better',
           'Precision: the share of synthetic images that fall among real ones (realism). Recall: the share of real '
           'images that the synthetic ones cover (variety).'),
    'is': ('Inception Score', 'higher is better',
           'Measures how confidently an ImageNet classifier recognises objects. It says little about fundus '
           'photographs and is shown only for comparison with other papers.'),
    'ppl': ('Perceptual path length', 'lower is smoother',
            'How abruptly images change along small steps in the latent space.'),
    'ssim': ('Structural similarity (SSIM)', '1 = identical pairs',
             'Pixel-level similarity of image pairs (e.g. reconstructions against their originals).'),
    'msssim': ('Multi-scale SSIM', '1 = identical pairs', 'SSIM computed at several image scales.'),
    'lpips': ('LPIPS', 'lower is closer, 0 = identical pairs', 'Perceptual distance of image pairs.'),
    'spectrum': ('Power spectrum distance', 'lower is closer, 0 = same spectrum',
                 'How differently fine and coarse detail (spatial frequencies) are distributed in real and '
                 'synthetic images; checks that textures such as vessel edges and microaneurysms have the '
                 'right sharpness.'),
    'memorization': ('Memorisation audit', 'fewer near-copies is better',
                     'For each synthetic image, the closest training photograph; near-copies would mean the model '
                     'reproduces patients\' images rather than inventing new ones.'),
}

NOT_COMPUTED = 'not computed for this run'

#----------------------------------------------------------------------------
# Training curves.

CURVES = [
    # (panel title, [(stats key, label)], y label, explanation)
    ('Losses', [('Loss/G/loss', 'generator'), ('Loss/D/loss', 'discriminator')], 'loss',
     'The generator and the discriminator compete; neither loss should run away or collapse to zero.'),
    ('Discriminator scores', [('Loss/scores/real', 'real images'), ('Loss/scores/fake', 'synthetic images')], 'score',
     'How "real" the discriminator finds each kind of image. A growing gap can mean the discriminator memorises '
     'the training photographs (overfitting).'),
    ('Augmentation', [('Progress/augment', 'augment probability p'), ('Loss/signs/real', 'overfitting signal r_t')], 'value',
     'Adaptive augmentation raises p when the discriminator starts to overfit (r_t above its target, 0.6 by '
     'default). Small datasets usually settle at a clearly non-zero p.'),
    ('R1 penalty', [('Loss/r1_penalty', 'R1 penalty')], 'penalty',
     'A regulariser that keeps the discriminator smooth on real photographs (weight set by --gamma).'),
]

def plot_training_curves(stats):
    """One PNG with a panel per CURVES entry that has data; None when stats.jsonl holds nothing plottable."""
    from matplotlib.figure import Figure
    panels = [(title, [(stat_series(stats, key), label) for key, label in keys], ylabel)
              for title, keys, ylabel, _ in CURVES]
    panels = [(t, [s for s in series if len(s[0][0])], y) for t, series, y in panels]
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(11, 3.6 * rows))
    for i, (title, series, ylabel) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for (xs, ys), label in series:
            ax.plot(xs, ys, marker='.' if len(xs) < 30 else None, label=label)
        if title == 'Augmentation':
            ax.axhline(0.6, color='gray', linestyle=':', linewidth=1, label='default target 0.6')
        ax.set_title(title)
        ax.set_xlabel('training progress (thousands of real images shown)')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)

def plot_metric_curves(metrics):
    """One PNG with a panel per metric value computed at two or more snapshots (bootstrap band shaded); else None."""
    from matplotlib.figure import Figure
    panels = []
    for name, lines in sorted(metrics.items()):
        for row in metric_rows({name: lines}):
            base = row['name']
            xs, ys = metric_series(lines, base)
            if len(xs) < 2:
                continue
            band = None
            lo_key, hi_key = interval_keys(lines[-1]['results'], base, name)
            if lo_key and hi_key:
                lx, lo = metric_series(lines, lo_key)
                hx, hi = metric_series(lines, hi_key)
                if len(lx) == len(hx) and np.array_equal(lx, hx) and len(lx) >= 2:
                    band = (lx, lo, hi)
            panels.append((base, xs, ys, band))
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(3.8 * cols, 3.2 * rows))
    for i, (key, xs, ys, band) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        if band is not None:
            ax.fill_between(band[0], band[1], band[2], alpha=0.25, label='bootstrap 95%')
        ax.plot(xs, ys, marker='o', label='value')
        if band is not None:
            ax.legend(fontsize=8)
        ax.set_title(key)
        ax.set_xlabel('thousands of real images shown')
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)

#----------------------------------------------------------------------------
# Metrics table. Result keys are read with the registry's parser (metrics.metric_main.split_result_key):
# interval keys (fid10k_full_boot_p2.5, ...) become the interval column of their value, image counts
# (spectrum200_num_gen, ...) annotate the metric, every other number is a row.

def metric_family(name):
    """'fid50k_full' -> 'fid', 'eqt50k_int' -> 'eqt', 'memorization' -> 'memorization'; None when unknown."""
    return metric_main.metric_family(name)

def interval_keys(results, base, metric=None):
    """Names of the lower and upper bootstrap keys of value key `base` in a results dict (None where absent)."""
    found = dict()
    for key in results:
        parsed = metric_main.split_result_key(key, metric)
        if parsed is not None and parsed.value == base and parsed.role in ('low', 'high'):
            found[parsed.role] = key
    return found.get('low'), found.get('high')

def _numeric(results):
    return {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

def metric_rows(metrics):
    """Table rows from the latest line of every metric file: dicts with name, value, interval, counts, kimg, family."""
    rows = []
    for name, lines in sorted(metrics.items()):
        latest = lines[-1]
        values, intervals, counts = dict(), dict(), dict()
        for key, v in _numeric(latest['results']).items():
            parsed = metric_main.split_result_key(key, name)
            role = 'value' if parsed is None else parsed.role # Keys no registered metric writes are shown as they are.
            if role == 'count':
                counts[parsed.suffix] = v
            elif role == 'value':
                values[key] = v
            else:
                intervals.setdefault(parsed.value, dict())[role] = v
        for base, value in values.items():
            rows.append(dict(metric=name, name=base, value=value, interval=intervals.get(base, dict()), counts=counts,
                             kimg=snapshot_kimg(latest.get('snapshot_pkl')), snapshot=latest.get('snapshot_pkl'),
                             family=metric_family(name), total_time=latest.get('total_time_str')))
    return rows

def format_number(value):
    if value is None:
        return ''
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f'{value:.4g}' if abs(value) < 10 else f'{value:.2f}'
    return f'{value:.3e}'

#----------------------------------------------------------------------------
# Images per grade: generated from the latest snapshot, reals from the training dataset.

GRID_COLS = 8

def generate_grade_grids(snapshot, num_per_class=GRID_COLS, device='cpu'):
    """Generate a row of images per class (or one row for unconditional nets). Returns [(label, grid)], G.c_dim."""
    import torch
    G = generate.load_generator(snapshot, torch.device(device))
    seeds = list(range(num_per_class))
    classes = list(range(G.c_dim)) if G.c_dim > 0 else [None]
    rows = []
    for idx in classes:
        images = [arr for _, arr in generate.generate_images(G, seeds, class_idx=idx, batch_size=num_per_class,
                                                               device=torch.device(device))]
        label = grades.grade_name(idx) if idx is not None else 'all'
        rows.append((label, generate.make_grid(np.stack(images), cols=num_per_class)))
    return rows, G.c_dim

def real_grade_grids(options, num_per_class=GRID_COLS, resolution=None):
    """Rows of real training images per grade from the dataset named in training_options.json; [] if unavailable."""
    kwargs = (options or {}).get('training_set_kwargs')
    if not kwargs or not os.path.exists(str(kwargs.get('path', ''))):
        return []
    from training import dataset as dataset_module
    data = dataset_module.ImageFolderDataset(path=kwargs['path'], use_labels=True)
    per_class = dict()
    for i in range(len(data)):
        label = data.get_label(i) if data.has_labels else None
        key = int(np.argmax(label)) if label is not None and np.size(label) > 0 else None
        bucket = per_class.setdefault(key, [])
        if len(bucket) < num_per_class:
            img, _ = data[i]
            bucket.append(np.asarray(img).transpose(1, 2, 0))
        if len(per_class) and all(len(v) >= num_per_class for v in per_class.values()) and i > 50 * num_per_class:
            break
    rows = []
    for key in sorted(per_class, key=lambda k: -1 if k is None else k):
        images = per_class[key]
        label = grades.grade_name(key) if key is not None else 'all'
        rows.append((label, generate.make_grid(np.stack(images), cols=num_per_class)))
    return rows

#----------------------------------------------------------------------------
# HTML building blocks.

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #1d2327; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #c44; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #666; } .explain { background: #f6f7f9; border-left: 4px solid #9ab; padding: 0.6em 1em; margin: 0.8em 0; }
.missing { color: #8a6d3b; background: #fcf8e3; border: 1px solid #f0e0a0; padding: 0.5em 1em; display: inline-block; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { border: 1px solid #ccd; padding: 0.35em 0.7em; vertical-align: top; }
th { background: #eef1f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; image-rendering: auto; } .grade { margin: 0.4em 0 0.8em 0; display: flex; align-items: center; } .grade b { flex: 0 0 3.5em; }
.grade img { flex: 1 1 0; min-width: 0; }
.pair { display: flex; gap: 1.5em; flex-wrap: wrap; } .pair > div { flex: 1 1 500px; }
nav a { margin-right: 1em; } code, pre { background: #f3f3f3; } pre { padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""

def esc(text):
    return html.escape(str(text))

def missing(what, why=None):
    reason = f' ({esc(why)})' if why else ''
    return f'<p class="missing">{esc(what)}: {NOT_COMPUTED}{reason}.</p>'

def explain(text):
    return f'<div class="explain">{text}</div>'

def img_tag(uri, alt):
    return f'<img src="{uri}" alt="{esc(alt)}">'

def section(anchor, title, body):
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>\n'

#----------------------------------------------------------------------------
# Sections.

def summary_section(run):
    opts = run.options or {}
    data = opts.get('training_set_kwargs') or {}
    G_kwargs = opts.get('G_kwargs') or {}
    last = run.stats[-1] if run.stats else {}
    kimg = (last.get('Progress/kimg') or {}).get('mean')
    seconds = training_seconds(run.stats)
    items = [
        ('Model', _model_name(opts)),
        ('Training data', f'{os.path.basename(str(data.get("path", "?")))} ({data.get("max_size", "?")} images, '
                          f'{data.get("resolution", "?")}x{data.get("resolution", "?")} pixels'
                          f'{", with grade labels" if data.get("use_labels") else ""}'
                          f'{", plus mirrored copies" if data.get("xflip") else ""})' if data else None),
        ('Training length', f'{kimg:.1f} thousand real images shown to the discriminator' if kimg is not None else None),
        ('Training time', dnnlib.format_time(seconds) if seconds is not None else None),
        ('Batch / R1 gamma', f'{opts.get("batch_size", "?")} / {(opts.get("loss_kwargs") or {}).get("r1_gamma", "?")}' if opts else None),
        ('Latest snapshot', os.path.basename(run.snapshots[-1]) if run.snapshots else None),
        ('Latent size', f'z {G_kwargs.get("z_dim", "?")}, w {G_kwargs.get("w_dim", "?")}' if G_kwargs else None),
    ]
    rows = ''.join(f'<tr><th>{esc(k)}</th><td>{esc(v) if v is not None else NOT_COMPUTED}</td></tr>' for k, v in items)
    body = (f'<table>{rows}</table>' +
            explain('This page summarises one training run of a StyleGAN3 generator of synthetic fundus photographs: how '
                    'training went, what the images look like next to real ones, and the numbers that say how '
                    'realistic, how varied and how novel they are. Each number comes with a short explanation.'))
    return section('summary', 'Summary', body)

def _model_name(opts):
    cls = str((opts.get('G_kwargs') or {}).get('class_name', ''))
    kernel = (opts.get('G_kwargs') or {}).get('conv_kernel')
    if 'stylegan3' in cls:
        return 'StyleGAN3-R (rotation equivariant)' if kernel == 1 else 'StyleGAN3-T (translation equivariant)'
    if 'stylegan2' in cls:
        return 'StyleGAN2'
    return cls or None

def metrics_section(run):
    rows = [r for r in metric_rows(run.metrics) if r['family'] != 'memorization']
    if not rows:
        return section('metrics', 'Quality numbers', missing('Metrics (FID, KID, equivariance, ...)', 'no metric-*.jsonl files'))
    has_interval = any(r['interval'] for r in rows)
    head = '<tr><th>Metric</th><th>Value</th>' + ('<th>Bootstrap 95% interval</th><th>Bootstrap mean</th>' if has_interval else '') + \
           '<th>Snapshot (kimg)</th><th>What it means</th></tr>'
    body_rows = []
    for r in rows:
        title, direction, _ = METRIC_HELP.get(r['family'], (r['name'], '', ''))
        ci = r['interval']
        counted = ', '.join(f'{int(v)} {k[4:].replace("gen", "generated")}' for k, v in sorted(r['counts'].items()))
        title = f'{title} ({counted} images)' if counted else title
        cells = f'<td><b>{esc(r["name"])}</b><br><span class="sub">{esc(title)}</span></td><td class="num">{format_number(r["value"])}</td>'
        if has_interval:
            interval = f'{format_number(ci["low"])} - {format_number(ci["high"])}' if 'low' in ci and 'high' in ci else '-'
            if 'n' in ci and interval != '-':
                interval += f'<br><span class="sub">{int(ci["n"])} resamples</span>'
            cells += f'<td class="num">{interval}</td><td class="num">{format_number(ci.get("mean")) or "-"}</td>'
        cells += f'<td class="num">{esc(r["kimg"]) if r["kimg"] is not None else "-"}</td><td>{esc(direction)}</td>'
        body_rows.append(f'<tr>{cells}</tr>')
    families = []
    for r in rows:
        if r['family'] and r['family'] not in families:
            families.append(r['family'])
    notes = ''.join(f'<li><b>{esc(METRIC_HELP[f][0])}</b>: {esc(METRIC_HELP[f][2])}</li>' for f in families)
    boot = ('<li><b>Bootstrap interval</b>: the metric recomputed many times on resampled sets of the same images; the '
            'spread shows how much the number would move with a different sample. FID resampled with replacement '
            'sits above the single estimate, because repeated images count as less variety; compare intervals with '
            'intervals and single values with single values.</li>') if has_interval else ''
    missing_families = [f for f in ('fid', 'kid', 'eqt', 'eqr') if f not in families]
    absent = (f'<p class="sub">Not computed for this run: {esc(", ".join(METRIC_HELP[f][0] for f in missing_families))}.</p>'
              if missing_families else '')
    body = f'<table>{head}{"".join(body_rows)}</table>{absent}<ul>{notes}{boot}</ul>' + explain(esc(PAPER_NOTE))
    return section('metrics', 'Quality numbers', body)

def curves_section(run):
    parts = []
    png = plot_training_curves(run.stats) if run.stats else None
    if png is None:
        parts.append(missing('Training curves', 'stats.jsonl is missing or empty'))
    else:
        parts.append(img_tag(png_data_uri(png), 'training curves'))
        parts.append('<ul>' + ''.join(f'<li><b>{esc(t)}</b>: {esc(e)}</li>' for t, _, _, e in CURVES) + '</ul>')
    mpng = plot_metric_curves(run.metrics)
    if mpng is not None:
        parts.append('<h3>Metrics over training</h3>' + img_tag(png_data_uri(mpng), 'metrics over training'))
        parts.append(explain('Each point is one saved snapshot of the generator. Distances (FID, KID) should fall and '
                             'level off; if they rise again, an earlier snapshot may be the better model.'))
    return section('curves', 'How training went', '\n'.join(parts))

def images_section(run, generate, device):
    parts = [explain('Real training photographs and synthetic images side by side. For a conditional model, each row '
                     'is one grade of diabetic retinopathy (DR0 = none ... DR4 = proliferative); synthetic rows are '
                     'generated for that grade. Look for the optic disc, vessels branching from it, the macula and, '
                     'in higher grades, lesions; and for artefacts, especially near the circular border.')]
    real_rows, fake_rows, notes = [], [], []
    if generate and run.snapshots:
        try:
            fake_rows, _ = generate_grade_grids(run.snapshots[-1], device=device)
        except Exception as e: # A snapshot we cannot load must not stop the report.
            notes.append(f'could not generate from {os.path.basename(run.snapshots[-1])}: {e}')
        try:
            real_rows = real_grade_grids(run.options)
        except Exception as e:
            notes.append(f'could not read the training dataset: {e}')
    parts.append('<div class="pair">')
    parts.append('<div><h3>Real photographs</h3>' + _grade_rows(real_rows, run, 'reals.png', 'training grid from reals.png') + '</div>')
    fakes = sorted(glob.glob(os.path.join(run.run_dir, 'fakes[0-9]*.png')))
    parts.append('<div><h3>Synthetic images</h3>' + _grade_rows(fake_rows, run, os.path.basename(fakes[-1]) if fakes else None,
                                                              'latest training grid') + '</div>')
    parts.append('</div>')
    if fake_rows:
        parts.append(f'<p class="sub">Synthetic images: seeds 0-{GRID_COLS - 1} of {esc(os.path.basename(run.snapshots[-1]))}, '
                     f'no truncation (reproduce with generate.py --seeds=0-{GRID_COLS - 1}).</p>')
    parts += [f'<p class="sub">{esc(n)}</p>' for n in notes]
    return section('images', 'Images', '\n'.join(parts))

def _grade_rows(rows, run, fallback_name, fallback_caption):
    if rows:
        return ''.join(f'<div class="grade"><b>{esc(label)}</b>{img_tag(image_data_uri(grid), label)}</div>' for label, grid in rows)
    if fallback_name:
        img = open_image(os.path.join(run.run_dir, fallback_name))
        if img is not None:
            return img_tag(image_data_uri(img), fallback_caption) + f'<p class="sub">{esc(fallback_name)}</p>'
    return missing('Image grid')

def find_outputs(run_dir, words, exts):
    found = []
    for path in sorted(glob.glob(os.path.join(run_dir, '**', '*'), recursive=True)):
        name = os.path.basename(path).lower()
        if os.path.isfile(path) and any(w in name for w in words) and name.endswith(exts):
            found.append(path)
    return found

def file_panel(run, anchor, title, words, what, explanation):
    pngs = find_outputs(run.run_dir, words, ('.png', '.jpg'))
    jsons = find_outputs(run.run_dir, words, ('.json',))
    if not pngs and not jsons:
        return section(anchor, title, missing(what, 'run the metric to add it') + explain(explanation))
    parts = [explain(explanation)]
    for path in pngs:
        img = open_image(path)
        if img is not None:
            parts.append(f'<figure>{img_tag(image_data_uri(img), os.path.basename(path))}'
                         f'<figcaption class="sub">{esc(os.path.relpath(path, run.run_dir))}</figcaption></figure>')
    for path in jsons:
        data = read_json(path, run.problems)
        if isinstance(data, dict):
            parts.append(f'<h3>{esc(os.path.relpath(path, run.run_dir))}</h3>' + json_table(data))
    return section(anchor, title, '\n'.join(parts))

def json_table(data, max_items=40):
    """Scalars of a (nested) JSON object as a two-column table; long arrays are summarised."""
    rows = []
    def walk(prefix, value):
        if len(rows) >= max_items:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f'{prefix}.{k}' if prefix else str(k), v)
        elif isinstance(value, list):
            if len(value) <= 6 and all(not isinstance(v, (dict, list)) for v in value):
                rows.append((prefix, ', '.join(format_number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v) for v in value)))
            else:
                rows.append((prefix, f'{len(value)} values'))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((prefix, format_number(value)))
        else:
            rows.append((prefix, str(value)))
    walk('', data)
    return '<table>' + ''.join(f'<tr><th>{esc(k)}</th><td class="num">{esc(v)}</td></tr>' for k, v in rows) + '</table>'

SPECTRUM_HELP = ('A power spectrum shows how much of the image lives at each level of detail: coarse shapes near the '
                 'centre of the heat map (left of the profile curve), fine texture such as thin vessels and '
                 'microaneurysms further out (to the right). Real and synthetic spectra should look alike; a '
                 'synthetic curve that falls off early means blurry images, extra peaks or grid patterns mean '
                 'artificial textures.')

MEMO_HELP = ('Each synthetic image is paired with the most similar training photograph. If pairs look like the same eye '
             '(same vessel pattern), the model has copied a patient\'s photograph and should not be shared. Distances '
             'of synthetic images to the training set should be similar to those of other real photographs, not '
             'much smaller.')

MEMO_ROWS = [
    # (key suffix, label, plain-language reading)
    ('near_copies', 'Near-copies', 'synthetic images closer to a training photograph than 99% of real photographs are to '
                                   'their nearest other training photograph; should be 0 or close to it'),
    ('near_copy_fraction', 'Share of near-copies', 'the same as a fraction of all synthetic images checked'),
    ('nn_median', 'Typical distance to the closest training photograph (synthetic)', 'median, in Inception feature units'),
    ('ref_nn_median', 'Typical distance to the closest other training photograph (real)', 'the same for real photographs: the yardstick'),
    ('nn_ratio', 'Ratio synthetic / real', 'around 1 or above is reassuring; well below 1 means synthetic images sit unusually close to training photographs'),
    ('mannwhitney_p', 'Test: synthetic closer than real? (p-value)', 'a small value (e.g. below 0.01) is a warning sign of copying'),
    ('ssim_median', 'Pixel similarity of closest pairs (median SSIM)', '1 = identical pixels'),
    ('ssim_max', 'Pixel similarity of the most similar pair (SSIM)', 'values near 1 deserve a look at that pair'),
]

def memorization_section(run):
    lines = [(name, rows[-1]) for name, rows in sorted(run.metrics.items()) if metric_family(name) == 'memorization']
    tables = []
    for name, line in lines:
        results = line['results']
        counts = ', '.join(f'{int(results[f"{name}{k}"])} {w}' for k, w in (('_num_gen', 'synthetic'), ('_num_ref', 'real reference'))
                           if isinstance(results.get(f'{name}{k}'), (int, float)))
        body = ''.join(f'<tr><th>{esc(label)}</th><td class="num">{format_number(results[f"{name}_{key}"])}</td><td>{esc(reading)}</td></tr>'
                       for key, label, reading in MEMO_ROWS if isinstance(results.get(f'{name}_{key}'), (int, float)))
        if body:
            tables.append(f'<h3>{esc(name)}</h3><p class="sub">{esc(counts)} images; snapshot {esc(line.get("snapshot_pkl"))}</p><table>{body}</table>')
    panel = file_panel(run, 'memorization', 'Memorisation: closest pairs', ('memoriz', 'memoris', 'closest'),
                       'Memorisation audit', MEMO_HELP)
    if not tables:
        return panel
    if NOT_COMPUTED in panel: # Numbers without the pairs picture.
        return section('memorization', 'Memorisation: closest pairs', explain(MEMO_HELP) + '\n'.join(tables))
    return panel.replace('</section>', '\n'.join(tables) + '\n</section>', 1)

def options_section(run):
    if not run.options:
        return section('options', 'Options that produced this run', missing('training_options.json'))
    flat = []
    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f'{prefix}.{k}' if prefix else str(k), v)
        else:
            flat.append((prefix, json.dumps(value)))
    walk('', run.options)
    table = '<table>' + ''.join(f'<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>' for k, v in flat) + '</table>'
    return section('options', 'Options that produced this run',
                   explain('The complete configuration, exactly as training_options.json stores it, so the run can be '
                           'repeated.') + table)

#----------------------------------------------------------------------------
# The page.

SECTIONS = [('summary', 'Summary'), ('metrics', 'Quality numbers'), ('curves', 'Training'), ('images', 'Images'),
            ('spectra', 'Power spectra'), ('memorization', 'Memorisation'), ('options', 'Options')]

def build_html(run, generate=True, device='cpu'):
    title = f'Training report: {os.path.basename(os.path.abspath(run.run_dir))}'
    nav = '<nav>' + ''.join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS) + '</nav>'
    body = [
        summary_section(run),
        metrics_section(run),
        curves_section(run),
        images_section(run, generate=generate, device=device),
        file_panel(run, 'spectra', 'Power spectra', ('spectrum', 'spectra'), 'Power spectra', SPECTRUM_HELP),
        memorization_section(run),
        options_section(run),
    ]
    problems = ''
    if run.problems:
        problems = '<h2>Files that could not be read</h2><ul>' + ''.join(f'<li>{esc(p)}</li>' for p in run.problems) + '</ul>'
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<style>{STYLE}</style></head><body>\n<h1>{esc(title)}</h1>'
            f'<p class="sub">{esc(os.path.abspath(run.run_dir))} &middot; written {stamp} by fundus.report</p>{nav}\n'
            + ''.join(body) + problems + '</body></html>\n')

def write_report(run_dir, out=None, generate=True, device='cpu'):
    """Write the HTML report of a run directory.

    Args:
        run_dir:  Training run directory.
        out:      Output file; default <run_dir>/report.html.
        generate: Render per-grade image rows from the latest snapshot (else use the training grids).
        device:   Device for that rendering.

    Returns:
        Path of the written HTML file.
    """
    run = load_run(run_dir)
    text = build_html(run, generate=generate, device=device)
    out = out or os.path.join(run_dir, 'report.html')
    dnnlib.atomic_write(out, lambda f: f.write(text.encode('utf-8')))
    return out

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=100, terminal_width=100))
@click.argument('run_dir', metavar='RUN_DIR')
@click.option('--out',         help='Output HTML file [default: RUN_DIR/report.html]', metavar='FILE')
@click.option('--generate/--no-generate', help='Render per-grade images from the latest snapshot', default=True, show_default=True)
@click.option('--device',      help='Device for rendering', type=click.Choice(['cpu', 'cuda']), default='cpu', show_default=True)
def main(run_dir, out, generate, device):
    """Write a self-contained HTML report of a training run."""
    try:
        path = write_report(run_dir, out=out, generate=generate, device=device)
    except run_dir_lib.RunDirError as e:
        raise click.ClickException(str(e)) from None
    print(f'Report: {os.path.abspath(path)}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
