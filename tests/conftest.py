"""Shared helpers: run the CLI in-process, write small scenario files."""

from __future__ import annotations

import copy
import sys

import pytest
import yaml

from rtgen_opt.cli import main

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
