"""The README reads in a minute; its links and the paths the docs name resolve."""

from __future__ import annotations

import re
from pathlib import Path

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
            # inside the repository: a reader of a release has nothing beside it
            assert (page.parent / target).resolve().is_relative_to(ROOT), (page.name, target)


def test_the_readme_start_commands_are_the_ci_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install '.[dev]' && python -m pytest" in README
    assert "python -m pip install '.[dev]' && python -m pytest" in ci


def test_every_repository_path_the_docs_name_exists():
    """`rtgen_opt/...`, `tests/...` and the like in code spans: moved files leave none behind.
    (The docs' command lines run in tests/test_doc_commands.py.)"""
    tops = {"rtgen_opt", "formulations", "tests", "examples", "bench", "latency_db",
            "instances", "docs", ".ci"}
    for page in [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for span in re.findall(r"`([^`\s]+)`", page.read_text()):
            if "/" in span and span.split("/")[0] in tops:
                assert (ROOT / span).exists(), (page.name, span)
