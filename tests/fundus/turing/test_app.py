# fundus.turing.app: the JSON API and pages through Flask's test client: shapes, one trial per answer, and
# the security and bad-input rules (each refusal is a clear 4xx that changes nothing).

import json
import os

import pytest

from fundus.turing import app as app_module
from fundus.turing import store

from .support import make_study

#----------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path):
    out, links = make_study(tmp_path, readers=('alice', 'bob'), count=6, practice=2)
    client = app_module.create_app(out).test_client()
    return out, links, client

def _trials(out):
    return store.load_tables(os.path.join(out, 'study.sqlite'))[3]

def _answer(client, token, image_id, call='real', confidence=3, grade=None):
    return client.post(f'/api/r/{token}/answer', json=dict(image_id=image_id, call=call, confidence=confidence, grade=grade))

#----------------------------------------------------------------------------

def test_next_answer_progress_shapes_and_practice_feedback(env):
    out, links, client = env
    token = links['readers']['alice']
    first = client.get(f'/api/r/{token}/next').get_json()
    assert list(first) == ['image_id', 'image_url', 'position', 'total', 'practice']
    assert first['position'] == 1 and first['total'] == 8 and first['practice'] is True
    assert first['image_url'] == f'/api/r/{token}/image/{first["image_id"]}'
    assert client.get(f'/api/r/{token}/next').get_json() == first        # A reload shows the same image.
    image = client.get(first['image_url'])
    assert image.status_code == 200 and image.mimetype == 'image/png' and image.data[:4] == b'\x89PNG'
    assert 'Last-Modified' not in image.headers and 'ETag' not in image.headers   # No write-order clue.
    reply = _answer(client, token, first['image_id'], 'synthetic', 4, 2).get_json()
    assert reply['ok'] and reply['answered'] == 1 and reply['total'] == 8
    assert reply['truth'] in ('real', 'synthetic') and reply['correct'] == (reply['truth'] == 'synthetic')
    assert client.get(f'/api/r/{token}/progress').get_json() == {'answered': 1, 'total': 8}
    trial = _trials(out)[0]
    assert (trial['reader'], trial['image_id'], trial['call'], trial['confidence'], trial['grade'], trial['position'],
            trial['practice'], trial['truth']) == ('alice', first['image_id'], 'synthetic', 4, 2, 1, 1, reply['truth'])
    assert trial['response_ms'] >= 0

def test_test_answers_reveal_nothing_until_closed_and_done_at_the_end(env):
    out, links, client = env
    token = links['readers']['alice']
    for _ in range(8):
        item = client.get(f'/api/r/{token}/next').get_json()
        reply = _answer(client, token, item['image_id']).get_json()
        assert ('truth' in reply) == item['practice'] and ('correct' in reply) == item['practice']
    assert client.get(f'/api/r/{token}/next').get_json() == {'done': True}
    assert client.get(f'/api/r/{token}/results').status_code == 403
    coordinator = links['coordinator']
    assert client.post(f'/api/c/{coordinator}/close').get_json() == {'ok': True, 'closed': True}
    results = client.get(f'/api/r/{token}/results').get_json()['trials']
    assert len(results) == 6 and all(r['correct'] == (r['truth'] == 'real') for r in results)

def test_coordinator_progress_close_and_download(env):
    out, links, client = env
    coordinator, token = links['coordinator'], links['readers']['bob']
    item = client.get(f'/api/r/{token}/next').get_json()
    _answer(client, token, item['image_id'])
    progress = client.get(f'/api/c/{coordinator}/progress').get_json()
    assert progress == {'readers': {'alice': {'answered': 0, 'total': 8}, 'bob': {'answered': 1, 'total': 8}}, 'closed': False}
    csv_text = client.get(f'/api/c/{coordinator}/results.csv').get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith('reader,image_id,position') and len(csv_text.splitlines()) == 2
    assert client.get(f'/c/{coordinator}').status_code == 200
    shown = client.get(f'/api/r/{token}/next').get_json()
    client.post(f'/api/c/{coordinator}/close')
    assert client.get(f'/api/r/{token}/next').get_json() == {'done': True, 'closed': True}
    r = _answer(client, token, shown['image_id'])
    assert r.status_code == 409 and 'closed' in r.get_json()['error'] and len(_trials(out)) == 1

#----------------------------------------------------------------------------

def test_refusals_are_clear_4xx_and_change_nothing(env):
    out, links, client = env
    token = links['readers']['alice']
    item = client.get(f'/api/r/{token}/next').get_json()
    url = f'/api/r/{token}/answer'
    good = dict(image_id=item['image_id'], call='real', confidence=3, grade=None)
    cases = [
        (400, dict(good, confidence=0)), (400, dict(good, confidence=6)), (400, dict(good, confidence=True)),
        (400, dict(good, confidence=2.5)), (400, dict(good, confidence='3')), (400, dict(good, call='fake')),
        (400, dict(good, grade=5)), (400, dict(good, grade='DR1')), (400, dict(good, extra=1)),
        (400, {k: v for k, v in good.items() if k != 'call'}), (400, dict(good, image_id='../study.sqlite')),
        (400, [good]), (404, dict(good, image_id='0123456789abcdef')),
    ]
    for status, body in cases:
        r = client.post(url, data=json.dumps(body), content_type='application/json')
        assert r.status_code == status, body
        assert isinstance(r.get_json()['error'], str) and r.get_json()['error']
    assert client.post(url, data=b'{"image_id": ', content_type='application/json').status_code == 400
    assert client.post(url, data=b'\xff\xfe', content_type='application/json').status_code == 400
    big = client.post(url, data=b'{"x": "' + b'a' * 5000 + b'"}', content_type='application/json')
    assert big.status_code == 413 and 'too large' in big.get_json()['error']
    assert client.get(url).status_code == 405
    assert _trials(out) == []
    assert _answer(client, token, item['image_id']).status_code == 200
    again = _answer(client, token, item['image_id'], call='synthetic')
    assert again.status_code == 409 and 'already answered' in again.get_json()['error']
    assert len(_trials(out)) == 1 and _trials(out)[0]['call'] == 'real'

def test_an_image_not_yet_shown_cannot_be_answered_or_fetched(env):
    out, links, client = env
    token = links['readers']['alice']
    _meta, _images, assignments, _ = store.load_tables(os.path.join(out, 'study.sqlite'))
    later = [a['image_id'] for a in assignments if a['reader'] == 'alice'][3]
    r = _answer(client, token, later)
    assert r.status_code == 409 and 'not been shown' in r.get_json()['error']
    assert client.get(f'/api/r/{token}/image/{later}').status_code == 404
    assert _trials(out) == []

def test_readers_are_isolated_and_tokens_checked(env):
    out, links, client = env
    alice, bob, coordinator = links['readers']['alice'], links['readers']['bob'], links['coordinator']
    item = client.get(f'/api/r/{alice}/next').get_json()
    _answer(client, alice, item['image_id'])
    # Bob cannot see Alice's image (he has not been shown it) nor answer it for her; his progress is his own.
    assert client.get(f'/api/r/{bob}/image/{item["image_id"]}').status_code == 404
    assert client.get(f'/api/r/{bob}/progress').get_json()['answered'] == 0
    for bad in ('x' * 22, alice[:-1] + ('A' if alice[-1] != 'A' else 'B'), coordinator, '..', 'a/../b'):
        assert client.get(f'/api/r/{bad}/next').status_code == 404
        assert client.get(f'/r/{bad}').status_code == 404
    assert client.get(f'/c/{alice}').status_code == 404 and client.post(f'/api/c/{alice}/close').status_code == 404
    assert client.get(f'/api/r/{alice}/image/..%2F..%2Fstudy.sqlite').status_code in (400, 404)
    assert client.get(f'/api/r/{alice}/image/../../study.sqlite').status_code in (400, 404)
    assert len(_trials(out)) == 1

def test_pages_are_self_contained_and_say_nothing_about_truth(env):
    out, links, client = env
    token = links['readers']['alice']
    page = client.get(f'/r/{token}')
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'http://' not in html and 'https://' not in html   # No CDN: works offline.
    assert 'Content-Security-Policy' in page.headers and page.headers['Referrer-Policy'] == 'no-referrer'
    assert page.headers['Cache-Control'] == 'no-store'
    for asset in ('/static/reader.js', '/static/turing.css', '/static/coordinator.js'):
        assert client.get(asset).status_code == 200
    item = client.get(f'/api/r/{token}/next').get_json()
    _meta, images, _, _ = store.load_tables(os.path.join(out, 'study.sqlite'))
    assert images[item['image_id']]['truth'] not in json.dumps(item)

#----------------------------------------------------------------------------
