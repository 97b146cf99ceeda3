"""ser.runtime.allocator: under the 'keep' policy a freed large tensor stays in glibc's heap (no
mmap), under 'system' glibc maps and unmaps it; both seen through glibc's own mallinfo2()."""
import json
import os
import subprocess
import sys

import pytest

from ser.errors import SerError
from ser.runtime.allocator import _glibc, keep_freed_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB64 = 64 << 20

PROBE = r"""
import ctypes, json, os, sys
import torch

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
how = sys.argv[1]
if how == "setup":
    from ser.runtime import distributed
    distributed.setup(0)
    applied = None           # setup returns the process's place, not the policy
elif how == "env":
    from ser.runtime.allocator import keep_freed_memory
    applied = keep_freed_memory()
else:
    from ser.runtime.allocator import keep_freed_memory
    applied = keep_freed_memory(how)
x = torch.empty(64 << 20, dtype=torch.uint8)
x.fill_(1)
held = libc.mallinfo2()
del x
freed = libc.mallinfo2()
print(json.dumps({"applied": applied, "mapped_while_held": held.hblkhd,
                  "free_in_heap_after": freed.fordblks}))
"""


def _has_mallinfo2():
    libc = _glibc()
    return libc is not None and hasattr(libc, "mallinfo2")


needs_glibc = pytest.mark.skipif(not _has_mallinfo2(), reason="glibc >= 2.33 (mallinfo2) only")


def probe(how, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k != "SER_MALLOC"}
    env.update(PYTHONPATH=ROOT, **(extra_env or {}))
    out = subprocess.run([sys.executable, "-c", PROBE, how], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@needs_glibc
@pytest.mark.parametrize("how", ["keep", "setup"])
def test_keep_serves_large_tensors_from_the_heap_and_keeps_them(how):
    r = probe(how)
    assert r["applied"] is (True if how == "keep" else None)
    assert r["mapped_while_held"] < MB64            # not an mmap()ed block
    assert r["free_in_heap_after"] >= MB64          # freed, still the process's


@needs_glibc
def test_system_policy_maps_and_unmaps_large_tensors():
    r = probe("system")
    assert r["applied"] is False
    assert r["mapped_while_held"] >= MB64
    assert r["free_in_heap_after"] < MB64


@needs_glibc
def test_environment_chooses_the_policy():
    assert probe("env", {"SER_MALLOC": "system"})["mapped_while_held"] >= MB64
    assert probe("env", {"SER_MALLOC": "keep"})["mapped_while_held"] < MB64


def test_unknown_policies_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("SER_MALLOC", "jemalloc")
    with pytest.raises(SerError, match=r"SER_MALLOC='jemalloc': expected one of keep, system"):
        keep_freed_memory()
    with pytest.raises(SerError, match=r"allocator policy 'tcmalloc'"):
        keep_freed_memory("tcmalloc")
