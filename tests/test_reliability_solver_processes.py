"""docs/reliability.md, "Solver processes" and `--time-limit`: a MILP solve ended by SIGTERM
leaves no process behind, and the time limit bounds the whole command's wall time.

Both run the real command line in a subprocess, marked by an environment variable that
every process it starts inherits (the MILP worker, CBC), found again through /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.test_milp_worker import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="/proc and process groups as on Linux")

ROOT = Path(__file__).resolve().parent.parent
MARK = "RTGEN_OPT_TEST_RUN"


def start(args: list[str], mark: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{MARK: mark})
    return subprocess.Popen(
        [sys.executable, "-c", "from rtgen_opt.cli import main; main()", *args], env=env,
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def marked(mark: str) -> list[tuple[int, str]]:
    """The live processes (not zombies) carrying the run's mark, with their command lines."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z":
            found.append((int(entry.name), command))
    return found


def kill_marked(mark: str) -> None:
    for pid, _ in marked(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# A MILP solve as the command runs it (its SIGTERM handler, supervised with Ctrl-C), on a
# model that builds at once and keeps CBC busy far longer than the test waits: the whole
# `solve` command takes ~30 s to build its model before a worker starts.
DRIVER = """
import signal, sys
sys.path.insert(0, {root!r})
from rtgen_opt.cli.app import _terminated
from rtgen_opt.supervise import Budget, supervise
from tests.test_milp_worker import hard_problem
from rtgen_opt.formulations.milp.worker import solve_in_worker
signal.signal(signal.SIGTERM, _terminated)
with supervise(Budget(120.0)):
    answer = solve_in_worker(hard_problem(), "cbc", 100, 1, False, 5.0)
print(answer[0])
sys.exit(130 if answer[0] == "UNKNOWN" else 0)
"""


def start_driver(mark: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{MARK: mark})
    return subprocess.Popen([sys.executable, "-c", DRIVER.format(root=str(ROOT))], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def cbc_runs(mark: str) -> bool:
    return any("milp.worker" not in c and "cbc" in c.lower() for _, c in marked(mark))


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                       (signal.SIGKILL, -9)])
def test_a_signal_during_a_milp_solve_leaves_no_process(sig, code):
    """Ended while CBC runs — SIGTERM (exit 143 after the clean-up), Ctrl-C (the answer so
    far: the worker is stopped at once, not at its limit) or SIGKILL (no clean-up can run:
    the worker's lifeline tells it) — within a few seconds no process of the run (the
    solve, the worker, CBC) is alive."""
    mark = uuid.uuid4().hex
    proc = start_driver(mark)
    try:
        assert wait_for(lambda: cbc_runs(mark), 30), proc.communicate(timeout=60)
        proc.send_signal(sig)
        proc.communicate(timeout=10)
        assert proc.returncode == code
        assert wait_for(lambda: not marked(mark), 5), marked(mark)
    finally:
        proc.kill()
        kill_marked(mark)


def test_the_time_limit_bounds_a_milp_solve():
    """`--time-limit 8s` on a model that takes longer than that to build and solve: the
    command answers within the limit (plus a generous margin for a busy machine) with the
    best schedule found by then, and says the time limit cut the MILP."""
    mark = uuid.uuid4().hex
    started = time.monotonic()
    proc = start(["solve", "scenario_a", "--horizon", "1s", "--solver", "milp",
                  "--time-limit", "8s", "--format", "json"], mark)
    try:
        out, err = proc.communicate(timeout=120)
        wall = time.monotonic() - started
        assert wall <= 8 + 10, (wall, err.decode()[-500:])
        assert proc.returncode == 0, err.decode()[-500:]
        data = json.loads(out)
        assert data["status"] in ("FEASIBLE", "OPTIMAL")
        if data["status"] != "OPTIMAL":
            assert any("time limit" in note for note in data["notes"]), data["notes"]
        assert wait_for(lambda: not marked(mark), 5), marked(mark)
    finally:
        proc.kill()
        kill_marked(mark)
