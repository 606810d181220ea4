"""The rest of issue 27's readers and writers: bound certificates through the strict reader
(regular files only, size before parsing, each key once, no NaN, sizes the task set can
use), ONNX models whose external data lies outside their folder, and `db profile`'s own
files (README, partial results) never written through a planted link."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import BASE_SCENARIO, run_cli

REPO = Path(__file__).resolve().parent.parent
needs_ort = pytest.mark.skipif(find_spec("onnxruntime") is None or find_spec("onnx") is None,
                               reason="needs the [profile] extra (onnx, onnxruntime)")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    """A valid Lagrangian certificate of the tiny scenario (and the scenario beside it)."""
    folder = tmp_path_factory.mktemp("cert")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(copy.deepcopy(BASE_SCENARIO)))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, _, err = run_cli(["solve", "tiny.yaml", "--time-limit", "2s", "--bound-out",
                                "cert.json"], _NoCapture())
    finally:
        os.chdir(cwd)
    assert code == 0, err
    data = json.loads((folder / "cert.json").read_text())
    assert data["kind"] == "lagrangian"
    return folder / "cert.json"


class _NoCapture:  # run_cli outside a test: nothing captured to read back
    def readouterr(self):
        return "", ""


def verify(path: Path, capsys, *extra) -> tuple[int, str]:
    code, _, err = run_cli([*extra, "verify-bound", str(path),
                            str(path.parent / "tiny.yaml")], capsys)
    return code, err


def altered(certificate: Path, tmp_path: Path, change) -> Path:
    data = json.loads(certificate.read_text())
    change(data)
    path = tmp_path / "cert.json"
    path.write_text(json.dumps(data))
    (tmp_path / "tiny.yaml").write_text((certificate.parent / "tiny.yaml").read_text())
    return path


def test_the_valid_certificate_still_verifies(certificate, capsys):
    assert verify(certificate, capsys) == (0, "")


def test_a_certificate_key_given_twice_is_refused(certificate, tmp_path, capsys):
    path = altered(certificate, tmp_path, lambda d: None)
    text = path.read_text()
    path.write_text(text[:-1] + ', "value": 1e9}')  # last one wins, for json.loads
    code, err = verify(path, capsys)
    assert code == 2 and "each key once" in err


def test_a_certificate_with_nan_is_refused(certificate, tmp_path, capsys):
    path = altered(certificate, tmp_path, lambda d: d.update(value=float("nan")))
    code, err = verify(path, capsys)
    assert code == 2 and "finite JSON numbers" in err


def test_a_certificate_is_refused_by_its_size_before_parsing(certificate, tmp_path, capsys):
    """At --max-memory 128MiB a certificate may have 4 MiB (parsed JSON is up to ~30x)."""
    path = altered(certificate, tmp_path, lambda d: d.update(method="x" * 5 * 2**20))
    code, err = verify(path, capsys, "--max-memory", "128MiB")
    assert code == 2 and "at most 4.0 MiB" in err


def test_a_certificate_claiming_a_billion_ticks_is_refused_in_bounded_memory(certificate,
                                                                             tmp_path):
    """num_ticks tiles the stored period: 3 x 10**8 ticks took 23 GB (killed by the OOM
    killer) under --max-memory 1GiB."""
    def more_ticks(data):
        data["lagrangian"]["num_ticks"] = 3 * 10**8

    path = altered(certificate, tmp_path, more_ticks)
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    done = subprocess.run([sys.executable, "-c", "from rtgen_opt.cli import main; main()",
                           "--max-memory", "1GiB", "verify-bound", str(path), "tiny.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          preexec_fn=cap, check=False,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "lagrangian.num_ticks" in done.stderr


@pytest.mark.parametrize("blocks, field", [
    ({"tick_us": 500, "touched": ["gpu"] * 30, "types": [], "blocks": []}, "blocks.touched"),
    ({"tick_us": 0, "touched": ["gpu"], "types": [], "blocks": []}, "blocks.tick_us"),
    ({"tick_us": 500, "touched": ["gpu"], "blocks": [], "types": [{
        "length": 1000, "quantum": 84, "levels": 12, "damage": [], "full": {}, "prefix": {},
        "suffix": {}, "frames": [[0, 1000, [100, 100, 100], 1.0]] * 12}]},
     "blocks.types[0]"),
])
def test_a_block_certificate_cannot_ask_for_exponential_work(certificate, tmp_path, capsys,
                                                              blocks, field):
    path = altered(certificate, tmp_path, lambda d: d.update(kind="blocks", blocks=blocks))
    code, err = verify(path, capsys)
    assert code == 2 and f"{field}: expected" in err


def test_a_certificate_that_is_a_named_pipe_is_refused_without_waiting(certificate,
                                                                       tmp_path):
    os.mkfifo(tmp_path / "cert.json")
    (tmp_path / "tiny.yaml").write_text((certificate.parent / "tiny.yaml").read_text())
    done = subprocess.run([sys.executable, "-c", "from rtgen_opt.cli import main; main()",
                           "verify-bound", "cert.json", "tiny.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "regular file" in done.stderr


def test_write_realization_replaces_a_planted_link(tmp_path):
    from rtgen_opt.model.realization import nominal, write_realization
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "r.json").symlink_to(victim)
    ts = build_taskset(load_scenario("scenario_a"), None)
    write_realization(tmp_path / "r.json", ts, nominal(ts), "scenario_a")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "r.json").is_symlink()


# ----------------------------------------------------------------- ONNX external data


def external_model(folder: Path, location: str, where: str = "initializer") -> Path:
    """An Add whose weight's data is "external", at ``location``: as an initializer, a
    Constant node's attribute, or inside an If's branch."""
    from onnx import TensorProto, helper, numpy_helper, save

    weight = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    if where == "initializer":
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y],
                                  [weight])
    else:
        constant = helper.make_node("Constant", [], ["w"], value=weight)
        body = [constant, helper.make_node("Add", ["x", "w"], ["y"])]
        if where == "attribute":
            graph = helper.make_graph(body, "g", [x], [y])
        else:
            branch = helper.make_graph(body, "b", [], [y])
            flag = numpy_helper.from_array(np.array(True), "flag")
            graph = helper.make_graph([helper.make_node(
                "If", ["flag"], ["y"], then_branch=branch, else_branch=branch)], "g", [x], [y],
                [flag])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    save(model, str(path))
    return path


@needs_ort
@pytest.mark.parametrize("location, where", [
    ("../secret.bin", "initializer"), ("ABSOLUTE", "initializer"), ("link.bin", "initializer"),
    ("../secret.bin", "attribute"), ("../secret.bin", "subgraph")])
def test_db_profile_refuses_external_data_outside_the_models_folder(tmp_path, capsys,
                                                                   location, where):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(os.urandom(64))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "link.bin").symlink_to(secret)
    location = str(secret) if location == "ABSOLUTE" else location
    model = external_model(folder, location, where)
    code, out, err = run_cli(["db", "profile", str(model), "--out", str(tmp_path / "db"),
                              "--runs", "1", "--warmup", "0"], capsys)
    assert code == 2 and out == ""
    assert "tensor w: expected external data in a file inside the model's folder" in err
    assert not (tmp_path / "db").exists()


@needs_ort
def test_db_profile_takes_external_data_inside_the_models_folder(tmp_path, capsys):
    folder = tmp_path / "m"
    model = external_model(folder, "weights.bin")
    (folder / "weights.bin").write_bytes(np.zeros(4, np.float32).tobytes())
    code, _, err = run_cli(["db", "profile", str(model), "--out", str(tmp_path / "db"),
                            "--runs", "1", "--warmup", "0"], capsys)
    assert code == 0, err


# ----------------------------------------------------------------- db profile's own files


def tiny_model(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


@needs_ort
@pytest.mark.parametrize("name", ["README.md", "latency.csv"])
def test_db_profile_replaces_a_link_planted_in_its_output_folder(tmp_path, capsys, name):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / name).symlink_to(victim)
    if name == "latency.csv":  # a link to a valid table: merged, then replaced
        victim.write_text("model,stage,backend,seq_len,layers,latency_ms,source\n"
                          "old,frame,cpu,,1,2,x\n")
    before = victim.read_text()
    code, _, err = run_cli(["db", "profile", str(tiny_model(tmp_path / "t.onnx")), "--out",
                            str(tmp_path / "db"), "--runs", "1", "--warmup", "0"], capsys)
    assert code == 0, err
    assert victim.read_text() == before and not (tmp_path / "db" / name).is_symlink()


@needs_ort
def test_db_profile_never_appends_its_partial_results_through_a_link(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / ".profile-partial.jsonl").symlink_to(tmp_path / "absent.txt")
    code, _, err = run_cli(["db", "profile", str(tiny_model(tmp_path / "t.onnx")), "--out",
                            str(tmp_path / "db"), "--runs", "1", "--warmup", "0"], capsys)
    assert code == 2 and ".profile-partial.jsonl" in err and "symbolic link" in err
    assert not (tmp_path / "absent.txt").exists()


@needs_ort
def test_a_planted_partial_record_is_measured_again_not_trusted(tmp_path, capsys,
                                                                 monkeypatch):
    """A record whose figures are not numbers used to reach the table's formatting
    (exit 70): now it ends the resume and the point is measured."""
    from rtgen_opt.profile import profiler

    model = tiny_model(tmp_path / "t.onnx")
    seen = {}
    real = profiler._resume

    def spy(partial, fingerprint, keys):
        seen["settings"], seen["keys"] = fingerprint, keys
        return real(partial, fingerprint, keys)

    monkeypatch.setattr(profiler, "_resume", spy)
    args = ["db", "profile", str(model), "--out", str(tmp_path / "db"), "--runs", "1",
            "--warmup", "0"]
    assert run_cli(args, capsys)[0] == 0
    settings = json.loads(json.dumps(seen["settings"]))
    planted = [{"settings": settings}, {"key": next(iter(seen["keys"])), "median_ms": "x",
                                        "p99_ms": 1, "samples": 1, "source": "planted"}]
    (tmp_path / "db" / ".profile-partial.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in planted))
    code, out, err = run_cli([*args, "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["points"][0]["source"] != "planted"


# ----------------------------------------------------------------- messages leak no file


def test_a_request_trace_naming_another_file_does_not_show_its_first_line(tmp_path, capsys):
    """A scenario may name any readable file as its trace; the header error used to print
    the file's first line (/etc/passwd's, or /proc/self/environ's variables)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("api_token=hunter2\nmore\n")
    data = copy.deepcopy(BASE_SCENARIO)
    data["tasks"][1]["arrivals"] = {"file": str(secret)}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    code, _, err = run_cli(["taskset", str(tmp_path / "s.yaml")], capsys)
    assert code == 2 and f"{secret}: header" in err
    assert "hunter2" not in err and "api_token" not in err
