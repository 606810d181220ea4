"""Tiny hand-made latency databases and scenarios for exact, hand-computed tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import yaml

from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import TaskSet, build_taskset

HEADER = "model,stage,backend,seq_len,layers,latency_ms,layer,source\n"


def write_db(folder: Path, rows: list[str], transfers: list[str] | None = None) -> Path:
    """rows: 'model,stage,backend,seq_len,layers,latency_ms' (layer and source filled in)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latency.csv").write_text(HEADER + "".join(f"{r},,test\n" for r in rows))
    if transfers:
        (folder / "transfers.csv").write_text("from_backend,to_backend,latency_ms\n"
                                              + "".join(f"{t}\n" for t in transfers))
    return folder


def taskset(tmp: Path, db_rows: list[str], tasks: list[dict], horizon: str, *,
            transfers: list[str] | None = None, **settings) -> TaskSet:
    """Build a task set from a tiny database and scenario written under ``tmp``."""
    db = write_db(tmp / "db", db_rows, transfers)
    scenario = {"name": "tiny", "latency_db": str(db), "horizon": horizon, "tasks": tasks,
                **settings}
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return build_taskset(load_scenario(str(path)))


def ms(x) -> int:
    return int(Fraction(str(x)) * 1000)
