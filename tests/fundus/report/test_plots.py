# fundus.report.plots: every helper returns a PNG data URI of a drawn figure, refuses data it cannot show,
# and embeds in a page through page.Image.

import base64
import io

import numpy as np
import PIL.Image
import pytest

from fundus.report import page
from fundus.report import plots

#----------------------------------------------------------------------------

def _decode(uri):
    assert uri.startswith('data:image/png;base64,')
    img = PIL.Image.open(io.BytesIO(base64.b64decode(uri.split(',', 1)[1])))
    arr = np.asarray(img.convert('L'), dtype=np.float64)
    assert arr.std() > 5 # Something is drawn, not a blank canvas.
    return arr

def test_line_plot_and_panels():
    xs = np.arange(5.0)
    one = _decode(plots.line_plot([('loss', xs, xs ** 2), ('other', xs, -xs)], title='t', hlines=[(0.6, 'target')],
                                  band=(xs, xs - 1, xs + 1, 'band')))
    grid = _decode(plots.panels_plot([plots.Panel([('a', xs, xs)], 'A'), plots.Panel([('b', xs, -xs)], 'B'),
                                      plots.Panel([('c', xs, xs)], 'C')], cols=2, panel_size=(4, 3)))
    assert grid.shape[0] > 1.6 * one.shape[0] * 3 / 4 # Two rows of 3-inch panels vs one 4-inch plot.
    with pytest.raises(plots.PlotError, match="series 'bad'"):
        plots.line_plot([('bad', xs, xs[:3])])
    with pytest.raises(plots.PlotError, match='no panels'):
        plots.panels_plot([])

def test_forest_plot_rows_and_bad_intervals():
    small = _decode(plots.forest_plot(['A'], [0.1], [-0.1], [0.3]))
    tall = _decode(plots.forest_plot([f'model {i}' for i in range(8)], np.linspace(-1, 1, 8), np.linspace(-1, 1, 8) - 0.2,
                                     np.linspace(-1, 1, 8) + 0.2, ref=0, xlabel='accuracy difference'))
    assert tall.shape[0] > 2 * small.shape[0] # One row per comparison.
    with pytest.raises(plots.PlotError, match='low <= high'):
        plots.forest_plot(['A'], [0.5], [0.9], [0.6])
    plots.forest_plot(['A'], [0.5], [0.6], [0.9]) # A percentile interval may miss its estimate: drawn, not refused.
    with pytest.raises(plots.PlotError, match='one length'):
        plots.forest_plot(['A', 'B'], [0.5], [0.4], [0.9])

def test_roc_plot_and_auc():
    assert plots.trapezoid_auc([0, 1], [0, 1]) == 0.5
    assert plots.trapezoid_auc([0, 0, 1], [0, 1, 1]) == 1.0
    assert plots.trapezoid_auc([0, 0.5, 1], [0, 0.75, 1]) == pytest.approx(0.625)
    _decode(plots.roc_plot([('ours', [0, 0.2, 1], [0, 0.8, 1]), ('baseline', [0, 1], [0, 1])]))
    with pytest.raises(plots.PlotError, match='must not decrease'):
        plots.roc_plot([('bad', [0, 0.5, 0.4, 1], [0, 0.5, 0.6, 1])])
    with pytest.raises(plots.PlotError, match='no curves'):
        plots.roc_plot([])

def test_confusion_matrix_plot():
    labels = [f'DR{k}' for k in range(5)]
    m = np.diag([20, 15, 10, 8, 5]) + 1
    _decode(plots.confusion_matrix_plot(m, labels, title='grades'))
    with pytest.raises(plots.PlotError, match='needs a 5x5 matrix'):
        plots.confusion_matrix_plot(np.ones([4, 4]), labels)

def test_plots_embed_in_a_page():
    uri = plots.forest_plot(['A', 'B'], [0.1, -0.2], [0.0, -0.4], [0.2, 0.0])
    html = page.render(page.Page('p', [page.Section('s', 'S', [page.Image(uri, 'forest plot')])]), stamp='x')
    assert f'<img src="{uri}" alt="forest plot">' in html

def test_roc_points_area_equals_the_mann_whitney_auc():
    # Tied scores form one diagonal step, so the trapezoid area equals the AUC with ties counted one half.
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(4)
    y = rng.random(80) < 0.4
    s = np.round(rng.normal(size=80) + y, 1)
    fpr, tpr = plots.roc_points(y, s)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)
    assert abs(plots.trapezoid_auc(fpr, tpr) - roc_auc_score(y, s)) < 1e-12

#----------------------------------------------------------------------------
