# Stage 6: a reader study (visual Turing test, fundus.turing) of real phantoms vs synthetic images of the
# evaluated generator. The synthetic images are rendered here (seed i, grade i mod 5, with a dataset.json
# of their grades) so that the stage does not depend on stage 3's metric images.

import json
import os

import torch

import dnnlib
from fundus.demo.stages import StageOutput
from fundus.grades import GRADES
from fundus.turing import study as turing_study
from training import generate

READERS = ('reader1', 'reader2')

#----------------------------------------------------------------------------

def render_synthetic(demo, count, folder):
    """`count` images of the model, grades in dataset.json; returns the folder."""
    device = torch.device(demo.device)
    G = generate.load_generator(demo.model, device)
    labels = []
    classes = list(GRADES) if G.c_dim > 0 else [None]
    for k, idx in enumerate(classes):
        seeds = list(range(k, count, len(classes)))
        for seed, img in generate.generate_images(G, seeds, class_idx=idx, batch_size=8, device=device):
            name = generate.seed_filename(seed)
            generate.save_png(os.path.join(folder, name), img)
            labels.append([name, idx])
    meta = dict(labels=sorted(labels) if classes != [None] else None)
    dnnlib.atomic_write(os.path.join(folder, 'dataset.json'), lambda f: f.write(json.dumps(meta).encode()))
    return folder

def free_folder(path):
    """path, or path-1, path-2, ... : the first that does not exist (create refuses a non-empty folder)."""
    k, out = 0, path
    while os.path.exists(out):
        k += 1
        out = f'{path}-{k}'
    return out

def create_reader_study(demo):
    cfg = demo.config
    need = cfg.study_count // 2 + cfg.study_practice
    synthetic = render_synthetic(demo, need, os.path.join(demo.outdir, 'reader-synthetic'))
    out = free_folder(os.path.join(demo.outdir, 'reader-study'))
    links = turing_study.create_study(demo.eval_zip, synthetic, list(READERS), out, count=cfg.study_count, seed=0,
                                      practice=cfg.study_practice)
    demo.echo(f'      reader study in {out}; serve it with: python -m fundus.turing serve {out}')
    for name, token in links['readers'].items():
        demo.echo(f'        reader {name}: http://127.0.0.1:8765/r/{token}')
    demo.echo(f'        coordinator: http://127.0.0.1:8765/c/{links["coordinator"]}')
    demo.reader_study = out
    note = (f'{cfg.study_count} test images (half real phantoms, half synthetic) + {cfg.study_practice} practice for '
            f'{len(READERS)} readers; serve with: python -m fundus.turing serve {out}')
    return StageOutput(note, [('study folder', out), ('reader links (mode 0600)', os.path.join(out, 'links.json'))])

#----------------------------------------------------------------------------
