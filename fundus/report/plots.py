# Plots for the report pages, each returned as a data URI for a page.Image: line panels (training curves,
# metrics over training), forest plots (effects with confidence intervals), ROC curves and confusion
# matrices. Figures are matplotlib.figure.Figure objects, never pyplot's global figure manager, so nothing
# outlives a call.

import dataclasses

import numpy as np
from matplotlib.figure import Figure

from fundus.report import media

#----------------------------------------------------------------------------

class PlotError(ValueError):
    """Data a plot cannot show (mismatched lengths, an empty series, an interval that excludes its estimate)."""

@dataclasses.dataclass
class Panel:
    series:     list                # [(label, xs, ys), ...] drawn as lines; label None = not in the legend.
    title:      str = None
    xlabel:     str = None
    ylabel:     str = None
    hlines:     list = dataclasses.field(default_factory=list) # [(y, label), ...] dotted reference lines.
    band:       tuple = None        # (xs, lows, highs, label): a shaded interval drawn under the lines.
    marker:     str = 'auto'        # Point marker; 'auto' = dots for short series only.
    legend:     bool = True

def _uri(fig, dpi=100):
    return media.png_data_uri(media.figure_png(fig, dpi=dpi))

def _check_lengths(what, *arrays):
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1 or 0 in lengths:
        raise PlotError(f'{what}: needs non-empty inputs of one length, got lengths {[len(a) for a in arrays]}')

#----------------------------------------------------------------------------
# Line panels.

def _draw_panel(ax, panel):
    if panel.band is not None:
        bx, lo, hi, label = panel.band
        ax.fill_between(bx, lo, hi, alpha=0.25, label=label)
    for label, xs, ys in panel.series:
        _check_lengths(f'series {label!r}', xs, ys)
        marker = ('.' if len(xs) < 30 else None) if panel.marker == 'auto' else panel.marker
        ax.plot(xs, ys, marker=marker, label=label)
    for y, label in panel.hlines:
        ax.axhline(y, color='gray', linestyle=':', linewidth=1, label=label)
    ax.set_title(panel.title or '')
    ax.set_xlabel(panel.xlabel or '')
    ax.set_ylabel(panel.ylabel or '')
    ax.grid(alpha=0.3)
    if panel.legend:
        ax.legend(fontsize=8)

def panels_plot(panels, cols=2, panel_size=(5.5, 3.6)):
    """A grid of line panels (row by row) -> data URI."""
    if not panels:
        raise PlotError('panels_plot: no panels')
    cols = min(cols, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows))
    for i, panel in enumerate(panels):
        _draw_panel(fig.add_subplot(rows, cols, i + 1), panel)
    fig.tight_layout()
    return _uri(fig)

def line_plot(series, title=None, xlabel=None, ylabel=None, hlines=(), band=None, size=(6, 4)):
    """One panel of lines [(label, xs, ys), ...] -> data URI (see Panel for the other arguments)."""
    return panels_plot([Panel(list(series), title, xlabel, ylabel, list(hlines), band)], cols=1, panel_size=size)

#----------------------------------------------------------------------------
# Forest plot: one row per comparison, the estimate with its interval, and a reference line.

def forest_plot(labels, estimates, lows, highs, ref=0, xlabel='difference', title=None):
    """Estimates with intervals [low, high], one row per label (top to bottom) -> data URI.

    A percentile-bootstrap interval need not contain its point estimate, so only low <= high is required.
    """
    _check_lengths('forest_plot', labels, estimates, lows, highs)
    est, lo, hi = (np.asarray(v, dtype=np.float64) for v in (estimates, lows, highs))
    if np.any(lo > hi):
        raise PlotError('forest_plot: every interval needs low <= high')
    y = np.arange(len(labels))[::-1]
    fig = Figure(figsize=(6.5, 0.9 + 0.45 * len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    ax.hlines(y, lo, hi, color='#245', linewidth=2)
    ax.plot(est, y, 's', color='#245')
    if ref is not None:
        ax.axvline(ref, color='gray', linestyle=':', linewidth=1)
    ax.set_yticks(y, [str(label) for label in labels])
    ax.set_xlabel(xlabel or '')
    ax.set_title(title or '')
    ax.grid(alpha=0.3, axis='x')
    fig.tight_layout()
    return _uri(fig)

#----------------------------------------------------------------------------
# ROC curves and confusion matrices (classifier and reader studies).

def trapezoid_auc(fpr, tpr):
    """Area under a ROC curve given by its points (fpr non-decreasing), by the trapezoid rule."""
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))

def roc_points(y, s):
    """Empirical ROC of binary truth y and scores s (higher = more positive): (fpr, tpr) at every distinct
    threshold, from (0, 0) to (1, 1); tied scores form one step."""
    y, s = np.asarray(y, bool), np.asarray(s, np.float64)
    order = np.argsort(-s, kind='stable')
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]                    # Last index of each tied block.
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    return np.r_[0, fp / max(1, (~y).sum())], np.r_[0, tp / max(1, y.sum())]

def roc_plot(curves, title='ROC'):
    """ROC curves [(label, fpr, tpr), ...] (each from (0, 0) to (1, 1)) with the chance line; AUC in the legend."""
    if not curves:
        raise PlotError('roc_plot: no curves')
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot(1, 1, 1)
    for label, fpr, tpr in curves:
        _check_lengths(f'roc_plot {label!r}', fpr, tpr)
        fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
        if np.any(np.diff(fpr) < 0):
            raise PlotError(f'roc_plot {label!r}: false positive rates must not decrease')
        ax.plot(fpr, tpr, label=f'{label} (AUC {trapezoid_auc(fpr, tpr):.3f})')
    ax.plot([0, 1], [0, 1], color='gray', linestyle=':', linewidth=1, label='chance')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect('equal')
    ax.set_xlabel('false positive rate (1 - specificity)')
    ax.set_ylabel('true positive rate (sensitivity)')
    ax.set_title(title or '')
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    return _uri(fig)

def confusion_matrix_plot(matrix, labels, title=None, xlabel='predicted', ylabel='true'):
    """A K x K count matrix (rows = true class) as a heat map with the counts and row shares written in."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise PlotError(f'confusion_matrix_plot: needs a {len(labels)}x{len(labels)} matrix, got shape {list(m.shape)}')
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.2 + 0.8 * len(labels), 1.0 + 0.8 * len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(share, cmap='Blues', vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f'{int(m[i, j])}\n{share[i, j]:.0%}', ha='center', va='center', fontsize=8,
                    color='white' if share[i, j] > 0.5 else 'black')
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(label) for label in labels])
    ax.set_yticks(ticks, [str(label) for label in labels])
    ax.set_xlabel(xlabel or '')
    ax.set_ylabel(ylabel or '')
    ax.set_title(title or '')
    fig.tight_layout()
    return _uri(fig)

#----------------------------------------------------------------------------
