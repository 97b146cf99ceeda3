"""Keep freed memory in the process's heap instead of giving it back to the system (glibc).

glibc serves every allocation above its mmap threshold (128 KiB, rising to at most 32 MiB) with
fresh pages from mmap() and unmaps them again on free(). A CPU training step allocates its large
activations and gradients anew each time, so each step page-faults and zero-fills them again: at
the papers' sizes (one thread, batch 32) that is about a third of a cnn step in fp32 and a sixth
to a third of the other models' steps (`bench/bench_models.py --allocator system` against the
default). With mmap switched off and a trim threshold of 2 GiB, freed blocks stay in the heap and
the next step reuses them. The price is memory: the heap does not shrink, and fragmentation
raises a paper-size cnn training process's peak from about 1.4 to 2.1 GB.

Programs that run tensor work on the CPU call `keep_freed_memory()` once at start (the trainers
through ser.runtime.distributed.setup, the scoring programs through
ser.eval.scoring_inputs.ScoringInputs, ser.bin.generate itself). `SER_MALLOC=system` in the environment leaves the C
library's policy alone. Other C libraries are left alone too (the function returns False).
"""
import ctypes
import os

from ser.errors import SerError

M_TRIM_THRESHOLD = -1     # mallopt parameters of glibc's malloc.h
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2 ** 31 - 1
POLICIES = ("keep", "system")


def _glibc():
    """The process's C library if it is glibc (it has gnu_get_libc_version), else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version
        libc.mallopt
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory(policy=None):
    """Apply `policy` ('keep' or 'system'; None: $SER_MALLOC, default 'keep'). True when glibc's
    malloc now keeps freed memory, False when the system's policy stays (by choice or because the
    C library is not glibc)."""
    if policy is None:
        policy = os.environ.get("SER_MALLOC") or "keep"
        if policy not in POLICIES:
            raise SerError(f"environment variable SER_MALLOC={policy!r}: expected one of "
                           f"{', '.join(POLICIES)}")
    elif policy not in POLICIES:
        raise SerError(f"allocator policy {policy!r}: expected one of {', '.join(POLICIES)}")
    libc = _glibc()
    if policy == "system" or libc is None:
        return False
    return libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


def add_allocator_option(parser):
    """--allocator of the benchmarks: 'keep' (what the programs do) or 'system' (glibc's own)."""
    parser.add_argument("--allocator", choices=POLICIES, default="keep",
                        help="keep: glibc keeps freed memory as the training and scoring programs "
                             "make it (ser.runtime.allocator); system: the C library's own policy")
