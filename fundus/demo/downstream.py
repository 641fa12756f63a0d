# Stage 5: a small downstream classifier study with fundus.classify: real vs real+synthetic (images of the
# evaluated generator, per grade) vs real+classic augmentation, a few seeds each, and gan-test (how often
# the real classifier grades the generator's DR<g> images as DR<g>), on phantom patients of
# their own (classify's phantom sets, another seed than the GAN's training phantoms, so that no test image
# can be in the generator's training set). The study writes its own page (study.html, forest plots).

import json
import os

import dnnlib
from fundus.classify import config as cconfig, outputs as coutputs, phantoms as cphantoms
from fundus.demo.stages import StageOutput

PHANTOM_SEED = 7103        # Seed of the classifier's phantom patients (the GAN's dataset uses seed 0).

#----------------------------------------------------------------------------

def write_study(demo, folder):
    """Train/val/test zips of two-eyed phantom patients and study.json; returns the study file's path."""
    cfg = demo.config
    os.makedirs(folder, exist_ok=True)
    n_train, n_val, n_test = cfg.cls_patients
    nxt = cphantoms.write_zip(os.path.join(folder, 'train.zip'), n_train, cfg.cls_resolution, PHANTOM_SEED)
    nxt = cphantoms.write_zip(os.path.join(folder, 'val.zip'), n_val, cfg.cls_resolution, PHANTOM_SEED, start=nxt)
    cphantoms.write_zip(os.path.join(folder, 'test.zip'), n_test, cfg.cls_resolution, PHANTOM_SEED, start=nxt)
    study = dict(name='demo-phantoms', resolution=cfg.cls_resolution, seeds=cfg.cls_seeds, bootstrap=cfg.cls_bootstrap,
                 data=dict(train='train.zip', val='val.zip', test='test.zip'), gan_train=os.path.abspath(demo.eval_zip),
                 sources=dict(gan=dict(kind='snapshot', path=os.path.abspath(demo.model), seed=0)),
                 conditions=['real', 'real+classic', dict(kind='real+synthetic', source='gan', per_grade=cfg.cls_synthetic),
                             dict(kind='gan-test', source='gan', per_grade=cfg.cls_synthetic)],
                 model=dict(arch='tiny', steps=cfg.cls_steps, batch=32, lr=3e-3, val_every=max(1, cfg.cls_steps // 3)))
    path = os.path.join(folder, 'study-definition.json')
    dnnlib.atomic_write(path, lambda f: f.write(json.dumps(study, indent=1).encode()))
    return path

def summarize(result_path):
    """One line: balanced accuracy of every condition minus real, with its CI, from study.json."""
    with open(result_path, encoding='utf-8') as f:
        res = json.load(f)
    parts = []
    for name, comp in res.get('comparisons', {}).items():
        d = comp.get('balanced_accuracy', {})
        if isinstance(d, dict) and d.get('diff') is not None and d.get('ci'):
            lo, hi = (float('nan') if v is None else v for v in d['ci'])
            parts.append(f'{name} - real {d["diff"]:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})')
    return '; '.join(parts) or 'see study.html'

def summarize_gan_test(result_path):
    """One line: per grade, the share of the generator's images that the real classifier assigns to that grade."""
    with open(result_path, encoding='utf-8') as f:
        res = json.load(f)
    parts = [', '.join(f'{g} {v["value"]:.2f}' for g, v in shares.items()) for shares in res.get('gan_test', {}).values()]
    return '; '.join(parts) or 'not computed'

def run_study(demo):
    cfg = demo.config
    folder = os.path.join(demo.outdir, 'downstream')
    definition = write_study(demo, folder)
    outdir = os.path.join(folder, 'out')
    result = coutputs.run(cconfig.load_study(definition), outdir, device=demo.device, progress=True, echo=demo.echo)
    page = os.path.join(outdir, 'study.html')
    demo.pages.append(('Downstream classifier study (stage 5)', page))
    note = (f'3 trained conditions x {cfg.cls_seeds} seeds, {cfg.cls_steps} steps each, test set of {2 * 5 * cfg.cls_patients[2]} '
            f'real phantoms; balanced accuracy {summarize(result)}; gan-test (synthetic images graded as their '
            f'grade by the real classifier) {summarize_gan_test(result)}')
    return StageOutput(note, [('study page (forest plots)', page), ('study.json', result), ('definition', definition)])

#----------------------------------------------------------------------------
