# Tier A: every module imports on a CPU-only machine with no CUDA toolkit, nothing compiles at import,
# and our code raises no DeprecationWarning at import.

import os
import pkgutil
import subprocess
import sys

import pytest

import dnnlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = list(dnnlib.PACKAGES)

def all_modules():
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([os.path.join(ROOT, package)], prefix=package + '.'):
            names.append(info.name)
    return sorted(names)

#----------------------------------------------------------------------------

_IMPORT_ALL = r'''
import importlib, sys, warnings
import torch.utils.cpp_extension as cpp
def refuse(*args, **kwargs):
    raise AssertionError('a module compiled a CUDA extension at import')
cpp.load = refuse
cpp.load_inline = refuse
warnings.simplefilter('error', DeprecationWarning)
for name in sys.argv[1:]:
    importlib.import_module(name)
print('imported', len(sys.argv) - 1)
'''

def test_every_module_imports_without_cuda_toolkit_or_compilation():
    modules = all_modules()
    env = dict(os.environ)
    env.pop('CUDA_HOME', None)
    env.pop('CUDA_PATH', None)
    env['PYTHONPATH'] = ROOT
    env['MPLBACKEND'] = 'Agg'
    result = subprocess.run([sys.executable, '-c', _IMPORT_ALL, *modules], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'imported {len(modules)}' in result.stdout

def test_layering_torch_utils_never_imports_training_or_metrics():
    # design.md section 2: dnnlib imports nothing of ours; torch_utils imports only dnnlib.
    forbidden = {'dnnlib': ('torch_utils', 'training', 'metrics', 'fundus'),
                 'torch_utils': ('training', 'metrics', 'fundus')}
    offenders = []
    for package, banned in forbidden.items():
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, package)):
            for fname in files:
                if not fname.endswith('.py'):
                    continue
                path = os.path.join(dirpath, fname)
                for lineno, line in enumerate(open(path), 1):
                    stripped = line.strip()
                    if stripped.startswith(('import ', 'from ')) and any(
                            stripped.split()[1] == b or stripped.split()[1].startswith(b + '.') for b in banned):
                        offenders.append(f'{os.path.relpath(path, ROOT)}:{lineno}: {stripped}')
    assert not offenders, '\n'.join(offenders)

#----------------------------------------------------------------------------
