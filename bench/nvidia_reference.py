# Time NVIDIA's own generator on this machine, from a local checkout of NVlabs/stylegan3 that the user
# provides (their reference ops on the CPU). bench/networks.py --nvidia=PATH runs this file in a
# subprocess, so that their `training`, `torch_utils` and `dnnlib` packages never meet ours; it saves
# the weights, latents, images, times, CPU times and peak RSS for the parent to compare against our
# generator, and a network pickle written by their own code (their source embedded) for our importer
# to read. With "train" in the spec it also times G forward+backward, G(z, c).square().mean().backward().
# Nothing of NVIDIA's is in this repository.
#
#     python bench/nvidia_reference.py PATH SPEC_JSON OUT_PT OUT_PKL

import json
import os
import pickle
import resource
import sys
import time
import types

def _stand_in_for_unused_imports():
    # Their dnnlib imports requests (for downloads) and conv2d_gradfix imports pkg_resources (gone from
    # recent setuptools); neither is used on this path, so empty stand-ins are enough.
    try:
        import requests # pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        sys.modules['requests'] = types.ModuleType('requests')
    try:
        import pkg_resources # pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        from packaging.version import parse # pylint: disable=import-outside-toplevel
        sys.modules['pkg_resources'] = types.SimpleNamespace(parse_version=parse)

def checkout_problem(repo, modules):
    """Why `repo` is not a usable NVlabs/stylegan3 checkout for these training/ modules, or None."""
    for module in modules:
        if not os.path.isfile(os.path.join(os.path.expanduser(repo), 'training', f'{module}.py')):
            return f'{repo} is not a checkout of NVlabs/stylegan3 (no training/{module}.py in it)'
    return None

def _peak_rss_gb(reset=False):
    # This process's resident high-water mark (VmHWM; Linux), as bench/networks.py reads it (this process
    # must not import our packages); reset=True first clears it through /proc/self/clear_refs.
    try:
        if reset:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        with open('/proc/self/status') as f:
            return next(int(line.split()[1]) / 2**20 for line in f if line.startswith('VmHWM:')) # kB -> GB.
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def _measure(fn, warmup, reps):
    # Wall and CPU seconds of each timed fn() after `warmup` untimed ones, and the peak RSS over all.
    _peak_rss_gb(reset=True)
    times, cpu = [], []
    for i in range(warmup + reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return dict(times=times, cpu=cpu, peak_gb=_peak_rss_gb())

def main():
    repo, spec, out_path, pkl_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    sys.path.insert(0, repo)
    _stand_in_for_unused_imports()
    import importlib # pylint: disable=import-outside-toplevel
    import torch # pylint: disable=import-outside-toplevel
    networks = importlib.import_module(f"training.{spec['module']}")
    torch.set_num_threads(spec['threads'])
    torch.manual_seed(spec['seed'])
    G = networks.Generator(**spec['kwargs']).eval()
    z = torch.randn([spec['batch'], G.z_dim], generator=torch.Generator().manual_seed(spec['seed']))
    out = dict(z=z)
    def forward():
        with torch.no_grad():
            out['img'] = G(z, None, noise_mode='const')
    out['forward'] = _measure(forward, spec['warmup'], spec['reps'])
    if spec['train']:
        out['train'] = _measure(lambda: G(z, None).square().mean().backward(), spec['warmup'], spec['reps'])
        G.zero_grad(set_to_none=True)
    torch.save(dict(out, state=G.state_dict()), out_path)
    with open(pkl_path, 'wb') as f:
        pickle.dump(dict(G_ema=G), f) # Their persistent classes: records with source, as in their snapshots.

if __name__ == '__main__':
    main()
