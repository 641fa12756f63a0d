# run_demo(): the stages in order, each with a deadline from config.SHARES, and the index at the end.

import os
import time

import dnnlib
from fundus.demo import config as demo_config
from fundus.demo import downstream, encoder, gan, index, reader
from fundus.demo.stages import Demo, Stage
from torch_utils.device import resolve_device

#----------------------------------------------------------------------------

def default_stages():
    return [
        Stage('dataset',    '1 Phantom dataset',                gan.build_dataset),
        Stage('training',   '2 Training from scratch',          gan.train_network,          ('zip_path',)),
        Stage('model',      '3 Model to evaluate',              gan.choose_model),
        Stage('images',     '3 Images per grade',               gan.generate_images,        ('model',)),
        Stage('metrics',    '3 Metrics',                        gan.compute_metrics,        ('model',)),
        Stage('report',     '3 Training run report',            gan.write_report,           ('run_dir', 'snapshot')),
        Stage('encoder',    '4 Encoder',                        encoder.train_encoder,      ('model',)),
        Stage('downstream', '5 Downstream classifier study',    downstream.run_study,       ('model',)),
        Stage('reader',     '6 Reader study',                   reader.create_reader_study, ('model',)),
        Stage('index',      '7 Index',                          lambda demo: index.write_index(demo)),
    ]

def stage_deadlines(start, seconds, stages, shares=None):
    """{key: end time}: stage k may run until start + seconds * (sum of the shares up to and including k)."""
    shares = shares or demo_config.SHARES
    total = sum(shares.get(s.key, 0.0) for s in stages)
    out, acc = {}, 0.0
    for s in stages:
        acc += shares.get(s.key, 0.0)
        out[s.key] = start + seconds * acc / max(total, 1e-9)
    return out

def run_demo(outdir='demo-out', minutes=12.0, device='auto', config=None, echo=print, stages=None, model_dir=None):
    """Run every stage within `minutes` (wall clock, from the call).

    Args:
        outdir:  Folder for everything (datasets, runs, pages, index.html).
        minutes: Time budget, split between the stages by config.SHARES.
        device:  'auto', 'cpu' or 'cuda'.
        config:  DemoConfig; None = the preset for the device (cpu_config() / gpu_config()).
        echo:    Where progress lines go.
        stages:  [Stage]; None = default_stages() (tests replace one to force a failure).
        model_dir: Folder of a shipped model (manifest.json); None = shipped.MODEL_DIR.

    Returns:
        (list of StageResult, path of index.html or None).
    """
    start = time.time()
    device = resolve_device(device).type # 'cpu' or 'cuda' (this process's GPU).
    config = config or (demo_config.gpu_config() if device == 'cuda' else demo_config.cpu_config())
    stages = stages or default_stages()
    os.makedirs(outdir, exist_ok=True)
    demo = Demo(outdir, config, device, deadline=start + minutes * 60, echo=echo, model_dir=model_dir)
    header = f'{config.name} preset on {device}, {minutes:g} minutes'
    echo(f'fundus-stylegan3 demo: {header}, output in {os.path.abspath(outdir)}')
    deadlines = stage_deadlines(start, minutes * 60, stages)
    for i, stage in enumerate(stages):
        demo.stage_deadline = deadlines[stage.key]
        demo.stage(i + 1, len(stages), stage)
    path = finish_index(demo, f'{header}; finished in {dnnlib.format_time(time.time() - start)}')
    failed = [r.name for r in demo.results if r.status == 'failed']
    echo(f'Finished in {dnnlib.format_time(time.time() - start)}' + (f'; {len(failed)} stage(s) failed: {", ".join(failed)} (reasons in the index).' if failed else '.'))
    if path:
        echo(f'Index: {os.path.abspath(path)}')
    return demo.results, path

def finish_index(demo, header):
    """Rewrite the index with every stage's result, the index stage included. None when it cannot be written."""
    try:
        return index.write_index(demo, header).links[0][1]
    except Exception as e: # Already reported by the index stage when it failed there too.
        demo.echo(f'index: cannot write ({type(e).__name__}: {e})')
        return None

#----------------------------------------------------------------------------
