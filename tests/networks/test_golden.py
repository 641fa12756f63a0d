# Golden slices: tiny networks, fixed seed and latents, compared with tests/golden/networks.json.

import numpy as np
import pytest

from tests.golden import regen

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(regen.CASES))
def test_golden_slice(name):
    golden = regen.load_golden()
    assert name in golden, f'no golden values for {name}: run `.venv/bin/python tests/golden/regen.py --only {name}`'
    got = regen.CASES[name]().numpy()
    expect = np.asarray(golden[name]['values'], dtype=np.float32)
    diff = float(np.abs(got - expect).max())
    assert got.shape == expect.shape and diff < 1e-4, (
        f'golden slice {name} changed (max abs diff {diff:.3g}; recorded with torch {golden[name]["torch"]}). '
        f'If the change is intended, review it and run `.venv/bin/python tests/golden/regen.py --only {name}`')
    assert np.abs(expect).max() > 1e-3 # The slice is not trivially zero.

#----------------------------------------------------------------------------
