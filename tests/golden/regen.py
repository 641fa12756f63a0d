# Golden slices of the tiny networks (diffusers style): seed before construction, fixed latents, keep
# img[0, :, -3:, -3:]. They freeze parameter-initialisation order and forward maths; review every change.
#
#     .venv/bin/python tests/golden/regen.py               # all
#     .venv/bin/python tests/golden/regen.py --only sg3t   # one case
#
# The fixture snapshot under tests/fixtures/ freezes the pickle format; it is written only on request:
#
#     .venv/bin/python tests/golden/regen.py --fixture

import argparse
import json
import os
import sys

import numpy as np
import torch

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support import tiny_configs as tc # pylint: disable=wrong-import-position

GOLDEN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'networks.json')
FIXTURE_FILE = os.path.join(_ROOT, 'tests', 'fixtures', 'tiny-snapshot-v1.pkl')
FIXTURE_EXPECT = os.path.join(_ROOT, 'tests', 'fixtures', 'tiny-snapshot-v1.json')
SEED = 0

#----------------------------------------------------------------------------

def _latents(seeds, dim=tc.TINY_Z_DIM):
    return torch.cat([torch.from_numpy(np.random.RandomState(s).randn(1, dim)).float() for s in seeds])

def _generator_slice(kwargs):
    torch.manual_seed(SEED)
    G = tc.build(kwargs).eval()
    with torch.no_grad():
        img = G(_latents([1, 2]), None, truncation_psi=1, noise_mode='const')
    return img[0, :, -3:, -3:]

def _discriminator_slice():
    torch.manual_seed(SEED)
    D = tc.build(tc.sg2_discriminator_kwargs()).eval()
    img = torch.from_numpy(np.random.RandomState(3).randn(4, 3, 16, 16)).float()
    with torch.no_grad():
        return D(img, None)[:, 0]

CASES = {
    'sg3t': lambda: _generator_slice(tc.sg3_generator_kwargs()),
    'sg3r': lambda: _generator_slice(tc.sg3r_generator_kwargs()),
    'sg2': lambda: _generator_slice(tc.sg2_generator_kwargs()),
    'sg2_d': _discriminator_slice,
}

def load_golden():
    with open(GOLDEN_FILE, encoding='utf-8') as f:
        return json.load(f)

#----------------------------------------------------------------------------
# Fixture snapshot (format freeze).

def make_fixture_networks():
    torch.manual_seed(SEED)
    G = tc.build(tc.sg3_generator_kwargs()).eval().requires_grad_(False)
    D = tc.build(tc.sg2_discriminator_kwargs()).eval().requires_grad_(False)
    return G, D

def fixture_image(G):
    with torch.no_grad():
        return G(_latents([7]), None, noise_mode='const')

def write_fixture():
    from torch_utils import persistence # pylint: disable=import-outside-toplevel
    G, D = make_fixture_networks()
    data = dict(G=G, D=D, G_ema=G, augment_pipe=None,
                training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='phantom.zip',
                                         use_labels=False, max_size=8, xflip=False, resolution=16, random_seed=0))
    persistence.save_network_pkl(FIXTURE_FILE, data)
    expect = dict(torch=torch.__version__, seed=SEED, image_corner=fixture_image(G)[0, :, -3:, -3:].tolist())
    with open(FIXTURE_EXPECT, 'w', encoding='utf-8') as f:
        json.dump(expect, f, indent=1)
    print(f'wrote {FIXTURE_FILE} ({os.path.getsize(FIXTURE_FILE)} bytes)')

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description='Regenerate golden slices of the tiny networks.')
    parser.add_argument('--only', choices=sorted(CASES), help='regenerate one case')
    parser.add_argument('--fixture', action='store_true', help='rewrite tests/fixtures/tiny-snapshot-v1.pkl (format freeze!)')
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.fixture:
        write_fixture()
        return
    golden = load_golden() if os.path.exists(GOLDEN_FILE) else dict()
    for name in ([args.only] if args.only else sorted(CASES)):
        golden[name] = dict(torch=torch.__version__, seed=SEED, values=CASES[name]().tolist())
        print(f'regenerated {name}')
    with open(GOLDEN_FILE, 'w', encoding='utf-8') as f:
        json.dump(golden, f, indent=1)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
