"""A hostile job file costs the parser a small multiple of its size in memory, whatever its shape.

Each shape of ``tests/hostile.py`` is parsed in a fresh interpreter (so one shape's garbage cannot hide
another's peak) that reads the file, notes its peak resident memory, takes the file in as the intake
does (parse, validate, serialize), and reports how far the peak rose. The security review's file of
nested empty arrays rose by 84 times its size before the parser counted arrays.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import MEMORY_SHAPES

#: Bytes of each file: big enough that interpreter noise (a few MiB) is small beside it.
FILE_BYTES = 4_000_000
#: The bound on peak growth, in multiples of the file's size. The densest valid tutorial job (one-character
#: examples) measures about 13, the worst hostile shape (tiny objects with distinct keys) about 25;
#: ``bench/intake.py`` reports every shape's figure in the daemon at the default size limit.
MULTIPLE = 30

# The peak is read from VmHWM: ru_maxrss would carry the parent's peak across fork and exec.
_CHILD = """
import json, sys
from orchestrator.errors import SpecError
from orchestrator.intake import new_job_from_file

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

data = open(sys.argv[1], "rb").read()
before = peak_kib()
try:
    new_job_from_file(data, source="hostile.json", intake_id="t", installation_id="i", max_bytes=len(data))
    outcome = "accepted"
except SpecError as error:
    outcome = error.problem
after = peak_kib()
print(json.dumps({"growth_bytes": (after - before) * 1024, "outcome": outcome}))
"""


@pytest.mark.parametrize("shape", sorted(MEMORY_SHAPES))
def test_peak_memory_is_a_small_multiple_of_the_file(shape: str, tmp_path: Path) -> None:
    data = MEMORY_SHAPES[shape](FILE_BYTES)
    path = tmp_path / "hostile.json"
    path.write_bytes(data)

    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, timeout=120, check=True)
    report = json.loads(done.stdout)

    assert report["growth_bytes"] <= MULTIPLE * len(data), report["outcome"]
    if shape.startswith("valid"):
        assert report["outcome"] == "accepted"
