"""Strict YAML and JSON loading, bounded error values and all-or-nothing output files."""

from __future__ import annotations

import os

import pytest

from rtgen_opt.errors import InputError, short_repr
from rtgen_opt.output import check_writable, write_files
from rtgen_opt.safeload import load_json, load_yaml

LAUGHS = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)])


@pytest.mark.parametrize("text, words", [
    ("fps: 30\nfps: 1000000\n", "each key once"),
    ("a: {b: 1, b: 2}\n", "each key once"),
    (LAUGHS, "aliases are expanded"),
    ("a: &a [1, *a]\n", "recursive"),
    ("a: " + "[" * 200 + "]" * 200, "nesting"),
    ("? [1, 2]\n: 3\n", "mapping key"),
    ("a: [\n", "valid YAML"),
    ("a: b\x00", "NUL"),
])
def test_hostile_yaml_is_refused_with_the_line(text, words):
    with pytest.raises(InputError) as info:
        load_yaml(text, "f.yaml")
    assert words in str(info.value) and str(info.value).startswith("f.yaml")
    assert len(str(info.value)) < 300


def test_merge_keys_and_shared_anchors_still_load():
    data = load_yaml("base: &b {fps: 30, model: m}\nt:\n  <<: *b\n  fps: 60\nu: *b\n", "f")
    assert data["t"] == {"fps": 60, "model": "m"} and data["u"] == {"fps": 30, "model": "m"}


@pytest.mark.parametrize("text, words", [
    ('{"a": 1, "a": 2}', "each key once"), ('{"a": NaN}', "finite"),
    ("[" * 100_000 + "]" * 100_000, "nesting"), ('{"a": ', "valid JSON"),
])
def test_hostile_json_is_refused(text, words):
    with pytest.raises(InputError) as info:
        load_json(text, "f.json")
    assert words in str(info.value)


def test_an_error_never_echoes_more_than_a_short_prefix_of_the_value():
    """An exponential structure (shared references): its repr would never finish."""
    value = ["lol"] * 10
    for _ in range(30):
        value = [value] * 10
    text = short_repr(value)
    assert len(text) <= 80 and text.startswith("[[[")
    message = str(InputError("f.yaml", "tasks.od.fps", "a positive number", value))
    assert len(message) < 200
    assert "\n" not in str(InputError("f", "x", "y", "a\nb\x1b" * 100))
    assert "bits" in short_repr(10**5000)


def test_outputs_are_checked_before_work(tmp_path):
    with pytest.raises(InputError, match="folder"):
        check_writable(str(tmp_path), "--trace")
    with pytest.raises(InputError, match="does not exist"):
        check_writable(str(tmp_path / "no" / "f.csv"), "--trace")
    check_writable(str(tmp_path / "f.csv"), "--trace")  # fine


def test_files_are_written_all_or_none(tmp_path):
    (tmp_path / "b.csv").mkdir()  # the second target cannot be replaced
    with pytest.raises(InputError):
        write_files({str(tmp_path / "a.csv"): "a", str(tmp_path / "b.csv"): "b"})
    assert sorted(os.listdir(tmp_path)) == ["b.csv"]  # no a.csv, no temporary file
    write_files({str(tmp_path / "a.csv"): "a", str(tmp_path / "c.csv"): "c"})
    assert (tmp_path / "a.csv").read_text() == "a" and (tmp_path / "c.csv").read_text() == "c"


def test_a_symbolic_link_is_replaced_and_a_device_is_written_in_place(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_files({str(link): "new"})  # the link is replaced, never followed (SECURITY.md)
    assert not link.is_symlink() and link.read_text() == "new" and real.read_text() == "old"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_files({str(fifo): "through the pipe"})
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert (tmp_path / "pipe").exists() and not (tmp_path / "pipe").is_file()
