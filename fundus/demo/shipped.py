# The pretrained phantom model shipped with the project, when one is in the box: MODEL_DIR/manifest.json
# names the generator pickle (G_ema only) and the encoder snapshot, each with its SHA-256; a file is
# checked against it here and then read by the usual loaders through our safe loader
# (torch_utils.persistence), like any snapshot.
# Without a manifest the demo evaluates the network it trained in stage 2.
#
# manifest.json: {"generator": {"file": "phantom-G.pkl", "sha256": "<64 hex digits>"},
#                 "encoder":   {"file": "phantom-E.pkl", "sha256": "..."},      (optional)
#                 "provenance": {...}}                                         (what pack_model was given)
#
# pack_model() writes such a folder from a training snapshot and an encoder snapshot (docs/model-card.md).

import hashlib
import json
import os

import torch

import dnnlib
from fundus.fundusgan import common
from torch_utils import persistence

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'model')
MANIFEST = 'manifest.json'
GENERATOR_FILE = 'phantom-G.pkl'
ENCODER_FILE = 'phantom-E.pkl'
NO_MODEL = 'no shipped model: using the model trained in stage 2'

#----------------------------------------------------------------------------

class ShippedModelError(ValueError):
    """The shipped model's manifest or file is wrong (missing file, bad JSON, hash mismatch), or pack_model()
    was given snapshots that do not belong together. (Unreadable snapshots: fundus.fundusgan's FundusGANError.)"""

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
        for key in ('generator',) + (('encoder',) if 'encoder' in manifest else ()):
            str(manifest[key]['file']), str(manifest[key]['sha256'])
    except (ValueError, KeyError, TypeError) as e:
        raise ShippedModelError(f'{path}: not a valid manifest (needs generator.file and generator.sha256): {e}') from None
    return manifest

def checked_file(model_dir, key):
    """Path of the manifest's `key` file ('generator' / 'encoder') after its hash check; None when not shipped."""
    manifest = read_manifest(model_dir)
    if manifest is None or key not in manifest:
        return None
    entry = manifest[key]
    path = os.path.join(model_dir, entry['file'])
    if not os.path.isfile(path):
        raise ShippedModelError(f'{os.path.join(model_dir, MANIFEST)} names {entry["file"]}, which is not in {model_dir}')
    got = sha256_of(path)
    if got != entry['sha256'].lower():
        raise ShippedModelError(f'{path}: SHA-256 {got} does not match the manifest ({entry["sha256"]}); the file is damaged or not the shipped one')
    return path

# Only the hashes are checked here: a file that matches the manifest is the one pack_model() wrote after
# checking its contents, and the loaders that read it (training.generate, fundus.fundusgan.invert) check
# them again with their own errors.

def generator_path(model_dir=MODEL_DIR):
    """Path of the shipped generator pickle after its hash check, or None when there is no shipped model."""
    return checked_file(model_dir, 'generator')

def encoder_path(model_dir=MODEL_DIR):
    """Path of the shipped encoder snapshot after its hash check, or None when none is shipped."""
    return checked_file(model_dir, 'encoder')

#----------------------------------------------------------------------------
# Packing: G_ema alone (the discriminator, the training G and the augment pipe stay behind) and the encoder
# snapshot, which must have been trained against that very G_ema.

def same_weights(a, b):
    """True when two modules hold the same parameters and buffers (names, shapes and values)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)

def pack_model(network_pkl, encoder_pkl, out_dir, provenance=None):
    """Write out_dir/{phantom-G.pkl, phantom-E.pkl, manifest.json}. Returns the manifest dict."""
    data = common.load_snapshot(network_pkl, '--network')
    G_ema = data.get('G_ema')
    if G_ema is None:
        raise ShippedModelError(f'--network={network_pkl}: holds no G_ema (a network-snapshot-*.pkl of train.py?)')
    enc = common.load_snapshot(encoder_pkl, '--encoder') if encoder_pkl else None
    if enc is not None and (enc.get('E') is None or enc.get('G') is None):
        raise ShippedModelError(f'--encoder={encoder_pkl}: not an encoder snapshot (no E and G)')
    if enc is not None and enc.get('fundusgan', {}).get('arch') == 'psp' and not same_weights(enc['G'], G_ema):
        raise ShippedModelError(f'--encoder={encoder_pkl}: was trained against another generator than {network_pkl}\'s G_ema')
    if enc is not None and isinstance(enc.get('training_set_kwargs'), dict): # No local paths in the box.
        enc['training_set_kwargs']['path'] = os.path.basename(str(enc['training_set_kwargs'].get('path')))
    os.makedirs(out_dir, exist_ok=True)
    persistence.save_network_pkl(os.path.join(out_dir, GENERATOR_FILE), dict(G_ema=G_ema))
    manifest = dict(generator=dict(file=GENERATOR_FILE, sha256=sha256_of(os.path.join(out_dir, GENERATOR_FILE))))
    if enc is not None:
        persistence.save_network_pkl(os.path.join(out_dir, ENCODER_FILE), enc)
        manifest['encoder'] = dict(file=ENCODER_FILE, sha256=sha256_of(os.path.join(out_dir, ENCODER_FILE)))
    manifest['provenance'] = dict(provenance or {}, network=os.path.basename(network_pkl),
                                  encoder=os.path.basename(encoder_pkl) if encoder_pkl else None)
    text = json.dumps(manifest, indent=2) + '\n'
    dnnlib.atomic_write(os.path.join(out_dir, MANIFEST), lambda f: f.write(text), mode='w')
    return manifest

#----------------------------------------------------------------------------
