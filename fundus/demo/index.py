# Stage 7: one HTML index (fundus.report.page) with every stage's status, time and one-line note, links to
# every page and output (relative, so the folder can be moved), and the pictures among the outputs.

import os

import dnnlib
from fundus.demo.stages import WORDS, StageOutput
from fundus.report import media, page

INDEX = 'index.html'

#----------------------------------------------------------------------------

def _href(path, outdir):
    return os.path.relpath(os.path.abspath(path), os.path.abspath(outdir)).replace(os.sep, '/')

def status_table(results):
    rows = [[page.Cell(r.name), page.Cell(WORDS[r.status], bold=r.status != 'done'), page.Cell(dnnlib.format_time(r.seconds), num=True),
             r.note or None] for r in results]
    return page.Table(['stage', 'status', 'time', 'note'], rows, caption='Every stage of this run, in order.')

def stage_blocks(result, outdir):
    blocks = [page.Text(f'{WORDS[result.status]}: {result.note}' if result.note else WORDS[result.status])]
    present = [(label, path) for label, path in result.links if os.path.exists(path)]
    if present:
        blocks.append(page.Links([(label, _href(path, outdir)) for label, path in present]))
    for label, path in present:
        if path.endswith('.png'):
            image = media.open_image(path)
            if image is not None:
                blocks.append(page.Image(media.image_data_uri(image), label, caption=_href(path, outdir)))
    return blocks

def build_page(demo, results, header):
    pages = [(label, _href(path, demo.outdir)) for label, path in demo.pages if os.path.isfile(path)]
    sections = [page.Section('stages', 'Stages', [page.Text(header), status_table(results)]),
                page.Section('pages', 'Pages', [page.Links(pages)] if pages else [page.Missing('pages', 'no stage wrote a page')])]
    if demo.reader_study:
        sections[0].blocks.append(page.Code(f'python -m fundus.turing serve {demo.reader_study}'))
    for k, r in enumerate(results):
        sections.append(page.Section(f'stage{k + 1}', r.name, stage_blocks(r, demo.outdir)))
    return page.Page('fundus-stylegan3 demo', sections, subtitle=os.path.abspath(demo.outdir))

def write_index(demo, header=''):
    """Write OUTDIR/index.html from the results so far (this stage's own line is added by the caller)."""
    path = os.path.join(demo.outdir, INDEX)
    page.write(build_page(demo, demo.results, header), path)
    return StageOutput(path, [('index', path)])

#----------------------------------------------------------------------------
