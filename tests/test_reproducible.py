"""`solve --workers 1` is reproducible whatever the load: the deterministic budgets decide,
and an answer a clock decided says so (`reproducible: false`)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import run_cli

VOLATILE = ("wall_s",)


def _strip(data):
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def test_two_runs_beside_busy_processes_agree_or_say_they_may_not(capsys):
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        answers = []
        for _ in range(2):
            code, out, _err = run_cli(["solve", "scenario_a", "--horizon", "1s", "--workers",
                                       "1", "--time-limit", "20s", "--format", "json"], capsys)
            assert code == 0
            answers.append(json.loads(out))
    finally:
        for p in busy:
            p.kill()
    if all(a["reproducible"] for a in answers):
        assert _strip(answers[0]) == _strip(answers[1])
