# The study server as a child process on 127.0.0.1, for the browser test, the kill -9 test and the load
# benchmark: start `python -m fundus.turing serve`, wait until it answers, SIGKILL it.

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

class LocalServer:
    """`python -m fundus.turing serve STUDY_DIR` in a subprocess; kill() sends SIGKILL to that process only."""

    def __init__(self, study_dir, port=None, threads=4, timeout=60):
        self.port = port or free_port()
        self.base = f'http://127.0.0.1:{self.port}'
        self.log = tempfile.TemporaryFile() # Not a pipe: an unread pipe fills up and blocks the server's logging.
        self.proc = subprocess.Popen([sys.executable, '-m', 'fundus.turing', 'serve', study_dir, '--port', str(self.port),
                                      '--threads', str(threads)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f'server exited: {self.log.read().decode(errors="replace")}')
            try:
                urllib.request.urlopen(self.base + '/static/turing.css', timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f'the study server did not answer on {self.base} within {timeout} s')

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill() # SIGKILL
        self.proc.wait()
        self.log.close()

#----------------------------------------------------------------------------
