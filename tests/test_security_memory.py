"""Memory bounded by the input's estimate (issue 27, item 4): `layers` multiplies a
latency row by up to 100,000, and an LLM's decode steps multiply its layers again. Each
case runs the command in a process whose address space is capped, so a reader that
allocates past the estimate fails with "out of memory" instead of being answered."""

from __future__ import annotations

import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import INELIGIBLE, build_taskset

REPO = Path(__file__).resolve().parent.parent
HEADER = "model,stage,backend,seq_len,layers,latency_ms,source\n"
ADDRESS_SPACE = 3 * 2**30  # the interpreter, NumPy and OR-Tools fit; 2.4 GB more does not


def capped_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", "from rtgen_opt.cli import main; main()",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          preexec_fn=cap, check=False, env=env)


def llm_db(folder: Path, layers: int) -> Path:
    path = folder / "llm.csv"
    path.write_text(HEADER + "".join(
        f"big,{stage},gpu,{n},{layers},{ms},x\n"
        for stage, points in (("prefill", ((1, 10), (100000, 20))),
                              ("decode", ((1, 1), (100000, 2))))
        for n, ms in points))
    return path


def llm_scenario(folder: Path, **changes) -> Path:
    data = {"name": "big", "latency_db": "llm.csv", "platform": {"gpu": 1}, "horizon": "1s",
            "granularity": "model",
            "tasks": [{"name": "llm", "model": "big", "arrivals": {"times": ["0s"]},
                       "input_tokens": 16, "output_tokens": 2001}]}
    data.update(changes)
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_rows_times_layers_is_refused_naming_the_file_and_its_layers(tmp_path):
    """3,000 rows of `layers: 100000` (77 KB) took 2.4 GB in `db show`."""
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(f"m,frame,b{i},,100000,1,x\n" for i in range(3000)))
    done = capped_cli(["--max-memory", "1GiB", "db", "show", "--db", str(path)], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and f"{path}: line 2, layers" in done.stderr
    assert "2.2 GiB" in done.stderr and "out of memory" not in done.stderr
    assert "lower --max-memory" not in done.stderr


def test_whole_stage_rows_of_many_layers_cost_nothing_until_used(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(f"m,frame,b{i},,100000,1,x\n" for i in range(3000)))
    done = capped_cli(["--max-memory", "3GiB", "db", "show", "--db", str(path), "-f", "csv"],
                      tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 3001


def test_an_llm_at_model_granularity_builds_no_steps_by_layers_matrix(tmp_path):
    """2,000 decode steps x 100,000 layers was a 4.7 GB matrix under --max-memory 1GiB."""
    llm_db(tmp_path, 100_000)
    scenario = llm_scenario(tmp_path)
    done = capped_cli(["--max-memory", "1GiB", "taskset", str(scenario)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 jobs, 2001 segments" in done.stdout


def test_a_task_whose_one_job_would_not_fit_is_refused_even_without_jobs(tmp_path):
    """Every task's one-job template is built (its timing needs it), in the horizon or
    not: 20,000 tokens x 100,000 layers at layer granularity is refused, naming the task."""
    llm_db(tmp_path, 100_000)
    tasks = [{"name": "llm", "model": "big", "arrivals": {"times": ["100s"]},
              "input_tokens": 16, "output_tokens": 20001}]
    scenario = llm_scenario(tmp_path, granularity="layer", after_horizon="stop", tasks=tasks)
    done = capped_cli(["--max-memory", "1GiB", "taskset", str(scenario)], tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "task llm" in done.stderr and "per job" in done.stderr
    assert "out of memory" not in done.stderr


# ------------------------------------------------- segment sums equal the per-layer sums


def oracle_durations(table: dict, layers: int, group: int, length: int) -> list[Fraction]:
    """Per segment: interpolate every layer at ``length`` in exact arithmetic, then sum."""
    xs = sorted(table)
    lo = max(x for x in xs if x <= length)
    hi = min(x for x in xs if x >= length)
    t = Fraction(0) if hi == lo else Fraction(length - lo, hi - lo)
    per_layer = [Fraction(table[lo][i]) * (1 - t) + Fraction(table[hi][i]) * t
                 for i in range(layers)]
    return [sum(per_layer[s:s + group]) for s in range(0, layers, group)]


@settings(max_examples=25, deadline=None)
@given(layers=st.integers(1, 12), group=st.integers(1, 12), tokens=st.integers(2, 40),
       lengths=st.lists(st.integers(1, 200), min_size=1, max_size=4, unique=True),
       data=st.data())
def test_segment_durations_are_the_sums_of_the_interpolated_layers(tmp_path_factory, layers,
                                                                   group, tokens, lengths,
                                                                   data):
    folder = tmp_path_factory.mktemp("db")
    lengths = sorted(set(lengths) | {1, 200})
    ms = st.decimals("0.001", "50", places=3).map(str)
    table = {n: [data.draw(ms) for _ in range(layers)] for n in lengths}
    rows = "".join(f"llm,{stage},npu,{n},{layers},{table[n][i]},x,{i}\n"
                   for stage in ("prefill", "decode") for n in lengths for i in range(layers))
    (folder / "latency.csv").write_text(HEADER.strip() + ",layer\n" + rows)
    grain = "model" if group >= layers else f"group:{group}"
    (folder / "s.yaml").write_text(yaml.safe_dump(
        {"name": "p", "latency_db": ".", "platform": {"npu": 1}, "horizon": "1s",
         "granularity": grain, "tasks": [{"name": "l", "model": "llm", "arrivals":
                                          {"times": ["0s"]}, "input_tokens": 1,
                                          "output_tokens": min(tokens, 200)}]}))
    ts = build_taskset(load_scenario(str(folder / "s.yaml")))
    group = min(group, layers)
    expected = []
    for length in [1] + [1 + k for k in range(1, min(tokens, 200))]:
        expected += oracle_durations(table, layers, group, length)
    got = ts.seg_dur_us[:, 0]
    assert len(got) == len(expected) and (got != INELIGIBLE).all()
    exact = np.array([float(e * 1000) for e in expected])
    assert (np.abs(got - np.maximum(1, np.ceil(exact))) <= 1).all()
