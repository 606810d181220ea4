"""The sweep report on both paths: Plotly figures with the ``report`` extra, SVG without
(plotly's import made to fail). The figures' data are read back from the page and
compared with the rows; user text stays escaped in both."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import yaml

from rtgen_opt.sweep.report import VERDICT_COLOURS, html_page
from rtgen_opt.sweep.spec import load_sweep

HOSTILE = '<img src=x onerror="alert(1)"> %{y} &amp;'  # a policy name, an axis value


def spec_of(tmp_path, grid: dict, run: dict, plots: list[str]):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s <b>", "description": "about <i>",
                                    "scenario": "scenario_a", "horizon": "1s", "grid": grid,
                                    "run": run, "plots": plots}))
    return load_sweep(str(path))


def simulate_rows(axes: dict, policies: list[str]) -> list[dict]:
    """Made-up simulate rows: a rate that depends on the point and the policy."""
    import itertools

    rows = []
    for point, values in enumerate(itertools.product(*axes.values())):
        for p, policy in enumerate(policies):
            rows.append({"point": point, "scenario": "scenario_a",
                         **dict(zip(axes, values)), "command": "simulate", "policy": policy,
                         "error": None, "violation_rate": (point + 1) / 100 + p / 1000})
    return rows


class Page(HTMLParser):
    """Tags outside scripts, whether every tag closed, and the scripts' text."""

    VOID = frozenset({"meta", "br", "circle", "rect", "line", "polyline"})

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.open, self.closed, self.scripts = [], [], True, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.open or self.open.pop() != tag:
            self.closed = False

    def handle_data(self, data):
        if self.open and self.open[-1] == "script":
            self.scripts.append(data)

    def count(self, tag: str) -> int:
        return sum(t == tag for t, _ in self.tags)


def figures(text: str) -> dict[str, tuple[list, dict]]:
    """div id -> (traces, layout), decoded from each Plotly.newPlot call."""
    out = {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', text):
        decoder = json.JSONDecoder()
        traces, end = decoder.raw_decode(text, match.end())
        layout, _ = decoder.raw_decode(text, text.index("{", end))
        out[match.group(1)] = (traces, layout)
    return out


def check_plotly_page(text: str, count: int) -> dict:
    page = Page(text)
    assert page.closed and page.count("svg") == 0
    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts and not any("src" in a for a in scripts)  # nothing fetched: offline
    assert "plotly.js" in page.scripts[0].lower()
    drawn = figures(text)
    ids = [a["id"] for t, a in page.tags if t == "div" and "plotly-graph-div" in
           a.get("class", "")]
    assert ids == list(drawn) == [f"sweep-figure-{i}" for i in range(count)]
    assert HOSTILE not in text and "<b>" not in text.split("</head>")[1]
    return drawn


def test_one_axis_plotly_lines_carry_the_rows_values(tmp_path):
    tokens = [32, 256, 2048]
    spec = spec_of(tmp_path, {"llm.input_tokens": tokens}, {"simulate": None},
                   ["violation_rate"])
    rows = simulate_rows({"llm.input_tokens": tokens}, [HOSTILE, "ftf"])[::-1]  # any order
    text = html_page(spec, rows, "t.csv")
    (traces, layout), = check_plotly_page(text, 1).values()
    assert [t["name"] for t in traces] == ["ftf", html.escape(HOSTILE, quote=False)]
    for trace, policy in zip(traces, ["ftf", HOSTILE]):
        mine = sorted((r for r in rows if r["policy"] == policy),
                      key=lambda r: r["llm.input_tokens"])
        assert trace["x"] == tokens
        assert trace["y"] == pytest.approx([100 * r["violation_rate"] for r in mine])
        assert "meta" not in trace  # a line's meta would make its name a template
    assert layout["xaxis"]["type"] == "log"  # 32 to 2048
    assert "violation_rate (%)" in text
    assert html_page(spec, rows, "t.csv") == text  # the same page every time


def test_two_axes_plotly_heatmaps_one_per_policy(tmp_path):
    axes = {"llm.input_tokens": [32, 64, 128], "od.fps": [30, 60]}
    spec = spec_of(tmp_path, axes, {"simulate": None}, ["violation_rate"])
    rows = simulate_rows(axes, ["fcfs-dyn", "ftf"])
    drawn = check_plotly_page(html_page(spec, rows), 2)
    for (traces, layout), policy in zip(drawn.values(), ["fcfs-dyn", "ftf"]):
        (heat,) = traces
        assert heat["type"] == "heatmap" and heat["x"] == ["32", "64", "128"]
        assert heat["y"] == ["30", "60"] and layout["yaxis"]["autorange"] == "reversed"
        for j, fps in enumerate(axes["od.fps"]):
            for i, tokens in enumerate(axes["llm.input_tokens"]):
                (row,) = [r for r in rows if r["policy"] == policy
                          and (r["llm.input_tokens"], r["od.fps"]) == (tokens, fps)]
                assert heat["z"][j][i] == pytest.approx(100 * row["violation_rate"])


def test_plotly_verdict_map_colours_each_verdict(tmp_path):
    spec = spec_of(tmp_path, {"mapping": ["a", HOSTILE]}, {"check": None}, ["verdict"])
    rows = [{"point": i, "scenario": "scenario_a", "mapping": m, "command": "check",
             "policy": p, "error": "boom" if (i, p) == (1, "ftf") else None,
             "verdict": v} for i, m in enumerate(["a", HOSTILE])
            for p, v in (("ftf", "no"), ("optimal", "yes"))]
    text = html_page(spec, rows)
    (traces, _), = check_plotly_page(text, 1).values()
    (heat,) = traces
    names = list(VERDICT_COLOURS)
    assert heat["x"] == ["a", html.escape(HOSTILE, quote=False)]
    assert heat["y"] == ["ftf", "optimal"]
    assert heat["text"] == [["no", "failed"], ["yes", "yes"]]
    colours = dict(zip(names, [c for _, c in heat["colorscale"][::2]]))
    assert colours == VERDICT_COLOURS
    assert heat["z"] == [[names.index("no"), names.index("failed")], [names.index("yes")] * 2]
    assert heat["zmin"] < 0 < len(names) - 1 < heat["zmax"]  # each code mid-step
    assert "point 1 (check): boom" in text  # the failed run listed


def test_without_plotly_the_page_is_svg_with_no_script(tmp_path, without_plotly):
    tokens = [32, 256, 2048]
    spec = spec_of(tmp_path, {"llm.input_tokens": tokens}, {"simulate": None},
                   ["violation_rate"])
    text = html_page(spec, simulate_rows({"llm.input_tokens": tokens}, [HOSTILE, "ftf"]))
    page = Page(text)
    assert page.closed and page.count("script") == 0 and "Plotly" not in text
    assert page.count("svg") == 1 and page.count("polyline") == 2
    assert HOSTILE not in text and html.escape(HOSTILE) in text
    assert "<b>" not in text and html.escape("s <b>") in text


@pytest.mark.parametrize("plotly", [True, False])
def test_both_paths_escape_the_sweep_name_and_description(tmp_path, request, plotly):
    if not plotly:
        request.getfixturevalue("without_plotly")
    spec = spec_of(tmp_path, {"llm.input_tokens": [32, 64]}, {"simulate": None},
                   ["violation_rate"])
    text = html_page(spec, simulate_rows({"llm.input_tokens": [32, 64]}, ["ftf"]))
    assert "<title>Sweep s &lt;b&gt;</title>" in text and "about &lt;i&gt;" in text
    assert ("Plotly.newPlot" in text) is plotly


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_chromium_draws_every_figure_and_shows_user_text_as_text(tmp_path):
    """Headless Chromium without network: Plotly draws each figure ('main-svg' layers in
    the DOM), no script error, and the hostile name is text in the legend, never an
    element."""
    tokens = [32, 256, 2048]
    spec = spec_of(tmp_path, {"llm.input_tokens": tokens}, {"simulate": None},
                   ["violation_rate"])
    page = tmp_path / "sweep.html"
    page.write_text(html_page(spec, simulate_rows({"llm.input_tokens": tokens},
                                                  [HOSTILE, "ftf"])))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    dom, log = done.stdout, done.stderr
    assert dom.count('class="main-svg"') >= 1 and 'class="legendtext"' in dom
    assert "Uncaught" not in log
    legend = re.findall(r'class="legendtext"[^>]*>(.*?)</text>', dom)
    # the DOM serializes the text node escaped: the name is shown exactly as it is
    assert html.escape(HOSTILE, quote=False) in legend
    assert "<img" not in dom.split("</script>")[-1]
