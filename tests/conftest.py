"""Shared helpers: run the CLI in-process, write small scenario files."""

from __future__ import annotations

import builtins
import copy
import os
import sys

import pytest
import yaml
from hypothesis import settings

# The default suite is reproducible: hypothesis draws the same examples on every run (a
# CI gate must not flip on luck). HYPOTHESIS_PROFILE=explore draws new ones each run.
settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reproducible"))

from rtgen_opt.cli.app import main  # noqa: E402 (after the profile: tests import it at once)

# A small valid scenario; tests copy it and break one thing at a time.
BASE_SCENARIO = {
    "name": "tiny",
    "latency_db": "ryzen_ai_9_365",
    "platform": {"cpu": 1, "gpu": 1, "npu": 1},
    "horizon": "100ms",
    "tasks": [
        {"name": "od", "model": "yolov3", "fps": 60},
        {"name": "rag", "model": "gte-base", "arrivals": {"every": "50ms"}, "input_tokens": 128},
        {"name": "llm", "model": "llama3.2-1b", "after": "rag", "input_tokens": 64,
         "output_tokens": 4, "ttft": "1s", "tpt": "100ms"},
    ],
}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `rtgen-opt ARGS` in this process: (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["rtgen-opt", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scenario_file(tmp_path):
    """Write a scenario dict (default: BASE_SCENARIO) to a YAML file; returns its path."""

    def write(data: dict | None = None, name: str = "scenario.yaml") -> str:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(copy.deepcopy(BASE_SCENARIO) if data is None else data))
        return str(path)

    return write


def base() -> dict:
    return copy.deepcopy(BASE_SCENARIO)


# ------------------------------------------------------------------ solver engines
# Tests that take an `engine` argument run once per engine named by --solvers.

ENGINES = ("cpsat", "milp-cbc", "milp-highs")


def pytest_addoption(parser):
    parser.addoption("--solvers", default="cpsat,milp-cbc,milp-highs",
                     help="comma-separated engines for the solver tests: " + ", ".join(ENGINES))


def pytest_generate_tests(metafunc):
    if "engine" in metafunc.fixturenames:
        from rtgen_opt.formulations.milp import available_engines

        wanted = [e.strip() for e in metafunc.config.getoption("solvers").split(",") if e.strip()]
        unknown = set(wanted) - set(ENGINES)
        if unknown:
            raise pytest.UsageError(f"--solvers: unknown engine(s) {sorted(unknown)}")
        installed = {"cpsat"} | {f"milp-{e}" for e in available_engines()}
        metafunc.parametrize("engine", [e for e in wanted if e in installed])


def solve_with(engine: str, problem, limit: float = 20.0, hint=None,
               stages=("violations",)):
    """Solve ``problem`` with an engine of ENGINES (one worker/thread: reproducible)."""
    if engine == "cpsat":
        from rtgen_opt.formulations.cpsat import CpSatModel

        return CpSatModel(problem).solve(limit, workers=1, hint=hint, stages=stages)
    from rtgen_opt.formulations.milp import MilpModel

    return MilpModel(problem).solve(limit, engine.split("-")[1], threads=1, hint=hint,
                                    stages=stages)


@pytest.fixture
def without_plotly(monkeypatch):
    """Plotly not installed: its import fails."""
    real_import = builtins.__import__

    def no_plotly(name, *args, **kwargs):
        if name.startswith("plotly"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plotly)
