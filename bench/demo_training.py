"""The demo's stage 2 alone: kimg trained from scratch in a fixed budget of seconds, the figure of issue 18's
"kimg in its budget" target. Results go to docs/benchmarks.md ("The CPU plugin's upfirdn2d and faster FIR
passes", "The C heap").

    python bench/demo_training.py --seconds=147                 # in this tree
    cd <older checkout> && python <this tree>/bench/demo_training.py --seconds=147   # in another one

It trains the network of `make demo` (fundus/demo/config.py, cpu_config()) on its phantom dataset with
stage 2's options, ticks, snapshots and deadline rule (stop before the tick that would overrun), in the
tree of the current directory; it also runs in trees from before the demo became a package (the
comparison with the code before issue 18 in docs/benchmarks.md). The dataset is built before the clock
starts, the CPU plugin is loaded (compiled if needed) before it too.
"""

import os
import sys
import tempfile
import time
import types

import click
import torch

sys.path.insert(0, os.getcwd()) # The tree under test: the current directory's, not this file's.
try:
    from fundus.data import build as data_build # pylint: disable=wrong-import-position
    from training import launch, run_dir # pylint: disable=wrong-import-position
except ImportError as e:
    sys.exit(f'bench/demo_training.py: run it from the root of a fundus-stylegan3 checkout ({os.getcwd()!r}: {e})')
try:
    from fundus.demo.config import cpu_config # pylint: disable=wrong-import-position
    from fundus.demo.gan import make_training_config # pylint: disable=wrong-import-position
    from fundus.demo.stages import DeadlineBudget # pylint: disable=wrong-import-position
except ImportError: # Trees before fundus/demo/ was a package (e.g. 8294468, main before issue 18).
    from fundus.demo import TrainingBudget as DeadlineBudget, cpu_config, make_training_config # pylint: disable=wrong-import-position,no-name-in-module

#----------------------------------------------------------------------------

def load_plugin():
    # 'built', 'failed' or 'absent' (trees before the CPU plugin).
    try:
        from torch_utils.ops import cpu_kernels # pylint: disable=import-outside-toplevel
    except ImportError:
        return 'absent'
    return 'built' if cpu_kernels.load_cpu_plugin() is not None else 'failed'

def tune_heap():
    # What python -m fundus.demo does first: 'kept' (freed memory stays in the C heap), 'default' (not
    # glibc, or MALLOC_* set by the caller), 'absent' (trees before torch_utils/cpu_memory.py).
    try:
        from torch_utils import cpu_memory # pylint: disable=import-outside-toplevel
    except ImportError:
        return 'absent'
    return 'kept' if cpu_memory.keep_freed_memory() else 'default'

def train_for(seconds, outdir):
    """Train the demo's network for `seconds` in outdir; returns (kimg, wall seconds)."""
    cfg = cpu_config()
    zip_path = os.path.join(outdir, f'phantoms-{cfg.num_images}-{cfg.resolution}x{cfg.resolution}.zip')
    data_build.build_dataset(f'phantom:{cfg.num_images}', zip_path, resolution=(cfg.resolution,) * 2, seed=0, progress=False)
    demo = types.SimpleNamespace(config=cfg, device='cpu', outdir=outdir, zip_path=zip_path)
    c = make_training_config(demo)
    start = time.time()
    budget = DeadlineBudget(start + seconds, lambda *_: None)
    path = launch.launch_training(c, outdir=os.path.join(outdir, 'runs'), desc='demo', progress_fn=budget,
                                  stop_fn=budget.stop, echo=lambda *_: None)
    return run_dir.last_kimg(run_dir.read_stats(path)), time.time() - start

@click.command()
@click.option('--seconds', type=click.FloatRange(min=1), default=147, show_default=True,
              help='Training budget in seconds (make demo gives stage 2 46 % of its 12 minutes; a shorter one keeps interleaved comparisons quick)')
@click.option('--threads', type=click.IntRange(min=1), default=2, show_default=True, help='torch threads')
def main(seconds, threads):
    """Train the demo's network from scratch for a fixed number of seconds, in the tree of the current
    directory, and print the kimg it reached."""
    torch.set_num_threads(threads)
    heap = tune_heap()
    plugin = load_plugin()
    with tempfile.TemporaryDirectory() as tmp:
        kimg, wall = train_for(seconds, tmp)
    print(f'{os.getcwd()}: {kimg:.3f} kimg in {wall:.1f} s (budget {seconds:g} s, {threads} threads, CPU plugin {plugin}, C heap {heap})')

if __name__ == '__main__':
    main()
