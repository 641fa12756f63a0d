# python -m fundus.report RUN_DIR: the training-run report (the library is fundus/report/run.py).

import os

import click

from fundus.report import run
from training.run_dir import RunDirError

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=100, terminal_width=100))
@click.argument('run_dir', metavar='RUN_DIR')
@click.option('--out',         help='Output HTML file [default: RUN_DIR/report.html]', metavar='FILE')
@click.option('--generate/--no-generate', help='Render per-grade images from the latest snapshot', default=True, show_default=True)
@click.option('--device',      help='Device for rendering', type=click.Choice(['cpu', 'cuda']), default='cpu', show_default=True)
def main(run_dir, out, generate, device):
    """Write a self-contained HTML report of a training run."""
    try:
        path = run.write_report(run_dir, out=out, generate=generate, device=device)
    except RunDirError as e:
        raise click.ClickException(str(e)) from None
    print(f'Report: {os.path.abspath(path)}')


#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
