# python -m fundus.classify: the downstream classifier study (does synthetic data improve a DR classifier?).

import json
import os
import sys

import click

from torch_utils import device as device_utils
from torch_utils import distributed
from training import generate
from fundus.data import labels as fundus_labels
from fundus.classify import config as cconfig
from fundus.classify import outputs
from fundus.classify import phantoms
from fundus.classify.config import ClassifyError

#----------------------------------------------------------------------------

_ERRORS = (ClassifyError, device_utils.DeviceError, generate.GenerateError, fundus_labels.LabelError)

def _fail(e):
    click.echo(f'Error: {str(e).splitlines()[0] if str(e) else type(e).__name__}', err=True)
    sys.exit(1)

@click.group()
def cli():
    """Downstream classifier study: train DR classifiers with and without synthetic images, on real
    validation and test sets only, with paired statistics. See docs/classify.md."""

def _from_options(train, val, test, zip_, conditions, source, seeds, arch, steps, resolution):
    sets = {k: v for k, v in dict(train=train, val=val, test=test).items() if v is not None}
    raw = dict(data=dict(zip=zip_) if zip_ else sets)
    if conditions:
        raw['conditions'] = json.loads(conditions) if conditions.strip().startswith('[') else [c.strip() for c in conditions.split(',')]
    if source:
        raw['sources'] = {}
        for text in source:
            name, _, rest = text.partition('=')
            kind, _, path = rest.partition(':')
            if not name or not kind or not path:
                raise ClassifyError(f'--source={text}: expected NAME=KIND:PATH, e.g. gan=snapshot:network.pkl')
            raw['sources'][name] = dict(kind=kind, path=path)
    if seeds is not None:
        raw['seeds'] = seeds
    if resolution is not None:
        raw['resolution'] = resolution
    raw['model'] = {k: v for k, v in dict(arch=arch, steps=steps).items() if v is not None}
    return cconfig.resolve(raw, base=os.getcwd(), where='options')

@cli.command()
@click.argument('study_file', required=False, metavar='STUDY.json')
@click.option('--outdir', help='Output folder (the resumable store)', required=True, metavar='DIR')
@click.option('--dry-run', help='Print the plan and the leakage check, train nothing', is_flag=True)
@click.option('--device', help='auto, cpu, cuda or cuda:N', default='auto', show_default=True)
@click.option('--train', help='Training zip (without STUDY.json)', metavar='ZIP')
@click.option('--val', help='Validation zip (real images only)', metavar='ZIP')
@click.option('--test', help='Test zip (real images only)', metavar='ZIP')
@click.option('--zip', 'zip_', help='One zip split by patient instead of --train/--val/--test', metavar='ZIP')
@click.option('--conditions', help='Comma-separated condition kinds, or a JSON list of condition objects', metavar='LIST')
@click.option('--source', help='Synthetic source NAME=KIND:PATH (repeatable)', multiple=True, metavar='SPEC')
@click.option('--seeds', help='Seeds per condition (overrides the study file)', type=int, metavar='INT')
@click.option('--arch', help='Model: resnet18, resnet50, mobilenet_v3_small or tiny (overrides)', metavar='NAME')
@click.option('--steps', help='Optimiser steps per cell (overrides)', type=int, metavar='INT')
@click.option('--resolution', help='Image side in pixels (overrides)', type=int, metavar='INT')
@click.option('--progress/--no-progress', help='Progress bars on stderr', default=True, show_default=True)
def run(study_file, outdir, dry_run, device, train, val, test, zip_, conditions, source, seeds, arch, steps, resolution, progress):
    """Run (or continue) a study from STUDY.json or from options.

    \b
    Examples:
      python -m fundus.classify run study.json --outdir=runs/study --dry-run
      python -m fundus.classify run --train=tr.zip --val=va.zip --test=te.zip \\
          --source=gan=snapshot:network.pkl \\
          --conditions='["real","real+classic",{"kind":"real+synthetic","source":"gan","per_grade":[100,200]}]' \\
          --outdir=runs/study
    """
    try:
        if study_file:
            study = cconfig.load_study(study_file)
            overrides = dict(seeds=seeds, resolution=resolution)
            for k, v in overrides.items():
                if v is not None:
                    study[k] = list(range(v)) if k == 'seeds' else v
            study['model'].update({k: v for k, v in dict(arch=arch, steps=steps).items() if v is not None})
        elif train or zip_:
            study = _from_options(train, val, test, zip_, conditions, source, seeds, arch, steps, resolution)
        else:
            raise ClassifyError('give STUDY.json, or --train/--val/--test (or --zip)')
        path = outputs.run(study, outdir, dry_run=dry_run, device=device, progress=progress)
        distributed.shutdown()
        if path:
            click.echo(f'wrote {path}')
    except _ERRORS as e:
        _fail(e)

@cli.command('phantoms')
@click.argument('outdir', metavar='DIR')
@click.option('--train-patients', help='Two-eyed training patients per grade', type=int, default=3, show_default=True)
@click.option('--synthetic', help='Synthetic phantoms per grade (comma list = sweep)', default='40', show_default=True)
@click.option('--resolution', help='Image side in pixels', type=int, default=32, show_default=True)
@click.option('--seeds', help='Seeds per condition', type=int, default=5, show_default=True)
@click.option('--steps', help='Optimiser steps per cell', type=int, default=150, show_default=True)
@click.option('--arch', help='Model', default='tiny', show_default=True)
def phantoms_cmd(outdir, train_patients, synthetic, resolution, seeds, steps, arch):
    """Write a phantom study (zips, a perfect synthetic folder source, a noise control, study.json) into DIR."""
    try:
        per = [int(x) for x in synthetic.split(',')]
    except ValueError:
        _fail(ClassifyError(f'--synthetic={synthetic}: expected integers like 20,40'))
    path = phantoms.make_study(outdir, train_patients=train_patients, synthetic_per_grade=per, resolution=resolution,
                               seeds=seeds, steps=steps, arch=arch)
    click.echo(f'wrote {path}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    cli() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
