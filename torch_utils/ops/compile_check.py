# CI step 2 (`make cuda-check`): compile the CUDA plugin with nvcc for every arch in TORCH_CUDA_ARCH_LIST,
# on a machine without a GPU, and fail on any compile error or any warning not justified below.
#
# The build is the one users get (custom_ops.get_plugin, same sources, flags and cache directory), run in
# a subprocess so the compiler output can be captured. A successful check writes a stamp into the build
# directory, which is keyed by the MD5 of the sources; an unchanged tree is then checked in seconds.
#
#   python -m torch_utils.ops.compile_check [--force] [--verbose]

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

import dnnlib
from torch_utils import custom_ops
from torch_utils.ops import cuda_kernels as ck

#----------------------------------------------------------------------------

DEFAULT_ARCH_LIST = '8.0;9.0'
STAMP_NAME = 'compile-check.json'
ENTRY_POINTS = ('bias_act', 'filtered_lrelu', 'filtered_lrelu_act_', 'upfirdn2d')

# Warnings we accept, each with the reason. Everything else that mentions "warning" fails the check.
JUSTIFIED_WARNINGS = [
    # torch.utils.cpp_extension's own Python-level notices, not compiler diagnostics.
    (r'No CUDA runtime is found, using CUDA_HOME',
     'torch logs this on a machine without a GPU driver; compiling needs only nvcc'),
    (r'There are no g\+\+ version bounds defined for CUDA version',
     'torch has no compiler-version table for CUDA 13.0 yet; nvcc itself accepts this g++'),
    (r'TORCH_CUDA_ARCH_LIST is not set',
     'never printed when run through make cuda-check, which sets it'),
]

_BUILD_SNIPPET = r'''
import sys
from torch_utils import custom_ops
from torch_utils.ops import cuda_kernels as ck
m = custom_ops.get_plugin(ck.PLUGIN_NAME, ck.PLUGIN_SOURCES, ck.PLUGIN_HEADERS, source_dir=ck.SOURCE_DIR,
                          verbose=True, extra_cflags=ck.PLUGIN_CFLAGS, extra_cuda_cflags=ck.PLUGIN_CUDA_FLAGS)
print('ENTRY_POINTS=' + ','.join(sorted(n for n in dir(m) if not n.startswith('_'))))
print('MODULE_FILE=' + m.__file__)

# Call every entry point with the argument list of docs/kernels.md on CPU tensors: the bindings must
# accept the types and stop at their first TORCH_CHECK (device), which proves the signatures without a GPU.
import torch
x, f = torch.zeros([1, 1, 4, 4]), torch.ones([1, 1])
e, u8 = torch.empty([0]), torch.empty([0], dtype=torch.uint8)
calls = dict(
    upfirdn2d=lambda: m.upfirdn2d(x, f, 1, 1, 1, 1, 0, 0, 0, 0, False, 1.0),
    bias_act=lambda: m.bias_act(x, e, e, e, e, 0, 1, 3, 0.2, 1.4, -1.0),
    filtered_lrelu=lambda: m.filtered_lrelu(x, f, f, e, u8, 1, 1, 0, 0, 0, 0, 0, 0, 1.4, 0.2, -1.0, False, True),
    filtered_lrelu_act_=lambda: m.filtered_lrelu_act_(x, u8, 0, 0, 1.4, 0.2, -1.0, True),
)
for name, call in calls.items():
    try:
        call()
        print(f'SIGNATURE_FAIL={name}: accepted a CPU tensor')
    except RuntimeError as err:
        ok = 'must be a CUDA tensor' in str(err)
        print(f'SIGNATURE_{"OK" if ok else "FAIL"}={name}: {str(err).splitlines()[0]}')
    except TypeError as err:
        print(f'SIGNATURE_FAIL={name}: {str(err).splitlines()[0]}')
'''

#----------------------------------------------------------------------------

def _fail(message):
    print(f'compile_check: FAILED: {message}', file=sys.stderr)
    sys.exit(1)

def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def _build_dir():
    paths = [os.path.join(ck.SOURCE_DIR, p) for p in ck.PLUGIN_SOURCES + ck.PLUGIN_HEADERS]
    digest = custom_ops.source_digest(paths)
    return os.path.join(custom_ops.extensions_root(), ck.PLUGIN_NAME, f'{digest}-{custom_ops._device_tag()}') # pylint: disable=protected-access

def unjustified_warnings(log):
    """Lines of compiler output that mention a warning not matched by JUSTIFIED_WARNINGS."""
    bad = []
    for line in log.splitlines():
        if not re.search(r'warning', line, re.IGNORECASE):
            continue
        if any(re.search(pattern, line) for pattern, _why in JUSTIFIED_WARNINGS):
            continue
        bad.append(line.strip())
    return bad

def archs_in_build_file(build_dir):
    """Compute capabilities that build.ninja passes to nvcc as -gencode targets, e.g. ['80', '90']."""
    path = os.path.join(build_dir, 'build.ninja')
    if not os.path.isfile(path):
        return []
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return sorted(set(re.findall(r'arch=compute_(\d+),code=sm_\d+', text)))

def expected_archs(arch_list):
    return sorted(set(a.replace('.', '').replace('+PTX', '') for a in re.split(r'[;\s]+', arch_list.strip()) if a))

#----------------------------------------------------------------------------

def _flags():
    return dict(cflags=list(ck.PLUGIN_CFLAGS), cuda_cflags=list(ck.PLUGIN_CUDA_FLAGS))

def _read_stamp(path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def _check_environment():
    cuda_home = os.environ.get('CUDA_HOME') or '/usr/local/cuda'
    nvcc = os.path.join(cuda_home, 'bin', 'nvcc')
    if not os.access(nvcc, os.X_OK):
        _fail(f'no nvcc at {nvcc}; set CUDA_HOME to the CUDA toolkit folder')
    os.environ['CUDA_HOME'] = cuda_home
    os.environ.setdefault('TORCH_CUDA_ARCH_LIST', DEFAULT_ARCH_LIST)
    version = subprocess.run([nvcc, '--version'], capture_output=True, text=True, check=False).stdout.strip().splitlines()
    print(f'compile_check: nvcc {version[-1] if version else "?"}; TORCH_CUDA_ARCH_LIST={os.environ["TORCH_CUDA_ARCH_LIST"]}')

def _run_build(verbose):
    env = dict(os.environ)
    env.setdefault('MAX_JOBS', str(max(os.cpu_count() or 1, 1)))
    env['PYTHONPATH'] = _repo_root() + os.pathsep + env.get('PYTHONPATH', '')
    t0 = time.time()
    proc = subprocess.run([sys.executable, '-c', _BUILD_SNIPPET], cwd=_repo_root(), env=env, capture_output=True,
                          text=True, check=False)
    seconds = time.time() - t0
    log = proc.stdout + proc.stderr
    if verbose or proc.returncode != 0:
        print(log)
    if proc.returncode != 0:
        _fail(f'the build failed after {seconds:.1f} s (output above)')
    return log, seconds

def _check_entry_points(log):
    entry = re.search(r'^ENTRY_POINTS=(.*)$', log, re.MULTILINE)
    found = set(entry.group(1).split(',')) if entry else set()
    missing = [name for name in ENTRY_POINTS if name not in found]
    if missing:
        _fail(f'the plugin lacks the entry points {missing}')
    bad = re.findall(r'^SIGNATURE_FAIL=(.*)$', log, re.MULTILINE)
    ok = re.findall(r'^SIGNATURE_OK=(\w+)', log, re.MULTILINE)
    if bad or sorted(ok) != sorted(ENTRY_POINTS):
        _fail('entry points do not take the argument lists of docs/kernels.md: ' + '; '.join(bad or ok))

def main(argv=None):
    parser = argparse.ArgumentParser(description='Compile the CUDA kernels with nvcc (no GPU needed).')
    parser.add_argument('--force', action='store_true', help='Delete the cached build and compile from scratch.')
    parser.add_argument('--verbose', action='store_true', help='Print the full compiler output.')
    args = parser.parse_args(argv)
    _check_environment()
    build_dir = _build_dir()
    stamp = os.path.join(build_dir, STAMP_NAME)
    if args.force and os.path.isdir(build_dir):
        shutil.rmtree(build_dir)

    # Cache hit: this exact source tree (the directory name) already compiled cleanly with these flags;
    # the build below is then a ninja no-op plus the import and signature checks (a few seconds).
    record = _read_stamp(stamp)
    cached = record is not None and record.get('flags') == _flags()
    print(f'compile_check: {"checking the cached build" if cached else "building"} {build_dir} ...', flush=True)
    log, seconds = _run_build(args.verbose)
    _check_entry_points(log)
    if cached:
        print(f'compile_check: OK (cached): passed on {record["date"]}, compiled in {record["seconds"]:.1f} s; '
              f'archs {",".join(record["archs"])}; entry points and signatures checked in {seconds:.1f} s')
        return 0
    bad = unjustified_warnings(log)
    if bad:
        shutil.rmtree(build_dir, ignore_errors=True) # Otherwise ninja's up-to-date objects would hide them next time.
        _fail('unjustified warnings (add a fix, or a pattern with its reason to JUSTIFIED_WARNINGS):\n  ' + '\n  '.join(bad))
    archs, want = archs_in_build_file(build_dir), expected_archs(os.environ['TORCH_CUDA_ARCH_LIST'])
    if archs != want:
        _fail(f'nvcc targets {archs}, expected {want} from TORCH_CUDA_ARCH_LIST')
    record = dict(date=datetime.datetime.now().isoformat(timespec='seconds'), seconds=round(seconds, 1), archs=archs,
                  flags=_flags(),
                  justified=[line.strip() for line in log.splitlines() if re.search('warning', line, re.IGNORECASE)])
    dnnlib.atomic_write(stamp, lambda f: json.dump(record, f, indent=2), mode='w')
    print(f'compile_check: OK: compiled in {seconds:.1f} s for archs {",".join(archs)}; no unjustified warnings')
    return 0

#----------------------------------------------------------------------------

if __name__ == '__main__':
    sys.exit(main())

#----------------------------------------------------------------------------
