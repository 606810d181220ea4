"""The MILP worker leaves nothing behind — no process, no temporary file — however a solve
ends: normally, at the parent's hard timeout, by an engine crash (retried once, then one
line naming the engine and the signal), or with the parent killed outright."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pulp
import pytest
from rtgen_opt.formulations.milp import worker

from rtgen_opt.errors import SolverCrash

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process groups and /proc as on Linux")


def hard_problem(rows: int = 4, cols: int = 40, seed: int = 1) -> pulp.LpProblem:
    """A market-split instance: CBC needs far longer than these tests wait."""
    rng = random.Random(seed)
    prob = pulp.LpProblem("market_split", pulp.LpMinimize)
    x = [pulp.LpVariable(f"x{j}", cat="Binary") for j in range(cols)]
    slack = [pulp.LpVariable(f"s{i}", -1000, 1000, cat="Integer") for i in range(rows)]
    size = [pulp.LpVariable(f"t{i}", lowBound=0) for i in range(rows)]
    prob += pulp.lpSum(size)
    for i in range(rows):
        a = [rng.randint(0, 99) for _ in range(cols)]
        prob += pulp.lpSum(a[j] * x[j] for j in range(cols)) + slack[i] == sum(a) // 2
        prob += size[i] >= slack[i]
        prob += size[i] >= -slack[i]
    return prob


def easy_problem() -> pulp.LpProblem:
    prob = pulp.LpProblem("easy", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 10, cat="Integer")
    prob += x
    prob += x >= 2.5
    return prob


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Workers' private folders go under tmp_path, where the test can look for them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def workers(monkeypatch):
    """The worker processes started during the test."""
    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    class Recording(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(worker.subprocess, "Popen", Recording)
    return started


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(workers) -> bool:
    """Every worker's group is empty (killed processes vanish once init reaps them)."""
    return wait_for(lambda: not any(group_alive(w.pid) for w in workers), timeout=10)


def wait_for(condition, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith("rtgen-opt-milp-")]


def test_a_normal_solve_leaves_no_process_and_no_file(private_tmp, workers):
    status, value, _, values = worker.solve_in_worker(easy_problem(), "cbc", 30, 1, False,
                                                          5.0)
    assert (status, value, values["x"]) == ("OPTIMAL", 3.0, 3.0)
    assert gone(workers)
    assert leftovers(private_tmp) == []


def test_the_hard_timeout_kills_the_group_with_cbc_and_removes_its_files(private_tmp,
                                                                            workers):
    payload = __import__("pickle").dumps((hard_problem(), "cbc", 120, 1, False))
    started = time.monotonic()
    answer = worker._run_once(payload, timeout=3.0)
    assert answer[0] == "UNKNOWN" and time.monotonic() - started < 30
    assert gone(workers)  # CBC was in the worker's group
    assert leftovers(private_tmp) == []


def test_an_engine_crash_is_retried_then_reported_in_one_line(private_tmp, workers):
    """CBC killed by SIGSEGV in both attempts: one line naming CBC and the signal."""
    outcome = {}

    def run():
        try:
            worker.solve_in_worker(hard_problem(), "cbc", 120, 1, False, 5.0)
        except SolverCrash as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=run)
    thread.start()
    for attempt in range(2):
        assert wait_for(lambda n=attempt: len(workers) > n and children(workers[n].pid))
        os.kill(children(workers[attempt].pid)[0], signal.SIGSEGV)
    thread.join(60)
    message = outcome["error"]
    assert "CBC" in message and "SIGSEGV" in message and "\n" not in message
    assert "--mip-solver highs" in message
    assert gone(workers)
    assert leftovers(private_tmp) == []


def test_one_crash_of_the_worker_is_retried_and_the_solve_succeeds(private_tmp, workers):
    outcome = {}

    def run():
        outcome["answer"] = worker.solve_in_worker(hard_problem(rows=1, cols=12), "cbc", 60,
                                                   1, False, 5.0)

    thread = threading.Thread(target=run)
    thread.start()
    assert wait_for(lambda: workers)  # killed while it starts (importing PuLP takes a while)
    os.kill(workers[0].pid, signal.SIGKILL)
    thread.join(60)
    assert outcome["answer"][0] == "OPTIMAL" and len(workers) == 2
    assert gone(workers)
    assert leftovers(private_tmp) == []


@pytest.mark.parametrize("when", ["solving", "reading its model"])
def test_a_killed_parent_leaves_no_orphan(tmp_path, when):
    """SIGKILL of the parent (no cleanup can run there): the orphaned worker notices, kills
    CBC and removes its folder itself."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, tempfile
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        tempfile.tempdir = {str(tmp_path)!r}
        from tests.test_milp_worker import hard_problem
        from rtgen_opt.formulations.milp.worker import solve_in_worker
        big = {when == "reading its model"}  # a large model: killed while it is sent
        solve_in_worker(hard_problem(cols=60_000 if big else 40), "cbc", 120, 1, False, 5.0)
    """))
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        if when == "solving":  # CBC runs
            assert wait_for(lambda: children(parent.pid) and children(children(parent.pid)[0]))
        else:
            assert wait_for(lambda: children(parent.pid))
        child = children(parent.pid)[0]
        assert leftovers(tmp_path)
        parent.kill()
        parent.wait()
        assert wait_for(lambda: not group_alive(child), timeout=10)
        assert leftovers(tmp_path) == []
    finally:
        parent.kill()
