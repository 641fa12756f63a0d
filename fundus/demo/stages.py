# The stage runner. A stage is a function (demo) -> note or StageOutput; the runner prints its start and end,
# turns what it returns or raises into a StageResult, and never lets one stage's failure stop the others.
# A stage that needs an earlier stage's output (an attribute of Demo that is still None) is 'skipped' with
# the reason; a stage whose inputs are absent by design (no shipped model, a resolution the encoder cannot
# take) raises StageUnavailable.

import dataclasses
import os
import time
import traceback

import dnnlib

#----------------------------------------------------------------------------

class StageUnavailable(Exception):
    """A stage cannot run in this configuration (said in its one-line note; not a failure)."""

@dataclasses.dataclass
class StageOutput:
    note:   str                                         # One line: what the stage made.
    links:  list = dataclasses.field(default_factory=list) # [(label, path), ...] of its outputs.

@dataclasses.dataclass
class StageResult:
    key:     str        # Short identifier ('training').
    name:    str        # Shown name ('2 Training from scratch').
    status:  str        # 'done', 'failed', 'skipped' or 'unavailable'.
    seconds: float
    note:    str = ''
    links:   list = dataclasses.field(default_factory=list) # [(label, path), ...]

@dataclasses.dataclass
class Stage:
    key:    str         # Identifier, also the key of config.SHARES.
    name:   str
    fn:     object      # fn(demo) -> str or StageOutput.
    needs:  tuple = ()  # Demo attributes that must not be None.

WORDS = dict(done='done', unavailable='not available', skipped='skipped', failed='FAILED')

#----------------------------------------------------------------------------

class Demo:
    """The state shared by the stages: configuration, deadlines and what earlier stages made."""

    def __init__(self, outdir, config, device, deadline, echo=print, model_dir=None):
        self.outdir = outdir
        self.config = config
        self.device = device
        self.deadline = deadline    # End of the whole budget (time.time() seconds).
        self.stage_deadline = deadline # End of the running stage's share.
        self.echo = echo
        self.model_dir = model_dir   # Where a shipped model would be (None: shipped.MODEL_DIR).
        self.results = []
        self.zip_path = None        # 1: the phantom dataset.
        self.run_dir = None         # 2: the training run directory.
        self.snapshot = None        # 2: its last network snapshot.
        self.model = None           # 3: the generator pickle evaluated from here on (shipped or stage 2's).
        self.eval_zip = None        # 3: phantoms at the model's resolution.
        self.metrics_dir = None     # 3: where metric-*.jsonl go.
        self.metrics = {}           # 3: {name: value} of the headline metrics.
        self.report = None          # 3: the run report.
        self.shipped_encoder = None # 3: the shipped model's encoder snapshot (hash checked), when there is one.
        self.encoder_snapshot = None # 4
        self.reader_study = None    # 6
        self.pages = []             # [(label, path)] of every HTML page written.

    def seconds_left(self):
        return self.stage_deadline - time.time()

    def stage(self, index, total, stage):
        """Run one stage and record its StageResult. Returns True when it finished."""
        start = time.time()
        missing = [n for n in stage.needs if getattr(self, n) is None]
        if missing:
            result = StageResult(stage.key, stage.name, 'skipped', 0.0, f'needs the output of an earlier stage ({", ".join(missing)})')
            return self._record(result, index, total)
        self.echo(f'[{index}/{total}] {stage.name} ...')
        try:
            out = stage.fn(self)
            out = out if isinstance(out, StageOutput) else StageOutput(out or '')
            result = StageResult(stage.key, stage.name, 'done', time.time() - start, out.note, out.links)
        except StageUnavailable as e:
            result = StageResult(stage.key, stage.name, 'unavailable', time.time() - start, str(e))
        except Exception as e: # Report and go on: later stages say what they miss.
            if os.environ.get('FUNDUS_DEBUG'):
                traceback.print_exc()
            result = StageResult(stage.key, stage.name, 'failed', time.time() - start, f'{type(e).__name__}: {first_line(e)}')
        return self._record(result, index, total)

    def _record(self, result, index, total):
        self.results.append(result)
        note = f': {result.note}' if result.note else ''
        self.echo(f'[{index}/{total}] {result.name}: {WORDS[result.status]} in {dnnlib.format_time(result.seconds)}{note}')
        return result.status == 'done'

def first_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else ''

#----------------------------------------------------------------------------

class DeadlineBudget:
    """Progress callback of a loop; stop() is True once the next step/tick would end after the deadline."""

    def __init__(self, deadline, echo=None, what='training'):
        self.deadline = deadline
        self.echo = echo
        self.what = what
        self.last = None
        self.longest = 0.0
        self.reached = False

    def __call__(self, cur_nimg=None, _total_nimg=None):
        now = time.time()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now
        if self.echo is not None and cur_nimg is not None:
            self.echo(f'      {self.what}: {cur_nimg / 1000:.3f} kimg, {max(self.deadline - now, 0):.0f} s left')
        self.reached = self.reached or now + self.longest > self.deadline

    def stop(self):
        return self.reached

#----------------------------------------------------------------------------
