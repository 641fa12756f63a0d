# The real server (waitress, subprocess on 127.0.0.1): an acknowledged answer survives SIGKILL and restart,
# and the reader continues where they stopped. The CLI subcommands through click's runner.

import json
import os

from click.testing import CliRunner

from fundus.turing import store
from fundus.turing.__main__ import main
from fundus.turing.local_server import LocalServer

from .support import http, make_study, write_source

#----------------------------------------------------------------------------

def test_acknowledged_answers_survive_sigkill_and_restart(tmp_path):
    out, links = make_study(tmp_path, readers=('alice',), count=6, practice=0)
    token = links['readers']['alice']
    server = LocalServer(out)
    try:
        acked = []
        for _ in range(3):
            _, item = http(server.base, f'/api/r/{token}/next')
            status, reply = http(server.base, f'/api/r/{token}/answer', dict(image_id=item['image_id'], call='real', confidence=2))
            assert status == 200 and reply['ok']
            acked.append(item['image_id'])
        _, shown = http(server.base, f'/api/r/{token}/next')          # Shown, not answered, when the server dies.
    finally:
        server.kill()
    trials = store.load_tables(os.path.join(out, 'study.sqlite'))[3]
    assert [t['image_id'] for t in trials] == acked
    server = LocalServer(out, port=server.port)
    try:
        status, item = http(server.base, f'/api/r/{token}/next')
        assert status == 200 and item['position'] == 4 and item['image_id'] == shown['image_id']
        assert http(server.base, f'/api/r/{token}/progress')[1] == {'answered': 3, 'total': 6}
        status, reply = http(server.base, f'/api/r/{token}/answer', dict(image_id=acked[0], call='real', confidence=2))
        assert status == 409
    finally:
        server.kill()

#----------------------------------------------------------------------------

def test_cli_create_analyze_export(tmp_path):
    real = write_source(str(tmp_path / 'real'), 'real', 6, grades=(0, 1))
    synth = write_source(str(tmp_path / 'synth'), 'synth', 6, grades=(0, 1))
    runner = CliRunner()
    out = str(tmp_path / 'study')
    r = runner.invoke(main, ['create', f'--real={real}', f'--synthetic={synth}', '--readers=ann,ben', f'--out={out}',
                             '--count=4', '--practice=2'])
    assert r.exit_code == 0, r.output
    links = json.load(open(os.path.join(out, 'links.json')))
    assert f'/r/{links["readers"]["ann"]}' in r.output and f'/c/{links["coordinator"]}' in r.output
    again = runner.invoke(main, ['create', f'--real={real}', f'--synthetic={synth}', '--readers=ann', f'--out={out}', '--count=4'])
    assert again.exit_code == 1 and 'Error: --out=' in again.output and 'refusing to overwrite' in again.output
    r = runner.invoke(main, ['analyze', out, f'--out={tmp_path / "a"}'])
    assert r.exit_code == 1 and 'no test answers yet' in r.output
    r = runner.invoke(main, ['export', out, '--format=csv', f'--out={tmp_path / "t.csv"}'])
    assert r.exit_code == 0 and open(tmp_path / 't.csv').read().startswith('reader,image_id')
    for command in ('create', 'serve', 'analyze', 'export'):
        r = runner.invoke(main, [command, '--help'])
        assert r.exit_code == 0 and 'Usage:' in r.output

#----------------------------------------------------------------------------
