# The web app (Flask): reader page /r/<token>, coordinator page /c/<token>, and the JSON API they use
# (documented in docs/turing.md). Every request is checked against a token; images are served by opaque id
# only, to the reader they were shown to; nothing a reader can fetch says whether an image is real, except the
# feedback on practice images, and, once the coordinator has closed the study, the reader's own results.

import json
import os

import flask

from fundus.grades import DESCRIPTIONS, GRADES
from fundus.turing import export, store, study

MAX_BODY_BYTES = 2048   # An answer is < 200 bytes; anything larger is refused with 413 before it is read.
ANSWER_KEYS = {'image_id', 'call', 'confidence', 'grade'}
CALLS = ('real', 'synthetic')

SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    'Referrer-Policy': 'no-referrer',           # Tokens live in URLs: never leak them to another site.
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
}

#----------------------------------------------------------------------------

def _error(status, message):
    response = flask.jsonify(error=message)
    response.status_code = status
    return response

def parse_answer(body):
    """Raw request body -> (image_id, call, confidence, grade); AnswerError(400) on anything malformed."""
    try:
        data = json.loads(body.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        raise store.AnswerError(400, 'the body must be a JSON object') from None
    if not isinstance(data, dict):
        raise store.AnswerError(400, 'the body must be a JSON object')
    extra, missing = set(data) - ANSWER_KEYS, {'image_id', 'call', 'confidence'} - set(data)
    if extra or missing:
        raise store.AnswerError(400, f'unexpected keys {sorted(extra)}' if extra else f'missing keys {sorted(missing)}')
    image_id, call, confidence, grade = data['image_id'], data['call'], data['confidence'], data.get('grade')
    if not isinstance(image_id, str) or not study.IMAGE_ID.match(image_id):
        raise store.AnswerError(400, 'image_id must be the 16-character id given by /next')
    if call not in CALLS:
        raise store.AnswerError(400, 'call must be "real" or "synthetic"')
    if isinstance(confidence, bool) or not isinstance(confidence, int) or not 1 <= confidence <= 5:
        raise store.AnswerError(400, 'confidence must be an integer from 1 to 5')
    if grade is not None and (isinstance(grade, bool) or not isinstance(grade, int) or grade not in GRADES):
        raise store.AnswerError(400, 'grade must be null or an integer from 0 to 4')
    return image_id, call, confidence, grade

#----------------------------------------------------------------------------

def create_app(study_dir):
    """The Flask app for one study folder."""
    db = store.Store(os.path.join(study_dir, 'study.sqlite'))
    image_dir = os.path.abspath(os.path.join(study_dir, 'images'))
    app = flask.Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.json.sort_keys = False

    def reader_or_404(token):
        name = db.reader_for(token) if study.TOKEN.match(token) else None
        if name is None:
            flask.abort(404)
        return name

    def coordinator_or_404(token):
        if not (study.TOKEN.match(token) and db.is_coordinator(token)):
            flask.abort(404)

    _add_reader_routes(app, db, image_dir, reader_or_404)
    _add_coordinator_routes(app, db, study_dir, coordinator_or_404)
    _add_error_handlers(app)

    @app.after_request
    def headers(response):
        response.headers.update(SECURITY_HEADERS)
        return response
    return app

#----------------------------------------------------------------------------

def _add_reader_routes(app, db, image_dir, reader_or_404):
    @app.get('/r/<token>')
    def reader_page(token):
        reader_or_404(token)
        grades = [(g, f'DR{g}: {DESCRIPTIONS[g]}') for g in GRADES]
        return flask.render_template('reader.html', grades=grades)

    @app.get('/api/r/<token>/next')
    def next_image(token):
        reader = reader_or_404(token)
        if db.is_closed():
            return flask.jsonify(done=True, closed=True)
        item = db.next_item(reader)
        if item is None:
            return flask.jsonify(done=True)
        url = flask.url_for('image', token=token, image_id=item['image_id'])
        return flask.jsonify(image_id=item['image_id'], image_url=url, position=item['position'],
                             total=item['total'], practice=item['practice'])

    @app.post('/api/r/<token>/answer')
    def answer(token):
        reader = reader_or_404(token)
        try:
            trial = db.record_answer(reader, *parse_answer(flask.request.get_data(cache=False)))
        except store.AnswerError as e:
            return _error(e.status, str(e))
        reply = dict(ok=True, **db.progress(reader))
        if trial['practice']:
            reply.update(truth=trial['truth'], correct=trial['call'] == trial['truth'])
        return flask.jsonify(reply)

    @app.get('/api/r/<token>/progress')
    def progress(token):
        return flask.jsonify(db.progress(reader_or_404(token)))

    @app.get('/api/r/<token>/results')
    def own_results(token):
        reader = reader_or_404(token)
        if not db.is_closed():
            return _error(403, 'results are shown once the coordinator has closed the study')
        return flask.jsonify(trials=db.own_results(reader))

    @app.get('/api/r/<token>/image/<image_id>')
    def image(token, image_id):
        reader = reader_or_404(token)
        if not study.IMAGE_ID.match(image_id):
            return _error(400, 'malformed image id')
        if not db.can_view(reader, image_id):
            return _error(404, 'unknown image')
        with open(os.path.join(image_dir, f'{image_id}.png'), 'rb') as f:
            data = f.read()
        # Plain bytes: no Last-Modified or ETag, which would carry the file's write time (and so its place in
        # the order the study was written in) to the reader.
        return flask.Response(data, mimetype='image/png')

#----------------------------------------------------------------------------

def _add_coordinator_routes(app, db, study_dir, coordinator_or_404):
    @app.get('/c/<token>')
    def coordinator_page(token):
        coordinator_or_404(token)
        return flask.render_template('coordinator.html')

    @app.get('/api/c/<token>/progress')
    def all_progress(token):
        coordinator_or_404(token)
        return flask.jsonify(readers=db.all_progress(), closed=db.is_closed())

    @app.post('/api/c/<token>/close')
    def close(token):
        coordinator_or_404(token)
        db.close()
        return flask.jsonify(ok=True, closed=True)

    @app.get('/api/c/<token>/results.csv')
    def results(token):
        coordinator_or_404(token)
        response = flask.Response(export.trials_csv(study_dir), mimetype='text/csv')
        response.headers['Content-Disposition'] = 'attachment; filename="trials.csv"'
        return response

#----------------------------------------------------------------------------

def _add_error_handlers(app):
    messages = {400: 'bad request', 404: 'not found (unknown link or resource)', 405: 'method not allowed',
                413: f'request body too large (limit {MAX_BODY_BYTES} bytes)'}
    for status, message in messages.items():
        app.register_error_handler(status, lambda e, m=message, s=status: _error(s, m))

#----------------------------------------------------------------------------
