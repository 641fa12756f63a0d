# Time NVIDIA's own generator on this machine, from a local checkout of NVlabs/stylegan3 that the user
# provides (their reference ops on the CPU). bench/networks.py --nvidia=PATH runs this file in a
# subprocess, so that their `training`, `torch_utils` and `dnnlib` packages never meet ours; it saves
# the weights, latents, images and times for the parent to compare against our generator, and a
# network pickle written by their own code (their source embedded) for our importer to read.
# Nothing of NVIDIA's is in this repository.
#
#     python bench/nvidia_reference.py PATH SPEC_JSON OUT_PT OUT_PKL

import json
import pickle
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
    times = []
    with torch.no_grad():
        for i in range(spec['warmup'] + spec['reps']):
            t0 = time.perf_counter()
            img = G(z, None, noise_mode='const')
            if i >= spec['warmup']:
                times.append(time.perf_counter() - t0)
    torch.save(dict(state=G.state_dict(), z=z, img=img, times=times), out_path)
    with open(pkl_path, 'wb') as f:
        pickle.dump(dict(G_ema=G), f) # Their persistent classes: records with source, as in their snapshots.

if __name__ == '__main__':
    main()
