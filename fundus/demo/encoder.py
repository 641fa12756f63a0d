# Stage 4: the shipped model's encoder, or else a small pSp encoder for the evaluated generator, trained
# on the phantoms until the stage's deadline with fundus.fundusgan's own training step; then:
# reconstructions of held-out phantoms (another seed), ssim_recon / lpips_recon / lesion_recall_recon on
# them through the metric registry, a `mix` picture (anatomy of one eye, lesions of another) and, for a
# trained encoder, its run's report.
#
# The run directory has fundus.fundusgan's layout (training_options.json with the steps actually run,
# stats.jsonl, validation.jsonl, recon-<step>.png, encoder-snapshot-<step>.pkl), so `python -m
# fundus.fundusgan report/invert/mix` and calc_metrics.py read it like any encoder run.

import contextlib
import io
import json
import os
import time

import numpy as np
import PIL.Image
import tqdm

import dnnlib
from fundus.demo import gan
from fundus.demo.stages import DeadlineBudget, StageOutput, StageUnavailable
from fundus.fundusgan import invert, report as enc_report, train as train_lib
from fundus.fundusgan import metrics as recon_metrics
from metrics import metric_main
from training import generate

RECON_METRICS = ('ssim_recon', 'lpips_recon', 'lesion_recall_recon')

#----------------------------------------------------------------------------

def encoder_options(demo):
    cfg = demo.config
    return train_lib.default_options(generator=demo.model, data=demo.eval_zip, arch='psp', steps=cfg.enc_max_steps,
                                     batch=cfg.enc_batch, lr=cfg.enc_lr, backbone='resnet18', width=cfg.enc_width,
                                     fpn_channels=cfg.enc_fpn, val=max(2, cfg.enc_batch), device=demo.device,
                                     grid_rows=min(8, cfg.images_per_grade), log_every=10)

def train_for_budget(run, deadline, progress=True):
    """Encoder steps until the next would end after `deadline` (at least one). Returns the logged loss lines."""
    budget, lines = DeadlineBudget(deadline), []
    budget()
    bar = tqdm.tqdm(desc='encoder', unit='step', disable=not progress, leave=False)
    while run.step < run.opts.steps and (run.step == 0 or not budget.stop()):
        terms = train_lib.train_step(run)
        budget()
        bar.update(1)
        if run.step % run.opts.log_every == 0 or run.step == 1:
            lines.append(dict(step=run.step, timestamp=time.time(), **terms))
    bar.close()
    return lines

def write_run_files(run, lines):
    """training_options.json (steps = the steps run), stats.jsonl, validation.jsonl, recon grid, snapshot."""
    opts = dict(run.opts, steps=run.step)
    d = run.run_dir
    dnnlib.atomic_write(os.path.join(d, 'training_options.json'), lambda f: f.write(json.dumps(opts, indent=2)), mode='w')
    dnnlib.atomic_write(os.path.join(d, 'stats.jsonl'), lambda f: f.write(''.join(json.dumps(l) + '\n' for l in lines)), mode='w')
    val = train_lib.evaluate(run.E, run.G, run.ds, run.val_idx, run.lpips_fn, run.device)
    record = dict(step=run.step, timestamp=time.time(), **{f'val/{k}': v for k, v in val.items()})
    dnnlib.atomic_write(os.path.join(d, 'validation.jsonl'), lambda f: f.write(json.dumps(record) + '\n'), mode='w')
    generate.save_png(os.path.join(d, f'recon-{run.step:06d}.png'), train_lib.recon_grid(run, run.opts.grid_rows))
    return train_lib.save_snapshot(run), val

#----------------------------------------------------------------------------

def train_encoder(demo):
    res = int(generate.load_generator(demo.model).img_resolution)
    if res % 32 != 0:
        raise StageUnavailable(f'the encoder needs a resolution that is a multiple of 32; the model makes {res}x{res}')
    if demo.shipped_encoder:
        run_dir = os.path.join(demo.outdir, 'shipped-encoder')
        os.makedirs(run_dir, exist_ok=True)
        demo.encoder_snapshot = demo.shipped_encoder
        what = f'shipped encoder {os.path.basename(demo.shipped_encoder)}'
    else:
        run_dir, what = fit_encoder(demo)
    links = []
    heldout = gan.phantom_zip(demo, demo.config.heldout_images, res, seed=1, name='heldout-phantoms')
    recon_grid = reconstructions(demo, heldout, res, os.path.join(run_dir, 'heldout-recon'))
    scores = score(demo, run_dir, heldout)
    mix_png = mix_picture(demo, heldout, res, os.path.join(run_dir, 'mix'))
    if not demo.shipped_encoder: # The run's report, with the held-out scores just written.
        links.append(('encoder report', enc_report.write_report(run_dir)))
        demo.pages.append(('Encoder run report (stage 4)', links[-1][1]))
    text = ', '.join(f'{k} = {v:.3f}' for k, v in scores.items())
    links += [('encoder snapshot', demo.encoder_snapshot), ('held-out reconstructions', recon_grid),
              ('mix: anatomy of one eye, lesions of another', mix_png)]
    return StageOutput(f'{what}; held-out {text}', links)

def fit_encoder(demo):
    """Train an encoder until the stage's deadline less a reserve. Returns (run_dir, one-line note)."""
    opts = encoder_options(demo)
    run_dir = train_lib.new_run_dir(os.path.join(demo.outdir, 'encoder'), 'psp', demo.eval_zip)
    os.makedirs(run_dir, exist_ok=True)
    run = train_lib.Run(opts, run_dir, progress=False)
    start = time.time()
    lines = train_for_budget(run, demo.stage_deadline - reserve_seconds(demo), progress=True)
    demo.echo(f'      encoder: {run.step} steps in {dnnlib.format_time(time.time() - start)}')
    demo.encoder_snapshot, val = write_run_files(run, lines)
    note = (f'{run.step} steps (psp, ResNet-18 width {opts.width}); validation SSIM {val["ssim"]:.3f} '
            f'vs {val["base_ssim"]:.3f} for the w_avg image')
    return run_dir, note

def reserve_seconds(demo):
    """Time kept after the encoder's training for reconstructions, metrics and the mix (a fifth of the stage)."""
    return 0.2 * max(0.0, demo.stage_deadline - time.time())

#----------------------------------------------------------------------------

def load_png(path):
    with PIL.Image.open(path) as im:
        return np.asarray(im.convert('RGB'))

def reconstructions(demo, heldout, res, outdir):
    """`invert` of every held-out phantom; a grid of the first eight (reals above, reconstructions below)."""
    paths, _skipped = invert.run_invert(demo.encoder_snapshot, heldout, outdir, device=demo.device)
    _names, reals, _labels, _sk = invert.read_images(heldout, res)
    k = min(8, len(paths))
    recons = np.stack([load_png(p) for p in paths[:k]])
    grid = generate.make_grid(np.concatenate([reals[:k].transpose(0, 2, 3, 1), recons]), cols=k)
    path = os.path.join(outdir, 'grid.png')
    generate.save_png(path, grid)
    return path

def score(demo, run_dir, heldout):
    """The reconstruction metrics on the held-out phantoms, written to run_dir/metric-*.jsonl."""
    recon_metrics.register()
    E, G, _info = invert.load_encoder_snapshot(demo.encoder_snapshot, demo.device)
    kwargs = dict(G=recon_metrics.Reconstructor(E, G), dataset_kwargs=gan.dataset_kwargs(heldout), device=demo.device,
                  progress=False, cache=False, seed=0, detectors=demo.config.detectors, out_dir=run_dir,
                  bootstrap=demo.config.bootstrap)
    out = {}
    for name in RECON_METRICS:
        result = metric_main.calc_metric(name, **kwargs)
        with contextlib.redirect_stdout(io.StringIO()): # The registry also prints the line; the demo shows its own.
            metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=demo.encoder_snapshot)
        out[name] = result.results[name]
        demo.metrics[name] = out[name]
    return out

def mix_picture(demo, heldout, res, outdir):
    """Anatomy (coarse ws) of the first held-out DR0 eye with the lesions (fine ws) of the highest-grade one."""
    names, arr, labels, _sk = invert.read_images(heldout, res)
    first = {}
    for i, n in enumerate(names):
        first.setdefault(int(labels[n]) if labels else 0, i)
    a, b = first[min(first)], first[max(first)]
    for sub, i in (('coarse', a), ('fine', b)):
        generate.save_png(os.path.join(outdir, sub, 'eye.png'), arr[i].transpose(1, 2, 0))
    paths = invert.run_mix(demo.encoder_snapshot, os.path.join(outdir, 'coarse'), os.path.join(outdir, 'fine'),
                           os.path.join(outdir, 'out'), device=demo.device)
    row = np.stack([arr[a].transpose(1, 2, 0), arr[b].transpose(1, 2, 0), load_png(paths[0])])
    path = os.path.join(outdir, 'mix.png')
    generate.save_png(path, generate.make_grid(row, cols=3))
    return path

#----------------------------------------------------------------------------
