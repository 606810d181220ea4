"""The library examples run as written (each in its own process, as a user runs them), and
the public API resolves lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "examples" / "library").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_library_example_runs(script):
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.strip()


def test_the_public_api_is_lazy_and_complete():
    code = ("import sys, rtgen_opt as rt; "
            "assert 'rtgen_opt.simulation.executor' not in sys.modules; "
            "missing = [n for n in rt.__all__ if getattr(rt, n, None) is None]; "
            "assert not missing, missing; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-800:]
