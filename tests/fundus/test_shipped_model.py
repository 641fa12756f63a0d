# The pretrained phantom model in the box (fundus/demo/model/): its files match the manifest's SHA-256, it
# fits the 25 MB budget, it loads through the safe loader and renders the golden slices recorded in
# tests/golden/shipped-model.json (generator: seed 0 of every grade; encoder: ws of the DR2 image).

import json
import os

import numpy as np

from fundus.demo import shipped
from tests.golden import shipped_model

#----------------------------------------------------------------------------

def test_shipped_model_is_in_the_box_hash_checked_and_small():
    manifest = shipped.read_manifest()
    assert manifest is not None, f'no shipped model in {shipped.MODEL_DIR}'
    assert shipped.generator_path() == os.path.join(shipped.MODEL_DIR, shipped.GENERATOR_FILE)
    assert shipped.encoder_path() == os.path.join(shipped.MODEL_DIR, shipped.ENCODER_FILE)
    total = sum(os.path.getsize(os.path.join(shipped.MODEL_DIR, n)) for n in os.listdir(shipped.MODEL_DIR))
    assert total <= 25e6
    assert isinstance(manifest['provenance']['kimg'], int) and len(manifest['provenance']['commit']) == 40

def test_shipped_model_renders_its_golden_slices():
    with open(shipped_model.GOLDEN_FILE, encoding='utf-8') as f:
        golden = json.load(f)
    manifest = shipped.read_manifest()
    assert golden['manifest'] == {k: v['sha256'] for k, v in manifest.items() if k != 'provenance'}, (
        'the shipped model changed: review it, then run `.venv/bin/python tests/golden/shipped_model.py`')
    got = shipped_model.slices()
    for key in ('generator', 'encoder'):
        expect = np.asarray(golden[key], dtype=np.float32)
        diff = float(np.abs(got[key] - expect).max())
        assert got[key].shape == expect.shape and diff < 1e-4, f'{key} slice changed (max abs diff {diff:.3g})'
        assert np.abs(expect).max() > 1e-3
    spread = np.abs(got['generator'] - got['generator'][:1]).max() # The grade changes the image.
    assert spread > 1e-3

#----------------------------------------------------------------------------
