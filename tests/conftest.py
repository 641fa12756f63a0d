# Shared test setup: seeds, pinned threads, isolated caches, reset of every module global we keep,
# and the slow / cuda markers.

import importlib
import os
import random

import numpy as np
import pytest
import torch

torch.set_num_threads(1) # Thread count changes float results; pin it once for the whole run.

# Modules that keep process-global state; each offers reset_for_tests(). Helpers append to this list.
_RESETTABLE_MODULES = [
    'torch_utils.misc',
    'torch_utils.training_stats',
    'torch_utils.custom_ops',
    'fundus.data.build',
    'torch_utils.ops.cuda_kernels',
    'metrics.detectors',
    'metrics.paired',
]

def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get('RUN_SLOW', '0') not in ('', '0')
    has_cuda = torch.cuda.is_available()
    skip_slow = pytest.mark.skip(reason='slow test: set RUN_SLOW=1 to run it')
    skip_cuda = pytest.mark.skip(reason='needs a CUDA GPU')
    for item in items:
        if 'slow' in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if 'cuda' in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)

@pytest.fixture(scope='session', autouse=True)
def _isolated_caches(tmp_path_factory):
    # Tests never read or write the user's caches, and never download.
    os.environ['DNNLIB_CACHE_DIR'] = str(tmp_path_factory.mktemp('dnnlib-cache'))
    os.environ.setdefault('TORCH_EXTENSIONS_DIR', str(tmp_path_factory.mktemp('torch-extensions')))
    os.environ.setdefault('MPLBACKEND', 'Agg')
    yield

@pytest.fixture(autouse=True)
def _seed_and_reset():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
    for name in _RESETTABLE_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        reset = getattr(module, 'reset_for_tests', None)
        if reset is not None:
            reset()
