# Figures of the study page: forest plot of differences from `real`, the synthetic-amount sweep, confusion
# matrices and ROC curves. Each function returns a matplotlib figure; the page embeds it with media.figure_uri.

import matplotlib
import numpy as np

matplotlib.use('Agg') # Files only; never opens a window.
import matplotlib.pyplot as plt # noqa: E402  (after the backend choice)

#----------------------------------------------------------------------------

def forest(comparisons, metric, label):
    """One row per condition: difference from real with its 95% CI; a dashed line at zero."""
    names = list(comparisons)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    for i, n in enumerate(names):
        c = comparisons[n][metric]
        lo, hi = c['ci']
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [i, i], color='tab:blue', lw=2)
        if c['diff'] is not None:
            ax.plot([c['diff']], [i], 'o', color='tab:blue')
    ax.axvline(0, color='grey', ls='--', lw=1)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f'{label}: condition - real (95% patient-bootstrap CI)')
    fig.tight_layout()
    return fig

def sweep(points, metric_label):
    """points: {source: [(x, value, lo, hi), ...]} with x = synthetic images per grade or the ratio."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for src, rows in points.items():
        rows = sorted(rows)
        x = [r[0] for r in rows]
        ax.errorbar(x, [r[1] for r in rows], yerr=[[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]], marker='o', capsize=3, label=src)
    ax.set_xlabel('synthetic images added (per grade, or synthetic:real ratio)')
    ax.set_ylabel(metric_label)
    ax.legend()
    fig.tight_layout()
    return fig

def confusion(cm, title):
    cm = np.asarray(cm, np.float64)
    k = cm.shape[0]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f'{int(cm[i, j])}', ha='center', va='center', fontsize=8, color='white' if norm[i, j] > 0.5 else 'black')
    ax.set_xticks(range(k), [f'DR{j}' for j in range(k)])
    ax.set_yticks(range(k), [f'DR{i}' for i in range(k)])
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig

def roc(curves, title):
    """curves: {label: (y_binary, scores)} -> one ROC per label."""
    fig, ax = plt.subplots(figsize=(4, 4))
    for label, (y, s) in curves.items():
        fpr, tpr = roc_points(y, s)
        ax.plot(fpr, tpr, label=label, lw=1.2)
    ax.plot([0, 1], [0, 1], color='grey', ls='--', lw=0.8)
    ax.set_xlabel('1 - specificity')
    ax.set_ylabel('sensitivity')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    return fig

def roc_points(y, s):
    """Empirical ROC: (fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1)."""
    y, s = np.asarray(y, bool), np.asarray(s, np.float64)
    order = np.argsort(-s, kind='stable')
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]                    # Last index of each tied block.
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    return np.r_[0, fp / max(1, (~y).sum())], np.r_[0, tp / max(1, y.sum())]

#----------------------------------------------------------------------------
