# Framework-free utilities: attribute dicts, class construction by name, and URL/file opening with a cache.

import contextlib
import hashlib
import importlib
import io
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request

#----------------------------------------------------------------------------

class EasyDict(dict):
    """A dict whose items are also attributes: `d.x` is `d['x']`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

#----------------------------------------------------------------------------
# Construction by name. Config trees name classes as strings ('training.networks_stylegan3.Generator');
# only names inside our own tree (and torch.optim) may be constructed, so a config file can never
# import and call arbitrary code.

# Our packages, in layer order (docs/architecture.md): the one list every allow-list and test derives from.
PACKAGES = ('dnnlib', 'torch_utils', 'training', 'metrics', 'fundus')

ALLOWED_NAME_PREFIXES = tuple(p + '.' for p in PACKAGES) + ('torch.optim.',)

def check_name_allowed(name):
    if not isinstance(name, str) or not name.startswith(ALLOWED_NAME_PREFIXES):
        raise ValueError(f'class_name {name!r} is not allowed: names must start with one of {", ".join(ALLOWED_NAME_PREFIXES)}')

def get_obj_by_name(name):
    """Return the object `module.path.attr` named by a dotted string from our allow-listed packages."""
    check_name_allowed(name)
    module_name, _, attr = name.rpartition('.')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ValueError(f'cannot resolve {name!r}: module {module_name!r} not found ({e})') from None
    obj = module
    for part in attr.split('.'):
        if not hasattr(obj, part):
            raise ValueError(f'cannot resolve {name!r}: {module_name!r} has no attribute {part!r}')
        obj = getattr(obj, part)
    return obj

def call_func_by_name(*args, func_name=None, **kwargs):
    if func_name is None:
        raise ValueError('func_name is required')
    func = get_obj_by_name(func_name)
    if not callable(func):
        raise ValueError(f'{func_name!r} is not callable')
    return func(*args, **kwargs)

def construct_class_by_name(*args, class_name=None, **kwargs):
    """Construct `class_name(*args, **kwargs)`; class_name must lie inside our tree (or torch.optim)."""
    if class_name is None:
        raise ValueError('class_name is required')
    cls = get_obj_by_name(class_name)
    if not isinstance(cls, type):
        raise ValueError(f'{class_name!r} is not a class')
    return cls(*args, **kwargs)

#----------------------------------------------------------------------------
# Cache directory and URL opening.

def make_cache_dir_path(*paths):
    """Path under $DNNLIB_CACHE_DIR, or ~/.cache/dnnlib when it is unset."""
    root = os.environ.get('DNNLIB_CACHE_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'dnnlib')
    return os.path.join(root, *paths)

def is_url(obj, allow_file_urls=False):
    if not isinstance(obj, str) or '://' not in obj:
        return False
    scheme = urllib.parse.urlparse(obj).scheme
    return scheme in ('http', 'https') or (allow_file_urls and scheme == 'file')

def url_cache_path(url, cache_dir=None):
    """Where `open_url` keeps (or looks for) the downloaded copy of `url`."""
    cache_dir = cache_dir or make_cache_dir_path('downloads')
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    basename = re.sub(r'[^0-9a-zA-Z._-]', '_', os.path.basename(urllib.parse.urlparse(url).path)) or 'download'
    return os.path.join(cache_dir, f'{url_md5}_{basename}')

def _file_url_to_path(url):
    parsed = urllib.parse.urlparse(url)
    return urllib.request.url2pathname(parsed.path)

def open_url(url, cache_dir=None, num_attempts=2, timeout=10, verbose=True, return_filename=False, cache=True):
    """Open a local path, a file:// URL or an http(s) URL as a binary file object.

    Args:
        url:             Local path, `file://` URL or `http(s)://` URL.
        cache_dir:       Download cache; default `make_cache_dir_path('downloads')`.
        num_attempts:    Download attempts before giving up.
        timeout:         Seconds per network attempt; an unreachable host fails fast.
        verbose:         Print a line while downloading.
        return_filename: Return the local file path instead of an open file (needs `cache=True` for URLs).
        cache:           Keep downloads in the cache and reuse them.

    Returns:
        A binary file object, or its path when `return_filename=True`.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f'open_url: expected a path or URL, got {url!r}')

    # Local files.
    if not is_url(url, allow_file_urls=True):
        if not os.path.isfile(url):
            raise FileNotFoundError(f'{url}: no such file')
        return url if return_filename else open(url, 'rb')
    if url.startswith('file://'):
        path = _file_url_to_path(url)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{url}: no such file ({path})')
        return path if return_filename else open(path, 'rb')

    # Cached download.
    if return_filename and not cache:
        raise ValueError('open_url: return_filename=True needs cache=True for URLs')
    cache_path = url_cache_path(url, cache_dir)
    if cache and os.path.isfile(cache_path):
        return cache_path if return_filename else open(cache_path, 'rb')

    # Download, failing fast without a network.
    data = _download(url, num_attempts=num_attempts, timeout=timeout, verbose=verbose, cache_path=cache_path)
    if cache:
        atomic_write(cache_path, lambda f: f.write(data))
        return cache_path if return_filename else open(cache_path, 'rb')
    return io.BytesIO(data)

def _download(url, num_attempts, timeout, verbose, cache_path):
    last_error = None
    for _attempt in range(max(num_attempts, 1)):
        try:
            if verbose:
                print(f'Downloading {url} ...', flush=True)
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            last_error = e
            if 400 <= e.code < 500:
                break
        except (urllib.error.URLError, OSError) as e:
            last_error = e
            break # No network: retrying will not help.
    raise OSError(
        f'cannot download {url}: {last_error}.\n'
        f'This machine may have no internet access. Download the file elsewhere and either pass its local path '
        f'instead of the URL, or copy it to {cache_path} (the cache; set DNNLIB_CACHE_DIR to move it).'
    )

#----------------------------------------------------------------------------
# Small formatting helpers used by the CLIs and the training loop.

def format_time(seconds):
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m'

def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

def atomic_write(path, writer, mode='wb'):
    """Write a file through a temp file in the same folder and an atomic rename.

    `writer(f)` receives the open temp file. A crash leaves the old file (or no file), never a truncated one.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())

@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temp file name (same folder; extension `suffix`, default path's) for writers that need a path,
    not a file object (e.g. a video encoder); renamed over `path` when the block ends without an error, else removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.tmp-', suffix=os.path.splitext(path)[1] if suffix is None else suffix)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask()) # mkstemp makes 0600 files; give the usual permissions.
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise

#----------------------------------------------------------------------------
