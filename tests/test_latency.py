"""Latency database: the shipped table honours the paper; loading rejects malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtgen_opt.errors import InputError
from rtgen_opt.model.latency import Curve, SeqLenOutOfRange, builtin_dbs, load_db
from tests.conftest import run_cli

DB = load_db(builtin_dbs()["ryzen_ai_9_365"])


def stage_ms(model, stage, backend, seq_len=None):
    return float(DB.layer_ms(model, stage, backend, [seq_len or 0]).sum())


@pytest.mark.parametrize("n", [1024, 2048, 4096])
def test_npu_prefill_three_times_faster_than_gpu_for_long_prompts(n):
    ratio = stage_ms("llama3.2-1b", "prefill", "gpu", n) / stage_ms("llama3.2-1b", "prefill", "npu", n)
    assert ratio == pytest.approx(3.0, rel=0.10)


@pytest.mark.parametrize("ctx", [16, 256, 1024, 2048, 4096, 8192])
def test_gpu_decode_seven_and_a_half_times_faster_than_npu(ctx):
    ratio = stage_ms("llama3.2-1b", "decode", "npu", ctx) / stage_ms("llama3.2-1b", "decode", "gpu", ctx)
    assert ratio == pytest.approx(7.5, rel=0.10)


def test_one_llm_layer_is_the_papers_98_ms_and_longer_than_a_frame():
    layers = DB.layer_ms("llama3.2-1b", "prefill", "npu", [4096])[0]
    assert layers[0] == pytest.approx(98.62, abs=0.05)
    assert layers.min() > 1000 / 60


def test_llm_runs_on_gpu_and_npu_only_vision_everywhere():
    for stage in ("prefill", "decode"):
        assert DB.backends_for("llama3.2-1b", stage) == ("gpu", "npu")
    for model in ("gte-base", "yolov3", "rcan", "pointpainting-seg"):
        assert DB.backends_for(model, "frame") == ("cpu", "gpu", "npu")


@pytest.mark.parametrize("model, fps", [("yolov3", 60), ("rcan", 60), ("pointpainting-seg", 30)])
def test_each_vision_model_alone_meets_its_frame_rate_on_its_best_backend(model, fps):
    assert min(stage_ms(model, "frame", b) for b in DB.backends) < 1000 / fps


def test_every_row_says_where_its_number_comes_from():
    assert all(r["source"].startswith("derived") for r in DB.rows)


@given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0.01, 1e4)), min_size=2,
                max_size=8, unique_by=lambda p: p[0]))
def test_interpolation_is_linear_and_monotone_where_the_table_is(points):
    points.sort()
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.sort([p[1] for p in points])  # a non-decreasing table
    curve = Curve(xs, ys[:, None])
    grid = np.linspace(xs[0], xs[-1], 57)
    values = curve.at(grid)[:, 0]
    assert np.all(np.diff(values) >= -1e-9 * ys.max())
    assert np.allclose(curve.at(xs)[:, 0], ys)  # exact at listed points
    mid = (xs[0] + xs[1]) / 2
    assert curve.at([mid])[0, 0] == pytest.approx((ys[0] + ys[1]) / 2)


def test_outside_the_listed_range_is_an_error_not_an_extrapolation():
    with pytest.raises(SeqLenOutOfRange, match="16..4096"):
        DB.layer_ms("llama3.2-1b", "prefill", "npu", [5000])


HEADER = "model,stage,backend,seq_len,layers,latency_ms,layer,source\n"
GOOD = ("m,frame,npu,,2,4.0,,derived\n"
        "llm,prefill,npu,16,1,5.0,,derived\nllm,prefill,npu,32,1,6.0,,derived\n"
        "llm,decode,npu,16,1,1.0,,derived\n")

MALFORMED = [
    ("missing column", "model,stage,backend,seq_len,layers,source\nm,frame,npu,,1,x\n", "header"),
    ("unknown column", HEADER.strip() + ",color\n" + "m,frame,npu,,1,4,,x,red\n", "unknown color"),
    ("negative latency", HEADER + "m,frame,npu,,1,-4,,x\n", "line 2, latency_ms"),
    ("zero latency", HEADER + "m,frame,npu,,1,0,,x\n", "line 2, latency_ms"),
    ("not a number", HEADER + "m,frame,npu,,1,fast,,x\n", "line 2, latency_ms"),
    ("nan", HEADER + "m,frame,npu,,1,nan,,x\n", "line 2, latency_ms"),
    ("duplicate row", HEADER + "m,frame,npu,,1,4,,x\nm,frame,npu,,1,5,,x\n", "line 3"),
    ("unknown stage", HEADER + "m,train,npu,,1,4,,x\n", "line 2, stage"),
    ("prefill without seq_len", HEADER + "l,prefill,npu,,1,4,,x\nl,decode,npu,16,1,1,,x\n",
     "line 2, seq_len"),
    ("seq_len on some rows only", HEADER + "m,frame,npu,,1,4,,x\nm,frame,npu,16,1,5,,x\n",
     "seq_len"),
    ("layers disagree", HEADER + "m,frame,npu,,2,4,,x\nm,frame,gpu,,3,5,,x\n", "line 3, layers"),
    ("layer index too large", HEADER + "m,frame,npu,,2,4,2,x\n", "line 2, layer"),
    ("a layer missing", HEADER + "m,frame,npu,,3,4,0,x\nm,frame,npu,,3,4,1,x\n",
     "missing layers [2]"),
    ("whole and per-layer mixed", HEADER + "m,frame,npu,,2,4,,x\nm,frame,npu,,2,4,0,x\n",
     "not both"),
    ("LLM without decode", HEADER + "l,prefill,npu,16,1,4,,x\n", "prefill and decode"),
    ("empty source", HEADER + "m,frame,npu,,1,4,,\n", "line 2, source"),
    ("fractional layers", HEADER + "m,frame,npu,,1.5,4,,x\n", "line 2, layers"),
    # a sign is not "not a decimal number": the message states the real limit
    ("minus ten", HEADER + "m,frame,npu,,1,-10,,x\n",
     "line 2, latency_ms: expected a positive number, got '-10'"),
    ("negative layers", HEADER + "m,frame,npu,,-1,4,,x\n",
     "line 2, layers: expected a positive integer, got '-1'"),
    ("no rows", HEADER, "at least one latency row"),
]


@pytest.mark.parametrize("case, text, where", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_database_is_a_clear_error(tmp_path, capsys, case, text, where):
    path = tmp_path / "db.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=None) as info:
        load_db(path)
    assert str(path) in str(info.value) and where in str(info.value)
    code, out, err = run_cli(["db", "show", "--db", str(path)], capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("rtgen-opt: error: ") and where in err


def test_good_small_database_loads_and_interpolates(tmp_path):
    path = tmp_path / "db.csv"
    path.write_text(HEADER + GOOD)
    db = load_db(path)
    assert db.is_llm("llm") and not db.is_llm("m")
    assert db.layer_ms("m", "frame", "npu", [0]).tolist() == [[2.0, 2.0]]  # uniform split
    assert db.layer_ms("llm", "prefill", "npu", [24])[0, 0] == pytest.approx(5.5)


@pytest.mark.parametrize("kind", ["folder", "dangling link", "negative"])
def test_a_bad_transfers_file_is_an_error_not_ignored(tmp_path, capsys, kind):
    """transfers.csv as a folder (or a link to nothing) was skipped: the database loaded
    without its transfer costs and nobody was told."""
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "latency.csv").write_text(HEADER + GOOD + "m,frame,gpu,,2,4.0,,derived\n")
    transfers = folder / "transfers.csv"
    if kind == "folder":
        transfers.mkdir()
    elif kind == "dangling link":
        transfers.symlink_to(tmp_path / "nowhere.csv")
    else:
        transfers.write_text("from_backend,to_backend,latency_ms\nnpu,gpu,-10\n")
    with pytest.raises(InputError, match="transfers.csv"):
        load_db(folder)
    code, out, err = run_cli(["db", "show", "--db", str(folder)], capsys)
    assert code == 2 and out == "" and "transfers.csv" in err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    if kind == "negative":
        assert "expected a non-negative number, got '-10'" in err


def test_transfers_are_read_per_pair_and_model(tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "latency.csv").write_text(HEADER + GOOD + "m,frame,gpu,,2,4.0,,derived\n")
    (folder / "transfers.csv").write_text("from_backend,to_backend,latency_ms,model\n"
                                          "npu,gpu,0.5,\nnpu,gpu,2.0,m\n")
    db = load_db(folder)
    assert db.transfer_ms("m", "npu", "gpu") == 2.0
    assert db.transfer_ms("llm", "npu", "gpu") == 0.5
    assert db.transfer_ms("llm", "gpu", "npu") == 0.0
