# Reading a training run directory: the files train.py and the training loop write (training_options.json,
# stats.jsonl, network-snapshot-<kimg>.pkl) and the metric-<name>.jsonl lines of metrics.metric_main.
# report_metric. Readers never raise for a missing or damaged file: they return None or nothing and note
# files that existed but could not be read in a `problems` list, so a report of a half-finished run still
# shows what is there.

import dataclasses
import glob
import json
import math
import os
import re

import numpy as np

#----------------------------------------------------------------------------

OPTIONS_FILE = 'training_options.json'
STATS_FILE = 'stats.jsonl'
SNAPSHOT_GLOB = 'network-snapshot-*.pkl'
_SNAPSHOT_RE = re.compile(r'network-snapshot-(\d+)\.pkl$') # training.checkpoint.snapshot_filename()
_METRIC_PREFIX, _METRIC_SUFFIX = 'metric-', '.jsonl'

class RunDirError(FileNotFoundError):
    """The run directory itself does not exist."""

#----------------------------------------------------------------------------
# Files.

def read_json(path, problems):
    """A JSON file's content, or None when missing; unreadable files are noted in `problems`."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        problems.append(f'{os.path.basename(path)}: {e}')
        return None

def read_jsonl(path, problems):
    """The complete JSON lines of a file ([] when missing); a partial last line is noted and skipped."""
    rows = []
    try:
        with open(path, 'r', encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    # A run killed mid-write can leave a partial last line; keep what was complete.
                    problems.append(f'{os.path.basename(path)} line {lineno}: not valid JSON, skipped')
    except FileNotFoundError:
        pass
    except OSError as e:
        problems.append(f'{os.path.basename(path)}: {e}')
    return rows

def read_stats(run_dir, problems=None):
    """The complete lines of <run_dir>/stats.jsonl, oldest first ([] when missing)."""
    return read_jsonl(os.path.join(run_dir, STATS_FILE), [] if problems is None else problems)

def read_metric_files(run_dir, problems):
    """{metric name: result lines, oldest first} of every metric-<name>.jsonl holding a results dict."""
    metrics = dict()
    for path in sorted(glob.glob(os.path.join(run_dir, f'{_METRIC_PREFIX}*{_METRIC_SUFFIX}'))):
        name = os.path.basename(path)[len(_METRIC_PREFIX):-len(_METRIC_SUFFIX)]
        rows = [r for r in read_jsonl(path, problems) if isinstance(r, dict) and isinstance(r.get('results'), dict)]
        if rows:
            metrics[name] = rows
    return metrics

def list_snapshots(run_dir):
    return sorted(glob.glob(os.path.join(run_dir, SNAPSHOT_GLOB)))

#----------------------------------------------------------------------------
# A whole run.

@dataclasses.dataclass
class Run:
    run_dir:   str
    options:   dict         # training_options.json, or None.
    stats:     list         # One dict per stats.jsonl line.
    metrics:   dict         # metric name -> list of result lines (oldest first).
    snapshots: list         # Sorted network-snapshot-*.pkl paths.
    problems:  list         # Files that existed but could not be read, with the reason.

def load_run(run_dir):
    """Collect what a run directory holds; raises RunDirError only when the directory does not exist."""
    if not os.path.isdir(run_dir):
        raise RunDirError(f'run directory not found: {run_dir}')
    problems = []
    options = read_json(os.path.join(run_dir, OPTIONS_FILE), problems)
    stats = read_stats(run_dir, problems)
    metrics = read_metric_files(run_dir, problems)
    return Run(run_dir=run_dir, options=options, stats=stats, metrics=metrics, snapshots=list_snapshots(run_dir), problems=problems)

#----------------------------------------------------------------------------
# Progress. Snapshot names carry kimg rounded down; stats.jsonl's Progress/kimg is exact.

def snapshot_kimg(name):
    """'network-snapshot-000200.pkl' (any folder) -> 200; None when the name carries no kimg."""
    match = _SNAPSHOT_RE.search(str(name or ''))
    return int(match.group(1)) if match else None

def last_kimg(stats):
    """Thousands of real images shown at the last stats.jsonl line (exact, unlike snapshot names); None if unknown."""
    for row in reversed(stats or []):
        mean = (row.get('Progress/kimg') or {}).get('mean') if isinstance(row, dict) else None
        if isinstance(mean, (int, float)):
            return float(mean)
    return None

def training_seconds(stats):
    """Wall time of training: Timing/total_sec when logged, else the time between the first and the last
    stats line plus the first tick's duration."""
    if not stats:
        return None
    total = (stats[-1].get('Timing/total_sec') or {}).get('mean')
    if total is not None:
        return total
    first, last = stats[0], stats[-1]
    if not isinstance(first.get('timestamp'), (int, float)) or not isinstance(last.get('timestamp'), (int, float)):
        return None
    return last['timestamp'] - first['timestamp'] + (first.get('Timing/sec_per_tick') or {}).get('mean', 0.0)

#----------------------------------------------------------------------------
# Series for plots.

def stat_series(stats, key):
    """(kimg, mean) arrays of one stats.jsonl key, in file order."""
    xs, ys = [], []
    for row in stats:
        value, kimg = row.get(key), row.get('Progress/kimg')
        if isinstance(value, dict) and isinstance(kimg, dict) and value.get('num', 0) > 0:
            mean = value.get('mean')
            if mean is not None and math.isfinite(mean):
                xs.append(kimg['mean'])
                ys.append(mean)
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)

def metric_series(rows, key):
    """(kimg, value) of one result key over the snapshots a metric was computed for."""
    xs, ys = [], []
    for row in rows:
        kimg, value = snapshot_kimg(row.get('snapshot_pkl')), row['results'].get(key)
        if kimg is not None and isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(kimg)
            ys.append(value)
    return np.array(xs), np.array(ys)

#----------------------------------------------------------------------------
