# The C heap under CPU tensors, tuned for the process by the code that owns it: the command lines
# (train.py, gen_images.py, calc_metrics.py, python -m fundus.demo, python -m fundus.fundusgan) and the
# rank processes that training/launch.py spawns for --gpus=N. Other library code never calls this.
#
# PyTorch's CPU allocator takes every tensor from malloc. glibc serves blocks above a threshold (128 KiB,
# raised up to 32 MiB as such blocks are freed) with a fresh mmap() and gives freed memory at the top of
# its heap back to the system once more than twice that threshold is free there. A training step
# allocates and frees the same few-MiB temporaries every step, so without tuning the kernel maps and zeroes
# those pages again on first touch, step after step: on the demo's [8, 32, 72, 72] modulated convolution
# the forward took 10.4-11.3 ms instead of 4.8 ms (docs/benchmarks.md, "The C heap").

import ctypes
import os

#----------------------------------------------------------------------------

M_TRIM_THRESHOLD = -1 # mallopt() parameter numbers from glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20  # Blocks below this come from the heap (glibc's largest allowed value).
TRIM_THRESHOLD = 256 << 20 # Freed memory kept at the top of the heap before it goes back to the system.

ENV_NAMES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'GLIBC_TUNABLES') # The user's own settings.

#----------------------------------------------------------------------------

def is_glibc():
    # The C library this process runs on (not a scan of the interpreter's binary, as platform.libc_ver does).
    try:
        return (os.confstr('CS_GNU_LIBC_VERSION') or '').startswith('glibc')
    except (AttributeError, ValueError, OSError): # Not POSIX, or a C library without the name.
        return False

def keep_freed_memory(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD):
    """Serve blocks below mmap_threshold from glibc's heap and keep up to trim_threshold bytes of freed
    memory in it, for the rest of this process (mallopt; glibc cannot go back to its adaptive defaults).

    Returns True where applied; False where the C library is not glibc or the user set any of ENV_NAMES,
    whose settings then stand.
    """
    if not is_glibc() or any(name in os.environ for name in ENV_NAMES):
        return False
    libc = ctypes.CDLL(None)
    return (libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
            and libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1)

#----------------------------------------------------------------------------
