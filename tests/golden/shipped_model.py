# Golden slices of the shipped phantom model (fundus/demo/model/): the generator's centre pixels for seed 0
# of every grade, and the encoder's ws for the DR2 image. Regenerate only when the shipped model changes:
#
#     .venv/bin/python tests/golden/shipped_model.py

import json
import os
import sys

import numpy as np
import torch

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from fundus.demo import shipped  # pylint: disable=wrong-import-position
from fundus.fundusgan import invert  # pylint: disable=wrong-import-position
from training import generate  # pylint: disable=wrong-import-position

GOLDEN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'shipped-model.json')
SEED = 0

#----------------------------------------------------------------------------

def images_per_grade(G):
    """[5, C, R, R] float images of seed SEED for grades DR0..DR4 (noise_mode const, psi 1)."""
    z = torch.from_numpy(np.random.RandomState(SEED).randn(1, G.z_dim)).float().repeat(G.c_dim, 1)
    c = torch.eye(G.c_dim)
    with torch.no_grad():
        return G(z, c, truncation_psi=1, noise_mode='const')

def slices(model_dir=shipped.MODEL_DIR):
    """{'generator': [5, C, 3, 3] centre slices, 'encoder': [num_ws, 4] of E(image of DR2)} as arrays."""
    G = generate.load_generator(shipped.generator_path(model_dir))
    img = images_per_grade(G)
    mid = img.shape[-1] // 2
    out = dict(generator=img[:, :, mid - 1:mid + 2, mid - 1:mid + 2].numpy())
    enc_path = shipped.encoder_path(model_dir)
    if enc_path is not None:
        E, _G, _info = invert.load_encoder_snapshot(enc_path)
        with torch.no_grad():
            out['encoder'] = E(img[2:3])[0, :, :4].numpy()
    return out

def main():
    torch.set_num_threads(1)
    manifest = shipped.read_manifest()
    record = dict(torch=torch.__version__, seed=SEED, manifest={k: v['sha256'] for k, v in manifest.items() if k != 'provenance'},
                  **{k: v.tolist() for k, v in slices().items()})
    with open(GOLDEN_FILE, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=1)
    print(f'wrote {GOLDEN_FILE}')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
