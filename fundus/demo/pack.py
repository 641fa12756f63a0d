# python -m fundus.demo.pack: put a trained phantom model in the box (fundus/demo/model/) for the demo.
#
#     python -m fundus.demo.pack --network=runs/00000-.../network-snapshot-000080.pkl \
#         --encoder=enc/00000-fundusgan-psp-.../encoder-snapshot-004000.pkl
#
# Writes phantom-G.pkl (G_ema only), phantom-E.pkl and manifest.json with their SHA-256 (docs/model-card.md).

import os
import subprocess

import click

from fundus.demo import shipped
from fundus.fundusgan import common
from training import run_dir

#----------------------------------------------------------------------------

def git_commit():
    """The commit of this checkout, or None outside a git checkout."""
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=os.path.dirname(os.path.abspath(__file__)),
                             capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None

@click.command()
@click.option('--network', required=True, metavar='PKL', help='network-snapshot-*.pkl of train.py; only its G_ema is kept')
@click.option('--encoder', metavar='PKL', help='encoder-snapshot-*.pkl of python -m fundus.fundusgan train, trained against that G_ema')
@click.option('--outdir',  metavar='DIR', default=shipped.MODEL_DIR, show_default=True, help='Folder of the shipped model')
def main(network, encoder, outdir):
    """Pack a generator (and its encoder) as the demo's shipped model, with a manifest of SHA-256 hashes."""
    provenance = dict(commit=git_commit(), kimg=run_dir.snapshot_kimg(os.path.basename(network)))
    try:
        manifest = shipped.pack_model(network, encoder, outdir, provenance)
    except (shipped.ShippedModelError, common.FundusGANError) as e:
        raise click.ClickException(str(e)) from None
    for key in ('generator', 'encoder'):
        if key in manifest:
            path = os.path.join(outdir, manifest[key]['file'])
            click.echo(f'{key}: {path} ({os.path.getsize(path) / 1e6:.2f} MB, sha256 {manifest[key]["sha256"]})')
    click.echo(os.path.join(outdir, shipped.MANIFEST))

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
