# python -m fundus.turing create|serve|analyze|export: the visual Turing test (reader study) tool.

import os
import sys

import click
import waitress

from fundus.turing import analyze as analyze_module
from fundus.turing import app as app_module
from fundus.turing import export as export_module
from fundus.turing import store, study

#----------------------------------------------------------------------------

@click.group()
def main():
    """Visual Turing test: can readers tell real fundus photographs from synthetic ones?"""

def _fail(e):
    raise click.ClickException(str(e))

#----------------------------------------------------------------------------

@main.command()
@click.option('--real',         required=True, metavar='DIR|ZIP',  help='Real images (folder or dataset zip; dataset.json grades used when present)')
@click.option('--synthetic',    required=True, metavar='DIR|ZIP',  help='Synthetic images (folder or zip; dataset.json grades used when present)')
@click.option('--readers',      required=True, metavar='LIST',     help='Reader names, comma-separated (letters, digits, _ . -)')
@click.option('--out',          required=True, metavar='DIR',      help='Study folder to create (must be absent or empty)')
@click.option('--count',        default=100, show_default=True, type=int,   help='Test images, half real and half synthetic (even)')
@click.option('--seed',         default=0, show_default=True, type=int,     help='Study seed: image draw, blocks and every reader order')
@click.option('--practice',     default=10, show_default=True, type=int,    help='Practice images shown first with feedback, never analysed')
@click.option('--crop-center',  default=1.0, show_default=True, type=float, help='Keep the central fraction of each image (0.8 hides the FOV border)')
@click.option('--block-size',   default=0, show_default=True, type=int,     help='0 = every reader reads every image; B = an anchor set of B plus rotating blocks of B')
def create(real, synthetic, readers, out, count, seed, practice, crop_center, block_size):
    """Create a study folder: images (PNG, no metadata, opaque names), study.sqlite and links.json (mode 0600)."""
    names = [r.strip() for r in readers.split(',') if r.strip()]
    try:
        links = study.create_study(real, synthetic, names, out, count=count, seed=seed, practice=practice,
                                   crop=crop_center, block_size=block_size)
    except store.TuringError as e:
        _fail(e)
    click.echo(f'Study written to {out} (links in {os.path.join(out, "links.json")}, mode 0600).')
    click.echo('Links (prefix them with the server address, e.g. http://127.0.0.1:8765):')
    for name, token in links['readers'].items():
        click.echo(f'  reader {name}: /r/{token}')
    click.echo(f'  coordinator: /c/{links["coordinator"]}')

#----------------------------------------------------------------------------

@main.command()
@click.argument('study_dir', type=click.Path(file_okay=False))
@click.option('--host',     default='127.0.0.1', show_default=True, help='Address to bind; 0.0.0.0 exposes the study to the network')
@click.option('--port',     default=8765, show_default=True, type=int, help='TCP port')
@click.option('--threads',  default=8, show_default=True, type=int, help='Worker threads of the WSGI server (waitress)')
def serve(study_dir, host, port, threads):
    """Serve the reader and coordinator pages (waitress WSGI server)."""
    try:
        app = app_module.create_app(study_dir)
    except store.TuringError as e:
        _fail(e)
    if host not in ('127.0.0.1', 'localhost', '::1'):
        click.echo(f'Warning: --host={host} makes the study reachable from other machines; links carry the tokens, '
                   'so put it behind HTTPS (a reverse proxy) on a trusted network.', err=True)
    click.echo(f'Serving {study_dir} on http://{host}:{port}/ (Ctrl-C stops)', err=True)
    sys.stderr.flush()
    waitress.serve(app, host=host, port=port, threads=threads, ident='fundus-turing', _quiet=True)

#----------------------------------------------------------------------------

@main.command()
@click.argument('study_dir', type=click.Path(file_okay=False))
@click.option('--out',      required=True, metavar='DIR', help='Folder for report.html and results.csv')
@click.option('--alpha',    default=0.05, show_default=True, type=float, help='1 - confidence level of every interval')
def analyze(study_dir, out, alpha):
    """Statistics of a study: accuracy, sensitivity/specificity, AUC (DeLong), MRMC AUC (ORH), kappas; HTML + CSV."""
    try:
        paths = analyze_module.run(study_dir, out, alpha=alpha)
    except store.TuringError as e:
        _fail(e)
    for p in paths:
        click.echo(p)

#----------------------------------------------------------------------------

@main.command()
@click.argument('study_dir', type=click.Path(file_okay=False))
@click.option('--format',   'fmt', type=click.Choice(['csv', 'imrmc']), default='csv', show_default=True,
              help='csv: one row per trial; imrmc: the FDA iMRMC list-mode input (score -5..5, synthetic = diseased)')
@click.option('--out',      required=True, metavar='FILE', help='Output file')
def export(study_dir, fmt, out):
    """Export the trial table (test trials and practice for csv; test only for imrmc)."""
    try:
        export_module.export(study_dir, fmt, out)
    except store.TuringError as e:
        _fail(e)
    click.echo(out)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
