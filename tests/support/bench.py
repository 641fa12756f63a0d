# A script of bench/ loaded as a module by file name (bench/ scripts put their own paths first, so the
# tests load them the way they run, not through the bench package).

import importlib.util
import os

BENCH = os.path.join(os.path.dirname(__file__), '..', '..', 'bench')

def load_bench(name):
    """bench/<name>.py as a fresh module named bench_<name>."""
    spec = importlib.util.spec_from_file_location(f'bench_{name}', os.path.join(BENCH, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
