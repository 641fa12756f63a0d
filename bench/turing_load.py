# Load test of the reader-study server: N simulated readers answer concurrently against the real server
# (waitress, subprocess, 127.0.0.1 only) for at most --seconds (capped at 30), then stop by themselves.
# Checks that no acknowledged answer is lost or duplicated; prints one JSON object with answer latencies.
# Numbers go to docs/benchmarks.md ("Reader study").
#
#   python bench/turing_load.py --readers=20 --seconds=30 --images=200

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import click
import numpy as np
import PIL.Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fundus.turing import store, study                             # noqa: E402
from fundus.turing.local_server import LocalServer                 # noqa: E402

MAX_SECONDS = 30

#----------------------------------------------------------------------------

def make_sources(root, n, size=64):
    for kind in ('real', 'synthetic'):
        folder = os.path.join(root, kind)
        os.makedirs(folder)
        rng = np.random.default_rng(0 if kind == 'real' else 1)
        for i in range(n):
            PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(os.path.join(folder, f'{i}.png'))
    return os.path.join(root, 'real'), os.path.join(root, 'synthetic')

def _request(conn, method, path, body=None):
    headers = {'Content-Type': 'application/json'} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    return response.status, response.read()

def simulate_reader(port, token, deadline, seed, log):
    """One reader: next -> image -> answer, until the deadline or the end of the study; logs acknowledged answers."""
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        while time.time() < deadline:
            _, body = _request(conn, 'GET', f'/api/r/{token}/next')
            item = json.loads(body)
            if item.get('done'):
                break
            _request(conn, 'GET', item['image_url'])
            answer = dict(image_id=item['image_id'], call=['real', 'synthetic'][int(rng.integers(2))],
                          confidence=int(rng.integers(1, 6)), grade=None)
            t0 = time.perf_counter()
            status, body = _request(conn, 'POST', f'/api/r/{token}/answer', answer)
            latency = time.perf_counter() - t0
            if status == 200:
                log.append((token, item['image_id'], latency))
            else:
                log.append((token, None, f'{status} {body[:80]!r}'))
    finally:
        conn.close()

#----------------------------------------------------------------------------

def check(study_dir, log, links):
    """Compare the database with the acknowledged answers: nothing lost, nothing duplicated."""
    trials = store.load_tables(os.path.join(study_dir, 'study.sqlite'))[3]
    names = {t: r for r, t in links['readers'].items()}
    acked = {(names[tok], img) for tok, img, _ in log if img is not None}
    stored = [(t['reader'], t['image_id']) for t in trials]
    positions_ok = all(sorted(t['position'] for t in trials if t['reader'] == r) ==
                       list(range(1, 1 + sum(t['reader'] == r for t in trials))) for r in links['readers'])
    return dict(acknowledged=len(acked), stored=len(stored), duplicates=len(stored) - len(set(stored)),
                lost=len(acked - set(stored)), unacknowledged_stored=len(set(stored) - acked),
                positions_contiguous=positions_ok, errors=[x for _, img, x in log if img is None][:5])

@click.command()
@click.option('--readers', default=20, show_default=True, type=int, help='Simulated readers answering concurrently')
@click.option('--seconds', default=30, show_default=True, type=float, help=f'Duration (capped at {MAX_SECONDS} s)')
@click.option('--images',  default=200, show_default=True, type=int, help='Test images per reader (even)')
@click.option('--threads', default=8, show_default=True, type=int, help='Server worker threads')
def main(readers, seconds, images, threads):
    """Load test of `python -m fundus.turing serve` on 127.0.0.1."""
    seconds = min(seconds, MAX_SECONDS)
    with tempfile.TemporaryDirectory(prefix='turing-load-') as root:
        real, synth = make_sources(root, images // 2)
        names = [f'reader{i:02d}' for i in range(readers)]
        links = study.create_study(real, synth, names, os.path.join(root, 'study'), count=images, practice=0)
        server = LocalServer(os.path.join(root, 'study'), threads=threads)
        log = []
        try:
            deadline = time.time() + seconds
            t0 = time.time()
            workers = [threading.Thread(target=simulate_reader, args=(server.port, links['readers'][n], deadline, i, log))
                       for i, n in enumerate(names)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.time() - t0
        finally:
            server.kill()
        lat = np.array([x for _, img, x in log if img is not None]) * 1000
        result = dict(readers=readers, seconds=round(elapsed, 1), server_threads=threads, answers=int(lat.size),
                      answers_per_s=round(lat.size / elapsed, 1),
                      p50_ms=round(float(np.percentile(lat, 50)), 1), p99_ms=round(float(np.percentile(lat, 99)), 1),
                      max_ms=round(float(lat.max()), 1), mean_ms=round(statistics.fmean(lat), 1),
                      load_average=[round(x, 2) for x in os.getloadavg()], **check(os.path.join(root, 'study'), log, links))
    print(json.dumps(result, indent=2))

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
