"""Measured points -> rows of ``latency.csv``, merged into the output database, plus its README.

Merging replaces the rows of every profiled (model, backend) pair and keeps the rest, so a
database can gather its CPU rows on one run and its NPU rows on another. The merged table
is validated by the ordinary loader before it replaces the old one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import platform
import sys
import tempfile
from pathlib import Path

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.latency import load_db
from rtgen_opt.output import write_file
from rtgen_opt.safeload import read_limited

MAX_README_BYTES = 16 * 2**20  # a profile run adds a page; this is thousands of runs
COLUMNS = ("model", "stage", "backend", "seq_len", "layers", "latency_ms", "layer",
           "latency_p99_ms", "latency_min_ms", "latency_max_ms", "samples", "source")


def point_rows(points, measured: dict[str, dict], backends: dict[str, str],
               llm_layers: dict[str, int]) -> list[dict]:
    """Database rows: one per frame point; one per decoder layer for LLM points, the last
    layer carrying the LM head (timed separately, once per provider) when there is one."""
    rows = []
    for point in points:
        record = measured[point.key]
        backend = backends[point.provider]
        if point.stage == "frame":
            rows.append(_row(point.model, "frame", backend, point.seq_len, 1, None, record))
        elif point.stage in ("prefill", "decode"):
            layers = llm_layers[point.model]
            head = measured.get(f"{point.model}|{point.provider}|head|")
            for layer in range(layers):
                last = head if layer == layers - 1 else None
                rows.append(_row(point.model, point.stage, backend, point.seq_len, layers,
                                 layer, record, last))
    return rows


def _row(model, stage, backend, seq_len, layers, layer, record, head=None) -> dict:
    median, p99 = record["median_ms"], record["p99_ms"]
    low, high = record.get("min_ms"), record.get("max_ms")  # (absent in older records)
    source, samples = record["source"], record["samples"]
    if head is not None:  # p99 of a sum <= sum of p99s: the conservative side
        median, p99 = median + head["median_ms"], p99 + head["p99_ms"]
        low = None if low is None or head.get("min_ms") is None else low + head["min_ms"]
        high = None if high is None or head.get("max_ms") is None else high + head["max_ms"]
        samples = min(samples, head["samples"])
        source += " + final norm and LM head timed separately (sum of medians; of p99s)"
    return {"model": model, "stage": stage, "backend": backend,
            "seq_len": "" if seq_len is None else seq_len, "layers": layers,
            "latency_ms": f"{median:.6g}", "layer": "" if layer is None else layer,
            "latency_p99_ms": f"{p99:.6g}", "samples": samples, "source": source,
            # .6g rounds monotonically: min <= median <= p99 <= max survive it
            "latency_min_ms": "" if low is None else f"{low:.6g}",
            "latency_max_ms": "" if high is None else f"{high:.6g}"}


def merge_and_write(out: Path, rows: list[dict]) -> tuple[int, int]:
    """Write ``out/latency.csv``: new rows plus the old rows of other (model, backend) pairs,
    validated by the loader (on a private copy) before the one atomic writer replaces the
    old table (a link at its path is replaced, not followed).

    Returns (rows written, old rows kept).
    """
    target = out / "latency.csv"
    replaced = {(r["model"], r["backend"]) for r in rows}
    kept = [r for r in _existing_rows(target) if (r["model"], r["backend"]) not in replaced]
    text = _csv_text(kept + rows)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as private:
        copy = Path(private) / "latency.csv"
        copy.write_text(text, encoding="utf-8")
        try:
            load_db(copy, name=out.name)
        except InputError as exc:
            raise InputError(str(target), "", "profiled rows that fit the database they "
                             "merge into", str(exc)) from None
    write_file(str(target), text)
    return len(kept) + len(rows), len(kept)


def _existing_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    load_db(path)  # refuse to merge into a table that is already invalid
    text = read_limited(path, str(path), "a CSV file", limits.MAX_DB_BYTES)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") if row.get(c) is not None else "" for c in COLUMNS})
    return buffer.getvalue()


def append_readme(out: Path, request, summary: list[dict]) -> None:
    """Record the machine, the command and the measured figures in ``out/README.md``."""
    import onnxruntime

    from .providers import cpu_name, logical_cpus

    path = out / "README.md"
    text = (read_limited(path, str(path), "a README", MAX_README_BYTES) if path.is_file()
            else _readme_header(out.name))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    providers = "; ".join(
        f"{p} -> {request.backends[p]}" + (f" ({', '.join(f'{k}={v}' for k, v in o.items())})"
                                           if o else "")
        for p, o in request.options.items())
    lines = [f"\n## Profile run {now}\n", f"    {request.command}\n",
             f"- machine: {cpu_name()}, {logical_cpus()} logical CPUs, {platform.platform()}",
             (f"- ONNX Runtime {onnxruntime.__version__}, Python {sys.version.split()[0]}; "
              f"providers: {providers}"),
             (f"- {request.threads} intra-op threads; {request.warmup} warm-up then "
              f"{request.runs} timed runs per point; inputs random"), ""]
    lines += ["| model | stage | backend | seq_len | median ms | p99 ms | samples | unit |",
              "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['model']} | {s['stage']} | {s['backend']} | "
                     f"{'' if s['seq_len'] is None else s['seq_len']} | {s['median_ms']:.3f} | "
                     f"{s['p99_ms']:.3f} | {s['samples']} | {s['unit']} |")
    write_file(str(path), text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def _readme_header(name: str) -> str:
    return (f"# Latency database {name}\n\n"
            "Measured with `rtgen-opt db profile` (ONNX Runtime). `latency_ms` is the median "
            "and `latency_p99_ms` the 99th percentile of `samples` timed runs (with few runs "
            "the p99 is close to the maximum), `latency_min_ms` and `latency_max_ms` their "
            "range (what timing-uncertainty analyses use); `source` says per row exactly what was timed. "
            "LLM rows are per decoder layer; the last layer also carries the final norm and "
            "LM head. Each profile run below replaced the rows of the models and backends it "
            "measured and kept the others.\n")
