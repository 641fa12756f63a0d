# Figures of the study page, drawn with the report toolkit (fundus/report/plots.py) where it has the kind:
# forest plot of differences from `real`, confusion matrices and ROC curves; the synthetic-amount sweep
# (one line with CI bars per source) is drawn here. Every function returns a data URI.

import numpy as np
from matplotlib.figure import Figure

from fundus import grades
from fundus.report import media
from fundus.report import plots as report_plots

#----------------------------------------------------------------------------

def forest(comparisons, metric, label):
    """One row per condition: difference from real with its 95% CI, a dotted line at zero; None when no
    condition has both (e.g. a metric undefined on this test set)."""
    rows = [(n, c[metric]['diff'], *c[metric]['ci']) for n, c in comparisons.items()
            if c[metric]['diff'] is not None and None not in c[metric]['ci']]
    if not rows:
        return None
    names, diffs, lows, highs = zip(*rows)
    return report_plots.forest_plot(names, diffs, lows, highs, ref=0,
                                    xlabel=f'{label}: condition - real (95% patient-bootstrap CI)')

def sweep(points, metric_label):
    """points: {source: [(x, value, lo, hi), ...]} with x = synthetic images per grade or the ratio."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for src, rows in points.items():
        x, v, lo, hi = (np.asarray(col, dtype=np.float64) for col in zip(*sorted(rows)))
        ax.errorbar(x, v, yerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)], marker='o', capsize=3, label=src)
    ax.set_xlabel('synthetic images added (per grade, or synthetic:real ratio)')
    ax.set_ylabel(metric_label)
    ax.legend()
    fig.tight_layout()
    return media.png_data_uri(media.figure_png(fig))

def confusion(cm, title):
    """A K x K count matrix (rows = true grade) with counts and row shares."""
    labels = [grades.grade_name(j) for j in range(np.asarray(cm).shape[0])]
    return report_plots.confusion_matrix_plot(cm, labels, title=title)

def roc(curves, title):
    """curves: {label: (y_binary, scores)} -> one ROC per label, AUC in the legend."""
    return report_plots.roc_plot([(label, *report_plots.roc_points(y, s)) for label, (y, s) in curves.items()], title=title)

#----------------------------------------------------------------------------
