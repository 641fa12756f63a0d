# The study database: one SQLite file in WAL mode. Every answer is one IMMEDIATE transaction that checks and
# writes together, committed (synchronous=FULL) before the browser is told "ok"; so an acknowledged answer
# survives a kill -9 of the server, and two concurrent requests cannot both record the same trial.
#
# Tables: meta (key/value study settings), images (opaque id -> truth, grade, source file), readers
# (name -> token hash), assignments (reader's sequence: position -> image, practice flag, last shown time),
# trials (one row per answered assignment).

import hashlib
import hmac
import json
import os
import sqlite3
import time

#----------------------------------------------------------------------------

class TuringError(ValueError):
    """Bad input for a reader study (options, files, requests); the message is one line for the user."""

class AnswerError(TuringError):
    """An answer the store refuses; `status` is the HTTP status the web app returns."""
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status

#----------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE meta        (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images      (id TEXT PRIMARY KEY, truth TEXT NOT NULL CHECK (truth IN ('real', 'synthetic')),
                          grade INTEGER, source TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('test', 'practice')),
                          grp INTEGER NOT NULL, idx INTEGER NOT NULL UNIQUE);
CREATE TABLE readers     (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE);
CREATE TABLE assignments (reader TEXT NOT NULL REFERENCES readers(name), position INTEGER NOT NULL,
                          image_id TEXT NOT NULL REFERENCES images(id), practice INTEGER NOT NULL,
                          shown_at REAL, PRIMARY KEY (reader, position), UNIQUE (reader, image_id));
CREATE TABLE trials      (reader TEXT NOT NULL, image_id TEXT NOT NULL, position INTEGER NOT NULL,
                          practice INTEGER NOT NULL, truth TEXT NOT NULL, call TEXT NOT NULL,
                          confidence INTEGER NOT NULL, grade INTEGER, response_ms INTEGER NOT NULL,
                          answered_at REAL NOT NULL, PRIMARY KEY (reader, image_id),
                          FOREIGN KEY (reader, image_id) REFERENCES assignments(reader, image_id));
"""

TRIAL_COLUMNS = ('reader', 'image_id', 'position', 'practice', 'truth', 'call', 'confidence', 'grade',
                 'response_ms', 'answered_at')

def token_hash(token):
    return hashlib.sha256(token.encode('utf-8')).hexdigest()

#----------------------------------------------------------------------------

def connect(path):
    """A connection in autocommit mode (transactions are explicit), WAL journal, full fsync on commit."""
    con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    con.row_factory = sqlite3.Row
    con.execute('PRAGMA journal_mode=WAL')
    con.execute('PRAGMA synchronous=FULL')
    con.execute('PRAGMA foreign_keys=ON')
    return con

def create(path, meta, images, readers, assignments):
    """Write a new study database. images: [dict(id, truth, grade, source, role, grp, idx)];
    readers: {name: token_hash}; assignments: {name: [(image_id, practice), ...]} in reading order."""
    if os.path.exists(path):
        raise TuringError(f'{path}: a study database already exists; refusing to overwrite it')
    con = connect(path)
    try:
        con.executescript(SCHEMA)
        con.execute('BEGIN')
        con.executemany('INSERT INTO meta VALUES (?, ?)', [(k, json.dumps(v)) for k, v in meta.items()])
        con.executemany('INSERT INTO images VALUES (:id, :truth, :grade, :source, :role, :grp, :idx)', images)
        con.executemany('INSERT INTO readers VALUES (?, ?)', list(readers.items()))
        rows = [(name, pos + 1, img, int(practice), None)
                for name, seq in assignments.items() for pos, (img, practice) in enumerate(seq)]
        con.executemany('INSERT INTO assignments VALUES (?, ?, ?, ?, ?)', rows)
        con.execute('COMMIT')
    finally:
        con.close()
    os.chmod(path, 0o600)

#----------------------------------------------------------------------------

class Store:
    """Study database access for the web app; one short-lived connection per call, safe across threads."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise TuringError(f'{path}: no study database (run `python -m fundus.turing create` first)')
        self.path = path
        with self._con() as con:
            self.coordinator_hash = json.loads(con.execute("SELECT value FROM meta WHERE key='coordinator_hash'").fetchone()[0])
            self._reader_hashes = [(r['name'], r['token_hash']) for r in con.execute('SELECT * FROM readers')]

    def _con(self):
        return _Connection(self.path)

    def meta(self):
        with self._con() as con:
            return {r['key']: json.loads(r['value']) for r in con.execute('SELECT * FROM meta')}

    def is_closed(self):
        with self._con() as con:
            row = con.execute("SELECT value FROM meta WHERE key='closed_at'").fetchone()
            return row is not None and json.loads(row[0]) is not None

    def reader_for(self, token):
        """Reader name for a token, or None. Every stored hash is compared, in constant time each."""
        digest = token_hash(token)
        found = None
        for name, stored in self._reader_hashes:
            if hmac.compare_digest(digest, stored):
                found = name
        return found

    def is_coordinator(self, token):
        return hmac.compare_digest(token_hash(token), self.coordinator_hash)

    def readers(self):
        return [name for name, _ in self._reader_hashes]

    #------------------------------------------------------------------------
    # Reader side.

    def next_item(self, reader):
        """The first unanswered assignment (marked shown now), or None when the reader is done."""
        with self._con() as con:
            con.execute('BEGIN IMMEDIATE')
            row = con.execute('SELECT a.position, a.image_id, a.practice FROM assignments a LEFT JOIN trials t '
                              'ON t.reader = a.reader AND t.image_id = a.image_id '
                              'WHERE a.reader = ? AND t.image_id IS NULL ORDER BY a.position LIMIT 1', (reader,)).fetchone()
            if row is not None:
                con.execute('UPDATE assignments SET shown_at = ? WHERE reader = ? AND position = ?',
                            (time.time(), reader, row['position']))
            con.execute('COMMIT')
        total = self.progress(reader)['total']
        return None if row is None else dict(image_id=row['image_id'], position=row['position'], total=total,
                                             practice=bool(row['practice']))

    def progress(self, reader):
        with self._con() as con:
            total = con.execute('SELECT COUNT(*) FROM assignments WHERE reader = ?', (reader,)).fetchone()[0]
            answered = con.execute('SELECT COUNT(*) FROM trials WHERE reader = ?', (reader,)).fetchone()[0]
        return dict(answered=answered, total=total)

    def can_view(self, reader, image_id):
        """A reader may load an image only once it was shown to them."""
        with self._con() as con:
            row = con.execute('SELECT shown_at FROM assignments WHERE reader = ? AND image_id = ?',
                              (reader, image_id)).fetchone()
        return row is not None and row['shown_at'] is not None

    def record_answer(self, reader, image_id, call, confidence, grade):
        """Check and write one trial in one transaction. Returns the trial row; raises AnswerError (nothing written)."""
        with self._con() as con:
            con.execute('BEGIN IMMEDIATE')
            try:
                trial = self._check_and_insert(con, reader, image_id, call, confidence, grade)
            except BaseException:
                con.execute('ROLLBACK')
                raise
            con.execute('COMMIT')
        return trial

    def _check_and_insert(self, con, reader, image_id, call, confidence, grade):
        if self._closed(con):
            raise AnswerError(409, 'the study is closed; no more answers are accepted')
        row = con.execute('SELECT a.position, a.practice, a.shown_at, i.truth FROM assignments a JOIN images i '
                          'ON i.id = a.image_id WHERE a.reader = ? AND a.image_id = ?', (reader, image_id)).fetchone()
        if row is None:
            raise AnswerError(404, f'unknown image_id {image_id!r}')
        if con.execute('SELECT 1 FROM trials WHERE reader = ? AND image_id = ?', (reader, image_id)).fetchone():
            raise AnswerError(409, f'image_id {image_id!r} was already answered')
        if row['shown_at'] is None:
            raise AnswerError(409, f'image_id {image_id!r} has not been shown yet')
        now = time.time()
        trial = dict(reader=reader, image_id=image_id, position=row['position'], practice=row['practice'],
                     truth=row['truth'], call=call, confidence=confidence, grade=grade,
                     response_ms=int(round(1000 * max(0.0, now - row['shown_at']))), answered_at=now)
        con.execute(f'INSERT INTO trials VALUES ({", ".join("?" * len(TRIAL_COLUMNS))})',
                    [trial[k] for k in TRIAL_COLUMNS])
        return trial

    @staticmethod
    def _closed(con):
        row = con.execute("SELECT value FROM meta WHERE key='closed_at'").fetchone()
        return row is not None and json.loads(row[0]) is not None

    def own_results(self, reader):
        """A reader's own test trials with the truth; only after the study is closed."""
        with self._con() as con:
            rows = con.execute('SELECT image_id, position, call, confidence, truth FROM trials '
                               'WHERE reader = ? AND practice = 0 ORDER BY position', (reader,)).fetchall()
        return [dict(r, correct=r['call'] == r['truth']) for r in rows]

    #------------------------------------------------------------------------
    # Coordinator side.

    def close(self):
        with self._con() as con:
            con.execute('BEGIN IMMEDIATE')
            con.execute("INSERT OR REPLACE INTO meta VALUES ('closed_at', ?)", (json.dumps(time.time()),))
            con.execute('COMMIT')

    def all_progress(self):
        return {name: self.progress(name) for name in self.readers()}

#----------------------------------------------------------------------------

class _Connection:
    """Context manager: a fresh connection, closed on exit."""
    def __init__(self, path):
        self.path = path
    def __enter__(self):
        self.con = connect(self.path)
        return self.con
    def __exit__(self, *exc):
        self.con.close()

#----------------------------------------------------------------------------

def load_tables(path):
    """Read-only view for analysis and export: (meta, images {id: row}, assignments [rows], trials [rows])."""
    if not os.path.isfile(path):
        raise TuringError(f'{path}: no study database')
    con = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    con.row_factory = sqlite3.Row
    try:
        meta = {r['key']: json.loads(r['value']) for r in con.execute('SELECT * FROM meta')}
        images = {r['id']: dict(r) for r in con.execute('SELECT * FROM images ORDER BY idx')}
        assignments = [dict(r) for r in con.execute('SELECT * FROM assignments ORDER BY reader, position')]
        trials = [dict(r) for r in con.execute('SELECT * FROM trials ORDER BY reader, position')]
    finally:
        con.close()
    return meta, images, assignments, trials

#----------------------------------------------------------------------------
