# Classifier-study speed: training and evaluation images/s per model and resolution (random images, the
# study's recipe: AdamW, cross-entropy, batch `--batch`), and optionally the wall time of a whole phantom study.
# Prints one JSON object; numbers go to docs/benchmarks.md ("Classifier study").
#
#   python bench/classify.py --models=tiny,resnet18,mobilenet_v3_small,resnet50 --res=128,256 --steps=3
#   python bench/classify.py --study --study-res=64 --seeds=5 --study-steps=150

import json
import os
import sys
import tempfile
import time

import click
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fundus.classify import models, outputs, phantoms, config # noqa: E402  (after the path fix)
from torch_utils import device as device_utils # noqa: E402

#----------------------------------------------------------------------------

def bench_model(arch, res, batch, steps, device):
    net = models.build_model(arch, 5, seed=0).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 3, res, res), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 5, (batch,), generator=gen)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    def step():
        loss = F.cross_entropy(net(models.to_input(x, device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.train()
    step()                                                                   # Warm-up.
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    train_ips = steps * batch / (time.perf_counter() - t0)
    models.predict(net, x, device, batch=batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        models.predict(net, x, device, batch=batch)
    _sync(device)
    return dict(model=arch, res=res, batch=batch, train_img_s=round(train_ips, 2), eval_img_s=round(steps * batch / (time.perf_counter() - t0), 2))

def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)

def bench_study(res, seeds, steps, device):
    with tempfile.TemporaryDirectory() as d:
        path = phantoms.make_study(d, resolution=res, seeds=seeds, steps=steps)
        t0 = time.perf_counter()
        outputs.run(config.load_study(path), os.path.join(d, 'out'), device=str(device), progress=False)
        total = time.perf_counter() - t0
        with open(os.path.join(d, 'out', 'timing.json')) as f:
            cells = json.load(f)['total_seconds']
        with open(path) as f:
            n_cond = len(config.load_study(path)['conditions'])
    return dict(study_res=res, conditions=n_cond, seeds=seeds, steps=steps, wall_s=round(total, 1), cells_s=round(cells, 1))

#----------------------------------------------------------------------------

@click.command()
@click.option('--models', 'archs', help='Comma-separated models', default='tiny,resnet18,mobilenet_v3_small,resnet50', show_default=True)
@click.option('--res', help='Comma-separated resolutions', default='128,256', show_default=True)
@click.option('--batch', help='Batch size', type=int, default=8, show_default=True)
@click.option('--steps', help='Timed steps per measurement', type=int, default=3, show_default=True)
@click.option('--device', help='cpu, cuda or auto', default='cpu', show_default=True)
@click.option('--study', 'with_study', help='Also time a whole phantom study', is_flag=True)
@click.option('--study-only', help='Only time the phantom study', is_flag=True)
@click.option('--study-res', help='Resolution of the phantom study', type=int, default=64, show_default=True)
@click.option('--seeds', help='Seeds per condition of the phantom study', type=int, default=5, show_default=True)
@click.option('--study-steps', help='Optimiser steps per cell of the phantom study', type=int, default=150, show_default=True)
def main(archs, res, batch, steps, device, with_study, study_only, study_res, seeds, study_steps):
    """Time classifier training/evaluation and (optionally) a whole phantom study."""
    dev = device_utils.resolve_device(device)
    out = dict(device=str(dev), threads=torch.get_num_threads(), rows=[])
    if not study_only:
        for r in [int(v) for v in res.split(',')]:
            for a in archs.split(','):
                out['rows'].append(bench_model(a.strip(), r, batch, steps, dev))
                print(json.dumps(out['rows'][-1]), file=sys.stderr)
    if with_study or study_only:
        out['study'] = bench_study(study_res, seeds, study_steps, dev)
    print(json.dumps(out, indent=1))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
