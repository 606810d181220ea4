"""The README reads in a minute and its commands run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 150


def test_every_relative_link_of_the_readme_and_docs_resolves():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), (page.name, target)


def test_the_readme_start_commands_are_the_ci_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install '.[dev]' && python -m pytest" in README
    assert "python -m pip install '.[dev]' && python -m pytest" in ci


def test_the_readme_check_example_runs(capsys, monkeypatch, tmp_path):
    """The README's check line, at a 2 s horizon: proven yes (exit 0)."""
    monkeypatch.chdir(tmp_path)
    line = next(line.strip() for line in README.splitlines()
                if line.strip().startswith("rtgen-opt check"))
    args = shlex.split(line.replace("--horizon 10s", "--horizon 2s"))[1:]
    code, _out, err = run_cli(args, capsys)
    assert code == 0, err[-400:]
