# fundus.report.page: structured blocks render through the templates, escaped, in order, atomically written.

import re

import numpy as np

from fundus.report import media, page

#----------------------------------------------------------------------------

def _page():
    img = media.image_data_uri(np.full([4, 6, 3], 200, dtype=np.uint8))
    return page.Page(title='Study <1>', subtitle='/runs/x', problems=['bad.jsonl: not JSON'], sections=[
        page.Section('summary', 'Summary', [page.Text('a < b & c'), page.Note('<b>bold</b>', html=True),
                                            page.Missing('FID', 'no Inception weights')]),
        page.Section('numbers', 'Numbers', [page.Table(['metric', 'value'], [['fid', 12.3456789], ['kid', None], ['n', 7]],
                                                       caption='Quality'),
                                            page.Image(img, 'a grey patch', caption='grey'),
                                            page.ImageRow('DR2', img, 'grade 2 row'),
                                            page.Subsection('More', [page.Code('python x.py --a=1'),
                                                                     page.Links([('index', 'index.html')])])]),
    ])

def test_render_escapes_text_and_keeps_trusted_markup():
    html = page.render(_page(), stamp='2026-01-01 00:00')
    assert '<title>Study &lt;1&gt;</title>' in html
    assert '<p>a &lt; b &amp; c</p>' in html
    assert '<div class="explain"><b>bold</b></div>' in html
    assert 'FID: not computed (no Inception weights).' in html
    assert 'written 2026-01-01 00:00' in html and 'bad.jsonl: not JSON' in html

def test_render_tables_numbers_images_and_order():
    html = page.render(_page(), stamp='x')
    assert '<td class="num">12.35</td>' in html and '<td>\u2014</td>' in html and '<td class="num">7</td>' in html
    assert html.count('src="data:image/png;base64,') == 2
    assert '<pre>python x.py --a=1</pre>' in html and '<a href="index.html">index</a>' in html
    anchors = re.findall(r'<section id="(\w+)">', html)
    assert anchors == ['summary', 'numbers', 'problems']
    assert re.findall(r'<a href="#(\w+)">', html) == ['summary', 'numbers']

def test_format_cell():
    assert page.format_cell(0.0001234) == '1.234e-04'
    assert page.format_cell(float('nan')) == 'NaN'
    assert page.format_cell(0.0) == '0'
    assert page.format_cell('DR1') == 'DR1'

def test_write_is_atomic_and_complete(tmp_path):
    out = page.write(_page(), str(tmp_path / 'p.html'), stamp='x')
    text = open(out, encoding='utf-8').read()
    assert text.rstrip().endswith('</html>')
    assert [p.name for p in tmp_path.iterdir()] == ['p.html']

def test_cells_row_headers_definitions_and_pair():
    img = media.image_data_uri(np.zeros([2, 2, 3], dtype=np.uint8))
    p = page.Page(title='t', not_computed='not computed for this run', sections=[page.Section('s', 'S', [
        page.Table([], [['Near-copies', page.Cell('3', num=True), 'should be 0 <ok>'],
                        [page.Cell('fid', bold=True, sub='Frechet <ID>'), page.Cell('a=1', code=True), None]], row_header=True),
        page.Definitions([('FID', 'lower is better & 0 = same')]),
        page.Pair([page.Subsection('Real', [page.Image(img, 'real grid')])], [page.Missing('Image grid')]),
        page.Text('file.png', muted=True)])])
    html = page.render(p, stamp='x')
    assert '<tr><th>Near-copies</th><td class="num">3</td><td>should be 0 &lt;ok&gt;</td></tr>' in html
    assert '<th><b>fid</b><br><span class="sub">Frechet &lt;ID&gt;</span></th><td><code>a=1</code></td><td>\u2014</td>' in html
    assert '<table><tr><th>Near-copies</th>' in html # No header row when the header is empty.
    assert '<li><b>FID</b>: lower is better &amp; 0 = same</li>' in html
    pair = re.search(r'<div class="pair"><div>(.*?)</div><div>(.*?)</div></div>', html, re.S)
    assert '<h3>Real</h3>' in pair.group(1) and 'alt="real grid"' in pair.group(1)
    assert 'Image grid: not computed for this run.' in pair.group(2)
    assert '<p class="sub">file.png</p>' in html

#----------------------------------------------------------------------------
