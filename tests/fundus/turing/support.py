# Shared helpers of the reader-study tests: small image sources on disk and a study built from them.

import json
import os
import zipfile

import numpy as np
import PIL.Image
import PIL.PngImagePlugin

from fundus.turing import study

#----------------------------------------------------------------------------

def write_source(folder, prefix, n, size=24, grades=None, seed=0):
    """n random PNGs named <prefix>_<i>.png (with a text chunk to be stripped), optional dataset.json grades."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text('Source', f'{prefix} camera')
    labels = []
    for i in range(n):
        name = f'{prefix}_{i:03d}.png'
        PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(os.path.join(folder, name), pnginfo=info)
        if grades is not None:
            labels.append([name, int(grades[i % len(grades)])])
    if grades is not None:
        with open(os.path.join(folder, 'dataset.json'), 'w') as f:
            json.dump({'labels': labels}, f)
    return folder

def zip_folder(folder, path):
    with zipfile.ZipFile(path, 'w') as z:
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), name)
    return path

def make_study(tmp_path, readers=('alice', 'bob'), count=8, practice=2, n=12, grades=(0, 1, 2), **kwargs):
    """A study folder with `count` test and `practice` practice images; returns (study_dir, links)."""
    real = write_source(str(tmp_path / 'real'), 'real', n, grades=grades, seed=1)
    synth = write_source(str(tmp_path / 'synth'), 'synth', n, grades=grades, seed=2)
    out = str(tmp_path / 'study')
    links = study.create_study(real, synth, list(readers), out, count=count, practice=practice, **kwargs)
    return out, links

#----------------------------------------------------------------------------

def answer_all(out, reader, decide, limit=None):
    """Answer a reader's images through the store, in order: decide(truth, position) -> (call, confidence)."""
    from fundus.turing import store
    db = store.Store(os.path.join(out, 'study.sqlite'))
    truth = {im['id']: im['truth'] for im in store.load_tables(os.path.join(out, 'study.sqlite'))[1].values()}
    done = 0
    while limit is None or done < limit:
        item = db.next_item(reader)
        if item is None:
            break
        call, confidence = decide(truth[item['image_id']], item['position'])
        db.record_answer(reader, item['image_id'], call, confidence, None)
        done += 1
    return done

#----------------------------------------------------------------------------

def http(base, path, body=None):
    """(status, parsed JSON) of a GET, or of a POST when body is given."""
    import urllib.error
    import urllib.request
    data = None if body is None else json.dumps(body).encode('utf-8')
    req = urllib.request.Request(base + path, data=data, headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())

#----------------------------------------------------------------------------
