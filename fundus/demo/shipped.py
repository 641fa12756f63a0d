# The pretrained phantom model shipped with the project, when one is in the box: MODEL_DIR/manifest.json
# names the generator pickle and its SHA-256; the file is checked against it and loaded through our safe
# loader (torch_utils.persistence), like any snapshot. Without a manifest the demo evaluates the network it
# trained in stage 2.
#
# manifest.json: {"generator": {"file": "phantom-G.pkl", "sha256": "<64 hex digits>"}, ...}

import hashlib
import json
import os

from torch_utils import persistence

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'model')
MANIFEST = 'manifest.json'
NO_MODEL = 'no shipped model: using the model trained in stage 2'

#----------------------------------------------------------------------------

class ShippedModelError(ValueError):
    """The shipped model's manifest or file is wrong (missing file, bad JSON, hash mismatch)."""

def sha256_of(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()

def read_manifest(model_dir=MODEL_DIR):
    """The manifest dict, or None when the box holds no shipped model."""
    path = os.path.join(model_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
        entry = manifest['generator']
        str(entry['file']), str(entry['sha256'])
    except (ValueError, KeyError, TypeError) as e:
        raise ShippedModelError(f'{path}: not a valid manifest (needs generator.file and generator.sha256): {e}') from None
    return manifest

def generator_path(model_dir=MODEL_DIR):
    """Path of the shipped generator pickle after its hash check, or None when there is no shipped model."""
    manifest = read_manifest(model_dir)
    if manifest is None:
        return None
    entry = manifest['generator']
    path = os.path.join(model_dir, entry['file'])
    if not os.path.isfile(path):
        raise ShippedModelError(f'{os.path.join(model_dir, MANIFEST)} names {entry["file"]}, which is not in {model_dir}')
    got = sha256_of(path)
    if got != entry['sha256'].lower():
        raise ShippedModelError(f'{path}: SHA-256 {got} does not match the manifest ({entry["sha256"]}); the file is damaged or not the shipped one')
    data = persistence.load_network_pkl(path)
    if not isinstance(data, dict) or data.get('G_ema') is None:
        raise ShippedModelError(f'{path}: holds no G_ema generator')
    return path

#----------------------------------------------------------------------------
