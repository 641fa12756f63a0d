# python -m fundus.demo: the embedded demo (see docs/demo.md).

import click

from fundus.demo import pipeline
from torch_utils import cpu_memory
from torch_utils.device import DeviceError

#----------------------------------------------------------------------------

@click.command()
@click.option('--outdir',  help='Output folder', metavar='DIR', default='demo-out', show_default=True)
@click.option('--minutes', help='Wall-clock budget of the stages, split between them as docs/demo.md says', type=click.FloatRange(min=0), default=12, show_default=True)
@click.option('--device',  help='Where to run (cuda: the larger GPU preset)', type=click.Choice(['auto', 'cpu', 'cuda']), default='auto', show_default=True)
def main(outdir, minutes, device):
    """Walk both papers on phantom data: dataset, training, metrics, encoder, classifier study, reader study, index."""
    cpu_memory.keep_freed_memory() # Every stage runs in this process (torch_utils/cpu_memory.py).
    try:
        results, index_path = pipeline.run_demo(outdir=outdir, minutes=minutes, device=device)
    except DeviceError as e:
        raise click.ClickException(str(e)) from None
    # run_demo's last line is the index's path; a failed stage (named on the line before) makes the exit status 1.
    if index_path is None or any(r.status == 'failed' for r in results):
        raise SystemExit(1)

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
