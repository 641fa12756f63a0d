"""One self-contained HTML page per training run, written for the people who judge the images.

    python -m fundus.report runs/00000-stylegan3-t-dr1-gpus1-batch32-gamma8

reads what the run directory holds (training_options.json, stats.jsonl, metric-*.jsonl, reals.png,
fakes*.png, network snapshots, spectrum and memorisation outputs) and writes `report.html` next to them.
Every image is embedded, so the file can be mailed or archived alone. Anything the run lacks is shown as
"not computed for this run"; the page is still written.
"""

import glob
import json
import os

import numpy as np

import dnnlib
from fundus.report import grids
from fundus.report import media
from fundus.report import page
from fundus.report import plots
from fundus.report import text
from fundus.report.page import Cell, Definitions, Image, ImageRow, Missing, Note, Pair, Section, Subsection, Table, Text
from metrics import metric_main
from training import run_dir as run_dir_lib
from training.run_dir import load_run, metric_series, read_json, snapshot_kimg, stat_series, training_seconds

NOT_COMPUTED = text.NOT_COMPUTED

#----------------------------------------------------------------------------
# Metric rows. Result keys are read with the registry's parser (metrics.metric_main.split_result_key):
# interval keys (fid10k_full_boot_p2.5, ...) become the interval of their value, image counts
# (spectrum200_num_gen, ...) annotate the metric, every other number is a row.

def _numeric(results):
    return {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

def _split_results(name, results):
    # (values {key: v}, intervals {value key: {role: v}}, counts {suffix: v}) of one results dict.
    values, intervals, counts = dict(), dict(), dict()
    for key, v in _numeric(results).items():
        parsed = metric_main.split_result_key(key, name)
        role = 'value' if parsed is None else parsed.role # Keys no registered metric writes are shown as they are.
        if role == 'count':
            counts[parsed.suffix] = v
        elif role == 'value':
            values[key] = v
        else:
            intervals.setdefault(parsed.value, dict())[role] = v
    return values, intervals, counts

def metric_rows(metrics):
    """Table rows from the latest line of every metric file: dicts with name, value, interval, counts, kimg, family."""
    rows = []
    for name, lines in sorted(metrics.items()):
        latest = lines[-1]
        values, intervals, counts = _split_results(name, latest['results'])
        for base, value in values.items():
            rows.append(dict(metric=name, name=base, value=value, interval=intervals.get(base, dict()), counts=counts,
                             kimg=snapshot_kimg(latest.get('snapshot_pkl')), snapshot=latest.get('snapshot_pkl'),
                             family=metric_main.metric_family(name), total_time=latest.get('total_time_str')))
    return rows

def format_number(value):
    """Report numbers: 4 significant digits below 10, two decimals up to 1e5, else scientific."""
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f'{value:.4g}' if abs(value) < 10 else f'{value:.2f}'
    return f'{value:.3e}'

#----------------------------------------------------------------------------
# Plots.

def training_curves_uri(stats):
    """One picture with a panel per text.CURVES entry that has data; None when stats.jsonl holds nothing plottable."""
    panels = []
    for title, keys, ylabel, _explanation in text.CURVES:
        series = [(label, *stat_series(stats, key)) for key, label in keys]
        series = [s for s in series if len(s[1])]
        if series:
            hlines = [(text.AUGMENT_TARGET, f'default target {text.AUGMENT_TARGET}')] if title == 'Augmentation' else []
            panels.append(plots.Panel(series, title, 'training progress (thousands of real images shown)', ylabel, hlines))
    return plots.panels_plot(panels, cols=2, panel_size=(5.5, 3.6)) if panels else None

def _interval_band(lines, base, name):
    # (kimg, lows, highs, label) of a value's bootstrap interval over the snapshots, or None.
    keys = {metric_main.split_result_key(k, name) for k in lines[-1]['results']}
    found = {p.role: p.key for p in keys if p is not None and p.value == base and p.role in ('low', 'high')}
    if len(found) < 2:
        return None
    (lx, lo), (hx, hi) = metric_series(lines, found['low']), metric_series(lines, found['high'])
    return (lx, lo, hi, 'bootstrap 95%') if np.array_equal(lx, hx) and len(lx) >= 2 else None

def metric_curves_uri(metrics):
    """One picture with a panel per metric value computed at two or more snapshots (bootstrap band shaded); else None."""
    panels = []
    for row in metric_rows(metrics):
        lines = metrics[row['metric']]
        xs, ys = metric_series(lines, row['name'])
        if len(xs) >= 2:
            band = _interval_band(lines, row['name'], row['metric'])
            panels.append(plots.Panel([('value', xs, ys)], row['name'], 'thousands of real images shown', band=band,
                                      marker='o', legend=band is not None))
    return plots.panels_plot(panels, cols=3, panel_size=(3.8, 3.2)) if panels else None

#----------------------------------------------------------------------------
# Summary and options.

def _model_name(opts):
    cls = str((opts.get('G_kwargs') or {}).get('class_name', ''))
    kernel = (opts.get('G_kwargs') or {}).get('conv_kernel')
    if 'stylegan3' in cls:
        return 'StyleGAN3-R (rotation equivariant)' if kernel == 1 else 'StyleGAN3-T (translation equivariant)'
    if 'stylegan2' in cls:
        return 'StyleGAN2'
    return cls or None

def _dataset_text(data):
    if not data:
        return None
    res = data.get('resolution', '?')
    return (f'{os.path.basename(str(data.get("path", "?")))} ({data.get("max_size", "?")} images, {res}x{res} pixels'
            f'{", with grade labels" if data.get("use_labels") else ""}{", plus mirrored copies" if data.get("xflip") else ""})')

def summary_section(run):
    opts = run.options or {}
    G_kwargs = opts.get('G_kwargs') or {}
    kimg = run_dir_lib.last_kimg(run.stats)
    seconds = training_seconds(run.stats)
    items = [
        ('Model', _model_name(opts)),
        ('Training data', _dataset_text(opts.get('training_set_kwargs'))),
        ('Training length', f'{kimg:.1f} thousand real images shown to the discriminator' if kimg is not None else None),
        ('Training time', dnnlib.format_time(seconds) if seconds is not None else None),
        ('Batch / R1 gamma', f'{opts.get("batch_size", "?")} / {(opts.get("loss_kwargs") or {}).get("r1_gamma", "?")}' if opts else None),
        ('Latest snapshot', os.path.basename(run.snapshots[-1]) if run.snapshots else None),
        ('Latent size', f'z {G_kwargs.get("z_dim", "?")}, w {G_kwargs.get("w_dim", "?")}' if G_kwargs else None),
    ]
    table = Table([], [[k, v if v is not None else NOT_COMPUTED] for k, v in items], row_header=True)
    return Section('summary', 'Summary', [table, Note(text.SUMMARY_NOTE)])

def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f'{prefix}.{k}' if prefix else str(k), v, out)
    else:
        out.append((prefix, value))
    return out

def options_section(run):
    title = 'Options that produced this run'
    if not run.options:
        return Section('options', title, [Missing('training_options.json')], nav='Options')
    rows = [[k, Cell(json.dumps(v), code=True)] for k, v in _flatten('', run.options, [])]
    return Section('options', title, [Note(text.OPTIONS_NOTE), Table([], rows, row_header=True)], nav='Options')

#----------------------------------------------------------------------------
# Quality numbers.

def _metric_table_row(r, has_interval):
    title, direction, _ = text.METRIC_HELP.get(r['family'], (r['name'], '', ''))
    counted = ', '.join(f'{int(v)} {k[4:].replace("gen", "generated")}' for k, v in sorted(r['counts'].items()))
    cells = [Cell(r['name'], bold=True, sub=f'{title} ({counted} images)' if counted else title),
             Cell(format_number(r['value']), num=True)]
    if has_interval:
        ci = r['interval']
        if 'low' in ci and 'high' in ci:
            n = f'{int(ci["n"])} resamples' if 'n' in ci else None
            cells.append(Cell(f'{format_number(ci["low"])} - {format_number(ci["high"])}', num=True, sub=n))
        else:
            cells.append(Cell('-', num=True))
        cells.append(Cell(format_number(ci['mean']) if 'mean' in ci else '-', num=True))
    cells += [Cell(str(r['kimg']) if r['kimg'] is not None else '-', num=True), direction]
    return cells

def metrics_section(run):
    rows = [r for r in metric_rows(run.metrics) if r['family'] != 'memorization']
    if not rows:
        return Section('metrics', 'Quality numbers', [Missing('Metrics (FID, KID, equivariance, ...)', 'no metric-*.jsonl files')])
    has_interval = any(r['interval'] for r in rows)
    header = ['Metric', 'Value'] + (['Bootstrap 95% interval', 'Bootstrap mean'] if has_interval else []) + ['Snapshot (kimg)', 'What it means']
    families = list(dict.fromkeys(r['family'] for r in rows if r['family']))
    blocks = [Table(header, [_metric_table_row(r, has_interval) for r in rows])]
    absent = [text.METRIC_HELP[f][0] for f in text.EXPECTED_FAMILIES if f not in families]
    if absent:
        blocks.append(Text(f'Not computed for this run: {", ".join(absent)}.', muted=True))
    notes = [(text.METRIC_HELP[f][0], text.METRIC_HELP[f][2]) for f in families if f in text.METRIC_HELP]
    blocks += [Definitions(notes + ([text.BOOTSTRAP_NOTE] if has_interval else [])), Note(text.PAPER_NOTE)]
    return Section('metrics', 'Quality numbers', blocks)

def curves_section(run):
    uri = training_curves_uri(run.stats) if run.stats else None
    if uri is None:
        blocks = [Missing('Training curves', 'stats.jsonl is missing or empty')]
    else:
        blocks = [Image(uri, 'training curves'), Definitions([(t, e) for t, _, _, e in text.CURVES])]
    metric_uri = metric_curves_uri(run.metrics)
    if metric_uri is not None:
        blocks.append(Subsection('Metrics over training', [Image(metric_uri, 'metrics over training'), Note(text.METRIC_CURVES_NOTE)]))
    return Section('curves', 'How training went', blocks, nav='Training')

#----------------------------------------------------------------------------
# Images per grade.

def _grade_blocks(rows, run, fallback_name, fallback_caption):
    if rows:
        return [ImageRow(label, media.image_data_uri(grid), label) for label, grid in rows]
    img = media.open_image(os.path.join(run.run_dir, fallback_name)) if fallback_name else None
    if img is not None:
        return [Image(media.image_data_uri(img), fallback_caption, caption=fallback_name)]
    return [Missing('Image grid')]

def _rendered_rows(run, generate, device, notes):
    # (real rows, synthetic rows) per grade; problems go to `notes`, never stop the report.
    if not generate or not run.snapshots:
        return [], []
    real_rows, fake_rows = [], []
    try:
        fake_rows, _ = grids.generate_grade_grids(run.snapshots[-1], device=device)
    except Exception as e: # A snapshot we cannot load must not stop the report.
        notes.append(f'could not generate from {os.path.basename(run.snapshots[-1])}: {e}')
    try:
        real_rows = grids.real_grade_grids(run.options)
    except Exception as e:
        notes.append(f'could not read the training dataset: {e}')
    return real_rows, fake_rows

def images_section(run, generate, device):
    notes = []
    real_rows, fake_rows = _rendered_rows(run, generate, device, notes)
    fakes = sorted(glob.glob(os.path.join(run.run_dir, 'fakes[0-9]*.png')))
    real = _grade_blocks(real_rows, run, 'reals.png', 'training grid from reals.png')
    fake = _grade_blocks(fake_rows, run, os.path.basename(fakes[-1]) if fakes else None, 'latest training grid')
    blocks = [Note(text.IMAGES_NOTE), Pair([Subsection('Real photographs', real)], [Subsection('Synthetic images', fake)])]
    if fake_rows:
        last = grids.GRID_COLS - 1
        blocks.append(Text(f'Synthetic images: seeds 0-{last} of {os.path.basename(run.snapshots[-1])}, no truncation '
                           f'(reproduce with gen_images.py --seeds=0-{last}).', muted=True))
    return Section('images', 'Images', blocks + [Text(n, muted=True) for n in notes])

#----------------------------------------------------------------------------
# Metric outputs found as files: spectra and memorisation pictures, JSON summaries.

def find_outputs(run_dir, words, exts):
    found = []
    for path in sorted(glob.glob(os.path.join(run_dir, '**', '*'), recursive=True)):
        name = os.path.basename(path).lower()
        if os.path.isfile(path) and any(w in name for w in words) and name.endswith(exts):
            found.append(path)
    return found

def json_table(data, max_items=40):
    """Scalars of a (nested) JSON object as a two-column table; long arrays are summarised."""
    def shown(value):
        if isinstance(value, list):
            if len(value) <= 6 and all(not isinstance(v, (dict, list)) for v in value):
                return ', '.join(shown(v) for v in value)
            return f'{len(value)} values'
        return format_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    items = _flatten('', data, [])[:max_items]
    return Table([], [[k, Cell(shown(v), num=True)] for k, v in items], row_header=True)

def output_blocks(run, words):
    """Pictures and JSON tables of the files whose names contain one of `words`."""
    blocks = []
    for path in find_outputs(run.run_dir, words, ('.png', '.jpg')):
        img = media.open_image(path)
        if img is not None:
            blocks.append(Image(media.image_data_uri(img), os.path.basename(path), caption=os.path.relpath(path, run.run_dir)))
    for path in find_outputs(run.run_dir, words, ('.json',)):
        data = read_json(path, run.problems)
        if isinstance(data, dict):
            blocks.append(Subsection(os.path.relpath(path, run.run_dir), [json_table(data)]))
    return blocks

def spectra_section(run):
    found = output_blocks(run, ('spectrum', 'spectra'))
    blocks = [Note(text.SPECTRUM_HELP)] + found if found else [Missing('Power spectra', 'run the metric to add it'), Note(text.SPECTRUM_HELP)]
    return Section('spectra', 'Power spectra', blocks)

def _memorization_tables(run):
    tables = []
    for name, lines in sorted(run.metrics.items()):
        if metric_main.metric_family(name) != 'memorization':
            continue
        line = lines[-1]
        results = _numeric(line['results'])
        counts = ', '.join(f'{int(results[name + k])} {w}' for k, w in (('_num_gen', 'synthetic'), ('_num_ref', 'real reference'))
                           if name + k in results)
        rows = [[label, Cell(format_number(results[f'{name}_{key}']), num=True), reading]
                for key, label, reading in text.MEMO_ROWS if f'{name}_{key}' in results]
        if rows:
            tables.append(Subsection(name, [Text(f'{counts} images; snapshot {line.get("snapshot_pkl")}', muted=True),
                                            Table([], rows, row_header=True)]))
    return tables

def memorization_section(run):
    found = output_blocks(run, ('memoriz', 'memoris', 'closest')) + _memorization_tables(run)
    blocks = [Note(text.MEMO_HELP)] + found if found else [Missing('Memorisation audit', 'run the metric to add it'), Note(text.MEMO_HELP)]
    return Section('memorization', 'Memorisation: closest pairs', blocks, nav='Memorisation')

#----------------------------------------------------------------------------
# The page.

def build_page(run, generate=True, device='cpu'):
    """The report of a loaded run (training.run_dir.load_run) as a page.Page."""
    sections = [summary_section(run), metrics_section(run), curves_section(run), images_section(run, generate, device),
                spectra_section(run), memorization_section(run), options_section(run)]
    title = f'Training report: {os.path.basename(os.path.abspath(run.run_dir))}'
    return page.Page(title=title, sections=sections, subtitle=os.path.abspath(run.run_dir), problems=run.problems,
                     generator='fundus.report', not_computed=NOT_COMPUTED)

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
    built = build_page(load_run(run_dir), generate=generate, device=device)
    return page.write(built, out or os.path.join(run_dir, 'report.html'))

#----------------------------------------------------------------------------
