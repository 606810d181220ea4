"""Every command line of the README and docs/*.md runs, as written, in a test.

The lines are extracted, not copied: code blocks (indented or fenced shell) and inline
spans that start with `rtgen-opt ` or `python `. Each becomes one case named after its
page and line. A line runs in a fresh folder holding a copy of examples/ (so the paths
of the docs resolve) after mechanical shortening: horizons (on the command line and in
the YAML files a line reads) at most 2 s, time limits at most 30 s, `db profile` with
one timed run at one length. It must exit with the code its text implies: 0, or the
codes listed in EXPECTED_CODES. Files a line writes (`--out`, `--report`, ...) or says it
writes (its comment) must exist afterwards.

What does not run is listed here with its reason, reviewed: SKIPPED (installs, the test
suite itself, benchmarks), NAMES (a command's name in prose); a template (placeholders
such as SCENARIO or N) is a syntax summary and skips with the placeholder named.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import pytest

from rtgen_opt.units import parse_duration
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(rtgen-opt|python3?) ")
SHELL_FENCES = {"", "sh", "bash", "shell", "console"}

MAX_HORIZON = Fraction(2)
# The headline command keeps its horizon: at 60 s it answers in seconds (construction and
# bounds); cut to 2 s it is solved as one CP-SAT model in three stages, about 18 s.
AS_WRITTEN = ["solve", "scenario_c", "--horizon", "60s"]
MAX_TIME_LIMIT = Fraction(30)
PROFILE_QUICK = {"--runs": "1", "--warmup": "0", "--seq-lens": "128",
                 "--context-lens": "128,256"}  # 256: a 128-token prompt's decode
OUTPUT_FLAGS = {"--out", "--report", "--witness-out", "--schedule-out", "--taskset-out",
                "--model-out", "--bound-out", "--junit"}

# (page, a fragment of the command) -> why it does not run here.
SKIPPED = {
    ("", "python -m pip install"): "installs packages: the tests run in the installed "
                                   "dev environment",
    ("", "python -m pytest"): "runs (part of) this test suite",
    ("", "python bench/"): "a benchmark, minutes of measurement; "
                           "tests/test_bench_smoke.py starts every script",
    ("docs/check.md", "--set platform.npu=2"): "the worked example: tests/test_check_docs.py "
                                               "runs it, its JSON checked",
}
# Inline spans that name a command (or a file format) in prose, not command lines.
NAMES = {"rtgen-opt check", "rtgen-opt solve", "rtgen-opt replay", "rtgen-opt db profile",
         "rtgen-opt bound certificate"}
# (page, fragment) -> the exit codes the text states for that line (default: 0).
EXPECTED_CODES = {
    ("docs/guide.md", "check mine.yaml --latency p99"): {0, 1},  # "exit 0 yes, 1 no"
}
# (page, fragment) -> fragments of the lines of that page that must run first, in the same
# folder (the doc's sequence: the database before the scenario that reads it).
PREREQUISITES = {
    ("docs/guide.md", "mine.yaml"): ["db profile detector.onnx"],
}
# (page, fragment) -> why the line is under @pytest.mark.slow.
SLOW = {
    ("docs/guide.md", "--engine ray"): "starts a local Ray cluster (about 20 s)",
}
# (page, fragment) -> the feature a line uses that is not there yet (xfail until it is).
NOT_YET: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class DocLine:
    page: str
    line: int
    text: str       # the command, continuation lines joined, without its comment
    comment: str    # the trailing `# ...`, if any
    inline: bool
    part: str = ""  # "b" for the second command on one doc line

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}{self.part}"


# ------------------------------------------------------------------ extraction

def code_lines(page: str) -> list[tuple[int, str, str | None]]:
    """(line number, text, fence language or None for indented) of every code line."""
    found, fence, lines = [], None, (ROOT / page).read_text().splitlines()
    for number, raw in enumerate(lines, 1):
        if raw.startswith("```"):
            fence = None if fence is not None else raw[3:].strip()
        elif fence is not None:
            found.append((number, raw, fence))
        elif raw.startswith("    ") and raw.strip():
            found.append((number, raw[4:], None))
    return found


def split_comment(text: str) -> tuple[str, str]:
    """The command and its trailing `# comment` (a # that starts a shell word)."""
    match = re.search(r"(?:^|\s)#\s?(.*)$", text)
    if match is None or text.count("'") % 2 or text.count('"') % 2:
        return text.strip(), ""
    return text[:match.start()].strip(), match.group(1).strip()


def block_commands(page: str) -> list[DocLine]:
    """Command lines of the code blocks; `a && b` gives one DocLine per command."""
    commands, pending = [], None
    for number, text, fence in code_lines(page):
        if fence is not None and fence not in SHELL_FENCES:
            continue
        if pending is not None:
            start, joined = pending
            text, number = joined + " " + text.strip(), start
        elif not COMMAND.match(text.strip()):
            continue
        if text.rstrip().endswith("\\"):
            pending = (number, text.rstrip()[:-1].rstrip())
            continue
        pending = None
        command, comment = split_comment(text)
        for part in command.split(" && "):
            commands.append(DocLine(page, number, part.strip(), comment, inline=False))
    return commands


def inline_commands(page: str) -> list[DocLine]:
    """Inline code spans (wrapping lines allowed) that start with a command."""
    lines = (ROOT / page).read_text().splitlines()
    for number, _text, _fence in code_lines(page):  # blanked: prose only, numbers kept
        lines[number - 1] = ""
    text = "\n".join(line if not line.startswith("```") else "" for line in lines)
    spans = []
    for match in re.finditer(r"`([^`]+)`", text):
        number = text.count("\n", 0, match.start()) + 1
        span = " ".join(match.group(1).split()).replace("\\|", "|")
        if COMMAND.match(span):
            spans.append(DocLine(page, number, span, "", inline=True))
    return spans


def all_lines() -> list[DocLine]:
    """Every command line; the second command on a doc line (`a && b`) gets id LINE b."""
    lines, seen = [], {}
    for page in PAGES:
        for line in block_commands(page) + inline_commands(page):
            seen[line.id] = seen.get(line.id, 0) + 1
            part = "" if seen[line.id] == 1 else "abcdefgh"[seen[line.id] - 1]
            lines.append(replace(line, part=part))
    return lines


def lookup(table: dict, line: DocLine):
    """The entry of ``table`` whose (page, fragment) matches ``line``, or None."""
    for (page, fragment), value in table.items():
        if (not page or page == line.page) and fragment in line.text:
            return value
    return None


LINES = all_lines()
TEMPLATE = re.compile(r"(?<![\w.-])[A-Z][A-Z0-9_]*(?![\w])|\.\.\.|…|(?<! )\|(?! )| \| ")


def why_not_run(line: DocLine) -> str | None:
    """The reason a documented line does not run, or None when it runs."""
    if (reason := lookup(SKIPPED, line)) is not None:
        return reason
    first = next(other for other in LINES if other.text == line.text)
    if first is not line:
        return f"the same command as {first.id}"
    if line.inline and line.text in NAMES:
        return "a command's name in prose"
    if (placeholder := TEMPLATE.search(line.text)) is not None:
        return f"a template ({placeholder.group(0).strip()!r}), not a command line"
    return None


def cases():
    for line in LINES:
        marks = []
        if (reason := why_not_run(line)) is not None:
            marks.append(pytest.mark.skip(reason=reason))
        if lookup(SLOW, line) is not None:
            marks.append(pytest.mark.slow)
        if (feature := lookup(NOT_YET, line)) is not None:
            marks.append(pytest.mark.xfail(reason=f"not there yet: {feature}", strict=True))
        yield pytest.param(line, id=line.id, marks=marks)


# ------------------------------------------------------------------ shortening

def shortened(args: list[str]) -> list[str]:
    """The arguments with horizons <= 2 s, time limits <= 30 s, a quick `db profile` (one
    timed run at the shortest lengths, whatever the line asked); the headline command
    (``AS_WRITTEN``) keeps its horizon."""
    args = list(args)
    if args[:len(AS_WRITTEN)] == AS_WRITTEN:
        return args
    for flag, cap in (("--horizon", MAX_HORIZON), ("--time-limit", MAX_TIME_LIMIT)):
        if flag in args:
            at = args.index(flag) + 1
            if parse_duration(args[at]) > cap:
                args[at] = f"{cap}s"
    if args[:2] == ["db", "profile"]:
        for flag, value in PROFILE_QUICK.items():
            if flag in args:
                args[args.index(flag) + 1] = value
            else:
                args += [flag, value]
    return args


def shorten_yaml_horizons(folder: Path) -> None:
    """`horizon: X` above 2 s becomes 2 s in every YAML file a line may read."""
    def cap(match: re.Match) -> str:
        value = match.group(2)
        return match.group(1) + (f"{MAX_HORIZON}s" if parse_duration(value) > MAX_HORIZON
                                 else value)

    for path in folder.rglob("*.yaml"):
        path.write_text(re.sub(r"^(horizon:\s*)(\S+)", cap, path.read_text(), flags=re.MULTILINE))


# ------------------------------------------------------------------ the folder a line runs in

def doc_files(page: str) -> dict[str, str]:
    """YAML blocks of ``page`` whose first line names their file (`# mine.yaml, ...`)."""
    text = (ROOT / page).read_text()
    files = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL):
        name = re.match(r"#\s*([\w.-]+\.ya?ml)\b", block)
        if name:
            files[name.group(1)] = block
    return files


def write_onnx_inputs(args: list[str], folder: Path) -> None:
    """The ONNX models a `db profile` line names, as tiny stand-ins (two MatMul layers)."""
    from tests.test_profile import mlp_model

    for arg in args:
        name = arg.split("=", 1)[-1]
        if name.endswith(".onnx") and not (folder / name).exists():
            mlp_model(folder / name, 32)


def prepare(folder: Path, line: DocLine) -> None:
    """A copy of examples/ and the page's named YAML files, horizons shortened."""
    shutil.copytree(ROOT / "examples", folder / "examples", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name, content in doc_files(line.page).items():
        (folder / name).write_text(content)
    shorten_yaml_horizons(folder)


def outputs_named(args: list[str], comment: str) -> list[str]:
    """Files the line writes: values of output flags, and files its comment names."""
    named = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in OUTPUT_FLAGS]
    return named + re.findall(r"[\w.-]+\.(?:csv|html|json|md|xml)\b", comment)


def run_line(line: DocLine, capsys) -> tuple[list[str], int, str]:
    """Run one documented line in the current folder: (the arguments run, code, stderr)."""
    words = shlex.split(line.text)
    assert words[0] == "rtgen-opt", f"{line.id}: no runner for {words[0]!r}"
    args = shortened(words[1:])
    if args[:2] == ["db", "profile"]:
        write_onnx_inputs(args, Path.cwd())
    code, _out, err = run_cli(args, capsys)
    return args, code, err


def by_fragment(page: str, fragment: str) -> DocLine:
    matches = [line for line in LINES if line.page == page and fragment in line.text]
    assert len(matches) == 1, (page, fragment, [m.id for m in matches])
    return matches[0]


def check_exit(line: DocLine, args: list[str], code: int, err: str) -> None:
    expected = lookup(EXPECTED_CODES, line) or {0}
    assert code in expected, f"{line.id}: rtgen-opt {shlex.join(args)}: exit {code}, the doc " \
                             f"implies {sorted(expected)}\n{err[-800:]}"
    assert "Traceback" not in err


PREREQUISITE_FOLDERS: dict[str, Path] = {}  # line id -> the folder it ran in (per worker)


def run_prerequisite(line: DocLine, tmp_path_factory, capsys) -> Path:
    """Run ``line`` once per test process, in a folder of its own; later calls reuse it."""
    if line.id not in PREREQUISITE_FOLDERS:
        folder = tmp_path_factory.mktemp("prerequisite")
        prepare(folder, line)
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            args, code, err = run_line(line, capsys)
        check_exit(line, args, code, err)
        PREREQUISITE_FOLDERS[line.id] = folder
    return PREREQUISITE_FOLDERS[line.id]


@pytest.mark.parametrize("line", list(cases()))
def test_documented_line_runs(line, tmp_path, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # sweeps cache here
    for fragment in lookup(PREREQUISITES, line) or []:
        folder = run_prerequisite(by_fragment(line.page, fragment), tmp_path_factory, capsys)
        shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    prepare(tmp_path, line)
    monkeypatch.chdir(tmp_path)
    args, code, err = run_line(line, capsys)
    check_exit(line, args, code, err)
    for name in outputs_named(args, line.comment):
        assert (tmp_path / name).exists(), f"{line.id} says it writes {name}"


# ------------------------------------------------------------------ the lists stay true

def test_every_listed_entry_matches_a_documented_line():
    """A stale entry (its line edited away) would silently stop applying."""
    for table in (SKIPPED, EXPECTED_CODES, PREREQUISITES, SLOW, NOT_YET):
        for page, fragment in table:
            assert any((not page or line.page == page) and fragment in line.text
                       for line in LINES), (page, fragment)
    texts = {line.text for line in LINES if line.inline}
    assert NAMES <= texts, NAMES - texts
    for (page, _fragment), fragments in PREREQUISITES.items():
        for fragment in fragments:
            by_fragment(page, fragment)


def test_most_documented_lines_run_in_the_default_suite():
    running = [line for line in LINES if why_not_run(line) is None
               and lookup(SLOW, line) is None and lookup(NOT_YET, line) is None]
    assert len(running) >= 10, [line.id for line in running]
    assert any(not line.inline for line in running) and any(line.inline for line in running)


@pytest.mark.parametrize("text, comment", [
    ("rtgen-opt sweep x.yaml       # a.csv and a.html (the plots)", "a.csv and a.html (the plots)"),
    ("rtgen-opt check --set 'a=#b'", ""),
    ("python -m pip install '.[profile]'      # onnx", "onnx"),
])
def test_comments_are_split_off_where_the_shell_would(text, comment):
    assert split_comment(text)[1] == comment


def test_shortening_caps_and_keeps_short_values():
    args = shortened(["solve", "scenario_d", "--horizon", "60s", "--time-limit", "300s"])
    assert args == ["solve", "scenario_d", "--horizon", "2s", "--time-limit", "30s"]
    assert shortened([*AS_WRITTEN, "--report", "r.html"]) == [*AS_WRITTEN, "--report", "r.html"]
    assert shortened(["taskset", "a", "--horizon", "500ms"])[-1] == "500ms"
    profile = shortened(["db", "profile", "--runs", "10", "--out", "x"])
    assert profile.count("--runs") == 1 and profile[profile.index("--runs") + 1] == "1"
