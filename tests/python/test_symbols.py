"""Symbol YAML: parsing, validation warnings, version bounds, which file is loaded."""
import logging
import os
import threading

import pytest
import yaml

from ms_service_profiler.patcher import symbols
from ms_service_profiler.patcher.symbols import (BUNDLED_YAML, Entry, default_name, parse_entries,
                                                 resolve_symbols_path, version_ok)


def test_bundled_yaml_is_valid():
    with open(BUNDLED_YAML) as f:
        data = yaml.safe_load(f)
    entries = parse_entries(data, BUNDLED_YAML)
    assert len(entries) == len(data) >= 10
    for e in entries:
        # built-in handlers (patcher/vllm/handlers) are resolved in tests/vllm/test_handlers.py
        assert e.is_timer or e.handler.startswith("ms_service_profiler.patcher.vllm.handlers."), e
        for an, expr in e.attributes:
            assert any(n == an for n, _c in e.compiled), (e, an, expr)


def test_fields_and_defaults():
    (e,) = parse_entries([{"symbol": "pkg.mod:Outer.Inner.m"}])
    assert e.domain == "Default" and e.name == "Inner.m" and e.is_timer
    (e,) = parse_entries([{"symbol": "pkg.mod:func", "handler": "timer"}])
    assert e.name == "func" and e.is_timer
    (e,) = parse_entries([{"symbol": "a:B.c", "handler": "x.y:z", "domain": "D", "name": "N",
                           "min_version": 0.9, "max_version": "1.0", "caller_filter": "m:*"}])
    assert (e.handler, e.domain, e.name, e.min_version, e.max_version, e.caller_filter) == \
        ("x.y:z", "D", "N", "0.9", "1.0", "m:*")
    assert default_name("m:A.b.c") == "b.c"


def test_unknown_key_warns_with_file_entry_key(caplog):
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        (e,) = parse_entries([{"symbol": "a:b", "atributes": []}], source="my.yaml")
    msg = caplog.text
    assert "my.yaml" in msg and "#0" in msg and "atributes" in msg


def test_invalid_items_skipped(caplog):
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        out = parse_entries([{"handler": "timer"}, "junk", {"symbol": "nocolon"},
                             {"symbol": "a:b", "attributes": [{"name": "x"}, {"name": "y", "expr": "a +"},
                                                               {"name": "z", "expr": "len(a)"}]}])
    assert len(out) == 1
    assert [n for n, _c in out[0].compiled] == ["z"]
    assert "bad expression" in caplog.text
    assert parse_entries({"symbol": "a:b"}) == []
    assert parse_entries(None) == []


def test_entry_equality_covers_whole_entry():
    a = parse_entries([{"symbol": "a:b", "name": "x"}])[0]
    b = parse_entries([{"symbol": "a:b", "name": "x"}])[0]
    c = parse_entries([{"symbol": "a:b", "name": "y"}])[0]
    d = parse_entries([{"symbol": "a:b", "name": "x", "attributes": [{"name": "q", "expr": "args"}]}])[0]
    assert a == b and a != c and a != d and hash(a) == hash(b)


@pytest.mark.parametrize("lo,hi,cur,ok", [
    (None, None, "0.1", True),
    ("0.9.1", None, "0.9.1", True),
    ("0.9.1", None, "0.9.0", False),
    (None, "0.11.0", "0.11.0rc3", True),
    (None, "0.11.0rc2", "0.11.0rc3", False),
    (None, "0.32.0", "0.32.0+cpu", True),      # local part dropped
    ("0.32.0", "0.32.0", "0.32.0+cpu", True),
    ("0.15.0rc1", None, "0.14.0", False),
    ("0.9.1", "0.14.0rc1", "0.14.0", False),
    ("0.9.1", None, None, True),                # unknown version -> applied
])
def test_version_bounds(lo, hi, cur, ok):
    e = Entry("a:b", min_version=lo, max_version=hi)
    assert version_ok(e, cur) is ok


def test_version_from_vllm_dunder(monkeypatch):
    import sys
    import types
    fake = types.ModuleType("vllm")
    fake.__version__ = "0.32.0+cpu"
    monkeypatch.setitem(sys.modules, "vllm", fake)
    assert symbols.vllm_version() == "0.32.0+cpu"


def test_default_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PROFILING_SYMBOLS_PATH", raising=False)
    assert resolve_symbols_path("0.32.0+cpu") == BUNDLED_YAML
    cfg = tmp_path / ".config" / "vllm_ascend"
    cfg.mkdir(parents=True)
    mmp = cfg / "service_profiling_symbols.0.32.0.yaml"
    mmp.write_text("[]")
    assert resolve_symbols_path("0.32.0+cpu") == str(mmp)
    raw = cfg / "service_profiling_symbols.0.32.0+cpu.yaml"
    raw.write_text("[]")
    assert resolve_symbols_path("0.32.0+cpu") == str(raw)


def test_env_path_existing_missing_and_bad_suffix(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HOME", str(tmp_path))
    p = tmp_path / "mine.yaml"
    p.write_text("- symbol: a:b\n")
    monkeypatch.setenv("PROFILING_SYMBOLS_PATH", str(p))
    assert resolve_symbols_path("1.0.0") == str(p)
    missing = tmp_path / "sub" / "dir" / "new.yml"
    monkeypatch.setenv("PROFILING_SYMBOLS_PATH", str(missing))
    assert resolve_symbols_path("1.0.0") == str(missing)
    assert missing.read_bytes() == open(BUNDLED_YAML, "rb").read()
    assert not [f for f in os.listdir(missing.parent) if f.startswith(".msp-symbols-")]
    monkeypatch.setenv("PROFILING_SYMBOLS_PATH", str(tmp_path / "x.json"))
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        assert resolve_symbols_path("1.0.0") == BUNDLED_YAML
    assert "does not end in .yaml" in caplog.text


def test_env_path_copy_never_overwrites_and_races(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    target = tmp_path / "race.yaml"
    monkeypatch.setenv("PROFILING_SYMBOLS_PATH", str(target))
    results = []

    def worker():
        results.append(resolve_symbols_path("1.0.0"))
    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [str(target)] * 8
    assert target.read_bytes() == open(BUNDLED_YAML, "rb").read()
    target.write_text("- symbol: user:edit\n")
    resolve_symbols_path("1.0.0")
    assert target.read_text() == "- symbol: user:edit\n"
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".msp")] == []


def test_load_yaml_file_problems(tmp_path, caplog):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- symbol: [unclosed\n")
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        assert symbols.load_yaml_file(str(bad)) is None
        assert symbols.load_yaml_file(str(tmp_path / "nope.yaml")) is None
        top = tmp_path / "top.yaml"
        top.write_text("symbol: a:b\n")
        assert symbols.load_yaml_file(str(top)) is None
        empty = tmp_path / "empty.yaml"
        empty.write_text("")
        assert symbols.load_yaml_file(str(empty)) == []
    assert "top level must be a list" in caplog.text
