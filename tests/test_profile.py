"""`db profile` (ONNX Runtime) and `--latency median|p99`.

Models are tiny graphs built here with onnx.helper and timed with few runs: the tests check
what the profiler writes and how it behaves, never how fast this machine is (the one ratio
test compares two models on the same machine, loosely).
"""

from __future__ import annotations

import csv
import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rtgen_opt.model.latency import load_db
from tests.conftest import run_cli

needs_ort = pytest.mark.skipif(find_spec("onnxruntime") is None or find_spec("onnx") is None,
                               reason="needs the [profile] extra (onnx, onnxruntime)")

TINY_ARCH = {  # attention-heavy at long contexts, so decode visibly grows with context
    "name": "tiny-llm", "hidden_size": 256, "num_attention_heads": 4,
    "num_key_value_heads": 4, "head_dim": 64, "intermediate_size": 256,
    "num_hidden_layers": 3, "vocab_size": 512, "weight_precision": "fp32",
}


def mlp_model(path: Path, width: int, depth: int = 2, seq: int | str = 64) -> Path:
    """``depth`` square MatMul+Relu layers on [batch, seq, width] inputs."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "x"
    for i in range(depth):
        weight = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        weights.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        x = f"r{i}"
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    shape = ["batch", seq, width]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, shape)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


def pairs_model(path: Path) -> Path:
    """Reshapes its [n] input into pairs: loads for any n, runs only for even n."""
    from onnx import TensorProto, helper, numpy_helper, save

    shape = numpy_helper.from_array(np.array([-1, 2], np.int64), "pairs")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "pairs"], ["y"])], "pairs",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


def rows_of(db: Path) -> list[dict]:
    with (db / "latency.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def profile(args: list[str], capsys) -> tuple[int, dict | None, str]:
    code, out, err = run_cli(["db", "profile", *args, "--format", "json"], capsys)
    return code, (json.loads(out) if code == 0 else None), err


# ------------------------------------------------------------------ vision models


@needs_ort
def test_profile_writes_a_database_that_db_show_reads_and_a_scenario_runs_on(
        tmp_path, capsys):
    model = mlp_model(tmp_path / "det.onnx", 64)
    db = tmp_path / "mydb"
    code, data, _ = profile([str(model), "--out", str(db), "--runs", "6", "--warmup", "1"],
                            capsys)
    assert code == 0
    [row] = rows_of(db)
    assert (row["model"], row["stage"], row["backend"], row["layers"]) == ("det", "frame",
                                                                          "cpu", "1")
    assert 0 < float(row["latency_ms"]) <= float(row["latency_p99_ms"])
    # the range of the timed runs, beside median and p99
    assert (0 < float(row["latency_min_ms"]) <= float(row["latency_ms"])
            <= float(row["latency_p99_ms"]) <= float(row["latency_max_ms"]))
    assert row["samples"] == "6"
    assert "ONNX Runtime" in row["source"] and "CPUExecutionProvider" in row["source"]
    assert "intra-op threads" in row["source"] and "median of 6 runs" in row["source"]
    readme = (db / "README.md").read_text()
    assert "rtgen-opt db profile" in readme and "| det | frame | cpu |" in readme
    assert not (db / ".profile-partial.jsonl").exists()
    assert data["points"][0]["samples"] == 6

    code, out, _ = run_cli(["db", "show", "--db", str(db), "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["rows"][0]["model"] == "det"
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"latency_db": "mydb", "horizon": "200ms", "tasks": [
        {"name": "det", "model": "det", "fps": 30}]}))
    code, out, _ = run_cli(["simulate", str(scenario), "--policy", "edf-dyn", "--format",
                            "json"], capsys)
    assert code == 0 and json.loads(out)["runs"][0]["tasks"]["det"]["violations"] == 0
    code, out, _ = run_cli(["check", str(scenario), "--policy", "edf-dyn", "--latency",
                            "p99", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["schedulable"] is True


@needs_ort
def test_merging_replaces_the_profiled_model_and_backend_and_keeps_the_rest(tmp_path, capsys):
    db = tmp_path / "db"
    db.mkdir()
    old = ("model,stage,backend,seq_len,layers,latency_ms,source\n"
           "det,frame,cpu,,1,999,old cpu\n"     # replaced
           "det,frame,npu,,1,2.5,old npu\n"     # kept: another backend
           "seg,frame,cpu,,1,7.5,old seg\n")    # kept: another model
    (db / "latency.csv").write_text(old)
    (db / "README.md").write_text("# my laptop\n\nhand-written notes\n")
    model = mlp_model(tmp_path / "det.onnx", 32)
    code, data, _ = profile([str(model), "--out", str(db), "--runs", "3"], capsys)
    assert code == 0 and data["rows_kept"] == 2 and data["rows_written"] == 3
    by_key = {(r["model"], r["backend"]): r for r in rows_of(db)}
    assert set(by_key) == {("det", "cpu"), ("det", "npu"), ("seg", "cpu")}
    assert by_key["det", "npu"]["source"] == "old npu" and by_key["seg", "cpu"]["latency_ms"] \
        == "7.5"
    assert by_key["det", "cpu"]["source"].startswith("measured") and \
        float(by_key["det", "cpu"]["latency_ms"]) < 999
    assert by_key["det", "npu"]["latency_p99_ms"] == ""  # old rows have no p99
    assert "hand-written notes" in (db / "README.md").read_text()  # appended, not replaced
    assert load_db(db).curves["det", "frame", "npu"].layer_ms[0][0] == 2.5


@needs_ort
def test_a_model_with_four_times_the_work_measures_clearly_slower(tmp_path):
    """MatMul work grows with width^2: width 1024 is 4x the MACs of 512. A loose ratio of
    the two medians on the same machine, not a timing threshold."""
    from rtgen_opt.profile.timing import (
        describe_inputs,
        make_feeds,
        make_session,
        resolve_shapes,
        time_runs,
    )

    medians = []
    for width in (512, 1024):
        path = mlp_model(tmp_path / f"w{width}.onnx", width, depth=2, seq=64)
        inputs = describe_inputs(path)
        feeds = make_feeds(inputs, resolve_shapes(str(path), inputs, {}, {}),
                           np.random.default_rng(0))
        session = make_session(str(path), "CPUExecutionProvider", {}, 1)
        medians.append(time_runs(session, feeds, warmup=2, runs=15).median_ms)
    assert medians[1] > 1.8 * medians[0]


@needs_ort
def test_encoder_sweeps_its_sequence_axis(tmp_path, capsys):
    model = mlp_model(tmp_path / "enc.onnx", 32, seq="sequence_length")
    db = tmp_path / "db"
    code, _, _ = profile([f"gte={model}", "--seq-lens", "16,64", "--out", str(db),
                          "--runs", "3"], capsys)
    assert code == 0
    assert [r["seq_len"] for r in rows_of(db)] == ["16", "64"]
    assert load_db(db).depends_on_seq_len("gte", "frame")


# ------------------------------------------------------------------ synthesised LLM layer


def test_architecture_description_of_llama_3_2_1b_ships():
    from rtgen_opt.profile.architecture import load_architecture

    arch = load_architecture("llama3.2-1b")
    assert (arch.hidden_size, arch.num_attention_heads, arch.num_key_value_heads,
            arch.intermediate_size, arch.num_hidden_layers, arch.vocab_size) == (
                2048, 32, 8, 8192, 16, 128256)
    assert arch.weight_precision == "int4" and arch.block_size == 128


@needs_ort
@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_synthesised_layer_has_the_shapes_of_the_description(precision):
    import onnxruntime as ort
    from onnx import numpy_helper

    from rtgen_opt.profile.architecture import architecture_from_dict
    from rtgen_opt.profile.decoder import decoder_layer

    arch = architecture_from_dict({**TINY_ARCH, "num_key_value_heads": 2, "intermediate_size":
                                   384, "weight_precision": precision}, "test")
    model = decoder_layer(arch)
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    for name, (k, n) in arch.layer_weight_shapes().items():
        group = next(g for g in ("attn", "mlp") if f"{g}.{name}.weight" in weights
                     or f"{g}.{name}.qweight" in weights)
        if precision == "fp32":
            assert weights[f"{group}.{name}.weight"] == (k, n)
        else:  # 4-bit: N rows of K/block blocks of block/2 bytes
            assert weights[f"{group}.{name}.qweight"] == (n, k // 32, 16)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    s, past, d = 5, 7, arch.head_dim
    feeds = {"hidden_states": np.ones((1, s, 256), np.float32),
             "past_key": np.ones((1, 2, past, d), np.float32),
             "past_value": np.ones((1, 2, past, d), np.float32),
             "attention_bias": np.zeros((1, 1, s, past + s), np.float32),
             "cos": np.ones((1, 1, s, d), np.float32), "sin": np.zeros((1, 1, s, d), np.float32)}
    out, key, value = session.run(None, feeds)
    assert out.shape == (1, s, 256) and key.shape == value.shape == (1, 2, past + s, d)


def reference_layer(w: dict, arch, x, past_k, past_v, bias, cos, sin):
    """A Llama decoder layer in numpy, written from the model's definition (oracle)."""
    def rms(v, weight):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + arch.rms_norm_eps) * weight

    def heads(v, n):  # [b, s, n*d] -> [b, n, s, d]
        return v.reshape(v.shape[0], v.shape[1], n, arch.head_dim).transpose(0, 2, 1, 3)

    def rope(v):
        half = arch.head_dim // 2
        return v * cos + np.concatenate([-v[..., half:], v[..., :half]], -1) * sin

    h = rms(x, w["input_layernorm.weight"])
    q = rope(heads(h @ w["attn.q_proj.weight"], arch.num_attention_heads))
    k = np.concatenate([past_k, rope(heads(h @ w["attn.k_proj.weight"],
                                           arch.num_key_value_heads))], 2)
    v = np.concatenate([past_v, heads(h @ w["attn.v_proj.weight"], arch.num_key_value_heads)], 2)
    group = arch.num_attention_heads // arch.num_key_value_heads
    k_full, v_full = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # head i -> i // g
    scores = q @ k_full.transpose(0, 1, 3, 2) / np.sqrt(arch.head_dim) + bias
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v_full).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], -1)
    hidden = x + context @ w["attn.o_proj.weight"]
    m = rms(hidden, w["post_attention_layernorm.weight"])
    gate = m @ w["mlp.gate_proj.weight"]
    act = gate / (1 + np.exp(-gate)) * (m @ w["mlp.up_proj.weight"])
    return hidden + act @ w["mlp.down_proj.weight"], k, v


@needs_ort
@pytest.mark.parametrize("past", [0, 6])
def test_synthesised_layer_computes_a_llama_layer(past):
    """The fp32 graph against the numpy reference: grouped-query attention, rotary
    embedding, cache and SwiGLU are wired as in the model, not just shaped like it."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from rtgen_opt.profile.architecture import architecture_from_dict
    from rtgen_opt.profile.decoder import decoder_layer

    arch = architecture_from_dict({**TINY_ARCH, "hidden_size": 64, "head_dim": 16,
                                   "num_key_value_heads": 2, "intermediate_size": 96}, "t")
    model = decoder_layer(arch, seed=3)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    rng = np.random.default_rng(5)
    s, d, kv = 4, arch.head_dim, arch.num_key_value_heads
    angles = rng.random((1, 1, s, d // 2)) * 3
    feeds = {"hidden_states": rng.standard_normal((1, s, 64)),
             "past_key": rng.standard_normal((1, kv, past, d)),
             "past_value": rng.standard_normal((1, kv, past, d)),
             "attention_bias": np.triu(np.full((s, past + s), -1e4), past + 1)[None, None],
             "cos": np.cos(np.concatenate([angles, angles], -1)),
             "sin": np.sin(np.concatenate([angles, angles], -1))}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    expected = reference_layer(weights, arch, *(feeds[k].astype(np.float64) for k in (
        "hidden_states", "past_key", "past_value", "attention_bias", "cos", "sin")))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


@needs_ort
def test_llm_prefill_rises_with_input_and_decode_with_context(tmp_path, capsys):
    arch = tmp_path / "tiny.yaml"
    arch.write_text(yaml.safe_dump(TINY_ARCH))
    db = tmp_path / "db"
    code, data, _ = profile(["--llm", f"tiny={arch}", "--seq-lens", "8,512",
                             "--context-lens", "16,16384", "--out", str(db), "--runs", "5",
                             "--threads", "1"], capsys)
    assert code == 0
    point = {(p["stage"], p["seq_len"]): p for p in data["points"]}
    assert point["prefill", 512]["median_ms"] > point["prefill", 8]["median_ms"]
    assert point["decode", 16384]["median_ms"] > point["decode", 16]["median_ms"]
    assert "synthesised from architecture description tiny-llm" in point["prefill", 8]["source"]
    rows = [r for r in rows_of(db) if r["stage"] == "prefill" and r["seq_len"] == "8"]
    assert [int(r["layer"]) for r in rows] == [0, 1, 2] and {r["layers"] for r in rows} == {"3"}
    head = point["head", None]["median_ms"]
    assert float(rows[2]["latency_ms"]) == pytest.approx(float(rows[0]["latency_ms"]) + head,
                                                         rel=1e-3)
    database = load_db(db)
    assert database.is_llm("tiny") and database.backends_for("tiny", "decode") == ("cpu",)


@needs_ort
def test_own_exported_decoder_layer_is_timed_per_stage(tmp_path, capsys):
    """A user's layer with the GenAI axis names (here: a synthesised one saved to a file)."""
    from onnx import save

    from rtgen_opt.profile.architecture import architecture_from_dict
    from rtgen_opt.profile.decoder import decoder_layer

    layer = tmp_path / "layer.onnx"
    save(decoder_layer(architecture_from_dict({**TINY_ARCH, "hidden_size": 64, "head_dim": 16},
                                              "t")), str(layer))
    db = tmp_path / "db"
    code, data, _ = profile(["--llm", f"own={layer}@5", "--seq-lens", "4,8", "--context-lens",
                             "8,32", "--out", str(db), "--runs", "2"], capsys)
    assert code == 0
    assert [(p["stage"], p["seq_len"]) for p in data["points"]] == [
        ("prefill", 4), ("prefill", 8), ("decode", 8), ("decode", 32)]  # no LM head
    assert all("from layer.onnx" in p["source"] for p in data["points"])
    rows = rows_of(db)
    assert len(rows) == 4 * 5 and {r["layers"] for r in rows} == {"5"}


def test_eta_scales_prefill_by_length_and_falls_back_to_the_mean():
    from rtgen_opt.profile.profiler import Point, estimate_seconds_left

    def point(stage, n):
        return Point("m", "CPUExecutionProvider", stage, n)

    points = [point("prefill", 128), point("prefill", 512), point("decode", 128),
              point("decode", 1024)]
    assert estimate_seconds_left(points, {}, 10) is None
    measured = {points[0].key: {"median_ms": 100.0}}
    # prefill 512: 4 x 100 ms; decodes: nothing alike measured yet, the mean (100 ms)
    assert estimate_seconds_left(points, measured, 10) == pytest.approx((400 + 200) * 10 / 1000)
    measured[points[2].key] = {"median_ms": 5.0}  # decode does not scale with context
    assert estimate_seconds_left(points, measured, 10) == pytest.approx((400 + 5) * 10 / 1000)


# ------------------------------------------------------------------ interrupt and resume


@needs_ort
def test_an_interrupted_profile_resumes_where_it_stopped(tmp_path, capsys, monkeypatch):
    from rtgen_opt.profile import profiler

    model = mlp_model(tmp_path / "enc.onnx", 16, seq="sequence_length")
    args = [f"enc={model}", "--seq-lens", "4,8,16", "--out", str(tmp_path / "db"),
            "--runs", "2"]
    real, calls = profiler.time_runs, []

    def interrupted_at_the_second_point(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(profiler, "time_runs", interrupted_at_the_second_point)
    code, _, err = profile(args, capsys)
    assert code == 130 and "rerun the same command" in err
    partial = tmp_path / "db" / ".profile-partial.jsonl"
    assert len(partial.read_text().splitlines()) == 2  # settings + the first point
    assert not (tmp_path / "db" / "latency.csv").exists()

    calls.clear()
    monkeypatch.setattr(profiler, "time_runs", lambda *a, **k: calls.append(1) or real(*a, **k))
    code, data, err = profile(args, capsys)
    assert code == 0 and len(calls) == 2 and "resuming: 1 points" in err
    assert [p["seq_len"] for p in data["points"]] == [4, 8, 16]
    assert not partial.exists()


# ------------------------------------------------------------------ bad input


@needs_ort
@pytest.mark.parametrize("case", ["missing", "not_onnx", "provider", "dynamic", "arch",
                                  "lengths", "llm_layers", "fixed_axis", "run_fails"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    good = mlp_model(tmp_path / "m.onnx", 8)
    dynamic = mlp_model(tmp_path / "d.onnx", 8, seq="frames")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 not a model")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**TINY_ARCH, "num_key_value_heads": 3}))
    args, expected = {
        "missing": ([str(tmp_path / "nope.onnx")], "no such file"),
        "not_onnx": ([str(tmp_path / "junk.onnx")], "an ONNX model file"),
        "provider": ([str(good), "--providers", "cuda"], "CUDAExecutionProvider"),
        "dynamic": ([str(dynamic)], "axis 1 'frames'"),
        "arch": (["--llm", f"x={tmp_path / 'bad.yaml'}"], "num_key_value_heads"),
        "lengths": (["--llm", "x=llama3.2-1b", "--seq-lens", "512,128"], "--seq-lens"),
        "llm_layers": (["--llm", f"x={good}"], "NAME=LAYER.onnx@16"),
        "fixed_axis": ([str(good), "--shape", "x=1x63x8"], "axis 1 = 64"),
        "run_fails": ([str(pairs_model(tmp_path / "p.onnx")), "--dim", "n=3"],
                      "inputs the model accepts"),
    }[case]
    code, out, err = run_cli(["db", "profile", *args, "--out", str(tmp_path / "db")], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert "Traceback" not in err


def test_missing_extra_is_exit_2_naming_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    code, out, err = run_cli(["db", "profile", "m.onnx", "--out", str(tmp_path)], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "pip install 'rtgen-opt[profile]'" in err and "onnxruntime not installed" in err


# ------------------------------------------------------------------ --latency p99


def write_db(path: Path, rows: str, header="model,stage,backend,seq_len,layers,latency_ms,"
             "latency_p99_ms,samples,source") -> Path:
    path.write_text(header + "\n" + rows)
    return path


def test_p99_schedules_with_the_p99_column(tmp_path):
    db = write_db(tmp_path / "db.csv", "det,frame,cpu,,2,4.0,6.0,50,measured\n"
                  "det,frame,npu,,2,1.0,1.5,50,measured\n")
    assert load_db(db).layer_ms("det", "frame", "cpu", [0]).tolist() == [[2.0, 2.0]]
    assert load_db(db, latency="p99").layer_ms("det", "frame", "cpu", [0]).tolist() == [
        [3.0, 3.0]]
    assert load_db(db, latency="p99").rows[0]["latency_ms"] == 4.0  # rows stay as stored


@given(st.lists(st.tuples(st.floats(0.01, 100), st.floats(0, 100)), min_size=2, max_size=5))
def test_p99_latencies_dominate_the_medians_everywhere(tmp_path_factory, points):
    """Rows with p99 = median + spread: every interpolated p99 latency >= the median one."""
    lines = "".join(f"enc,frame,cpu,{16 * (i + 1)},2,{m:.4f},{m + d:.4f},10,x\n"
                    for i, (m, d) in enumerate(points))
    db = write_db(tmp_path_factory.mktemp("p") / "db.csv", lines)
    lengths = np.linspace(16, 16 * len(points), 37)
    median = load_db(db).layer_ms("enc", "frame", "cpu", lengths)
    p99 = load_db(db, latency="p99").layer_ms("enc", "frame", "cpu", lengths)
    assert (p99 >= median - 1e-12).all()


@pytest.mark.parametrize("rows,header,where", [
    ("det,frame,cpu,,1,4.0,source\n", "model,stage,backend,seq_len,layers,latency_ms,source",
     ": latency_p99_ms: expected this column"),
    ("det,frame,cpu,,1,4.0,5,3,x\ndet,frame,npu,,1,4.0,,3,x\n", None,
     "line 3, latency_p99_ms: expected a value"),
    ("det,frame,cpu,,1,4.0,3.0,3,x\n", None, "line 2, latency_p99_ms: expected a 99th"),
])
def test_p99_without_a_usable_column_is_exit_2(tmp_path, capsys, rows, header, where):
    write_db(tmp_path / "db.csv", rows, *(header,) if header else ())
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"latency_db": "db.csv", "tasks": [
        {"name": "det", "model": "det", "fps": 30}]}))
    assert run_cli(["simulate", str(scenario), "--horizon", "100ms"], capsys)[0] == 0
    code, _, err = run_cli(["check", str(scenario), "--horizon", "100ms", "--policy", "ftf",
                            "--latency", "p99"], capsys)
    assert code == 2 and where in err and len(err.strip().splitlines()) == 1


def test_p99_makes_the_schedule_slower_than_median(tmp_path, capsys):
    write_db(tmp_path / "db.csv", "det,frame,cpu,,1,10.0,40.0,20,measured\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"latency_db": "db.csv", "tasks": [
        {"name": "det", "model": "det", "fps": 30}]}))
    # 10 ms fits a 33 ms frame; the p99 of 40 ms does not: the conservative gate says no
    assert run_cli(["check", str(scenario), "--horizon", "200ms", "--policy", "edf-dyn"],
                   capsys)[0] == 0
    assert run_cli(["check", str(scenario), "--horizon", "200ms", "--policy", "edf-dyn",
                    "--latency", "p99"], capsys)[0] == 1
    code, out, _ = run_cli(["simulate", str(scenario), "--horizon", "200ms", "--latency",
                            "p99", "--policy", "edf-dyn", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["runs"][0]["violation_rate"] == 1.0
