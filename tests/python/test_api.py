"""The msServiceProfiler-compatible Python API (CONTRACT §3) against the mock library."""
import json
import os
import subprocess
import sys

import pytest

import ms_service_profiler
from ms_service_profiler import Level, Profiler
from ms_service_profiler.profiler import MarkType, prof_step, encode_attrs
from ms_service_profiler.mstx import service_profiler


def test_exports():
    assert ms_service_profiler.__all__ == ["Profiler", "Level"]
    from ms_service_profiler.profiler import Level as L2, prof_step as ps  # noqa: F401
    assert L2 is Level


def test_levels():
    assert (Level.L0, Level.L1, Level.L2) == (10, 20, 30)
    assert (Level.ERROR, Level.INFO, Level.DETAILED, Level.VERBOSE) == (10, 20, 30, 40)
    assert (Level.LEVEL_CORE_TRACE, Level.LEVEL_OUTLIER_ENENT, Level.LEVEL_NORMAL_TRACE,
            Level.LEVEL_DETAILED_TRACE) == (10, 10, 20, 30)
    assert (MarkType.TYPE_EVENT, MarkType.TYPE_METRIC, MarkType.TYPE_SPAN, MarkType.TYPE_LINK) == (0, 1, 2, 3)


def test_event_with_metrics(mock):
    Profiler(Level.INFO).domain("Schedule").res(["a", "b"]).metric("QueueSize", 3) \
        .metric_inc("Blocks", -2).metric_scope("QueueName", "WAITING").attr("k", {"x": 1}).event("Enqueue")
    (r,) = mock.records()
    assert (r["kind"], r["domain"], r["name"]) == ("event", "Schedule", "Enqueue")
    assert r["attrs"] == {"rid": ["a", "b"], "QueueSize=": 3, "Blocks+": -2, "scope#QueueName": "WAITING",
                          "k": {"x": 1}, "type": 0}


def test_scope_as_req_id_and_launch(mock):
    Profiler(Level.INFO).domain("D").metric_scope_as_req_id().launch()
    (r,) = mock.records()
    assert r["name"] == "Launch" and r["attrs"] == {"scope#": "req", "type": 0}


def test_span_attrs_after_start_and_single_end(mock):
    p = Profiler(Level.INFO).domain("Execute").span_start("modelExec")
    p.res("r1").attr("batch_size", 4)
    p.span_end()
    p.span_end()
    (r,) = mock.records()
    assert r["kind"] == "span" and r["name"] == "modelExec" and r["end"] >= r["start"]
    assert r["attrs"] == {"type": 2, "rid": "r1", "batch_size": 4}


def test_context_manager(mock):
    with Profiler(Level.INFO).domain("D").span_start("blk") as p:
        p.attr("a", 1)
    with pytest.raises(RuntimeError):
        with Profiler(Level.INFO).domain("D").span_start("err"):
            raise RuntimeError()
    spans = mock.spans()
    assert [s["name"] for s in spans] == ["blk", "err"]
    assert spans[1]["attrs"]["error"] == "RuntimeError"
    with Profiler(Level.INFO).domain("D"):                 # enter does not start a span
        pass
    assert len(mock.spans()) == 2


def test_link_clears_attrs(mock):
    Profiler(Level.INFO).domain("D").attr("x", 1).link("old", "new")
    (r,) = mock.records()
    assert r["kind"] == "link" and r["attrs"] == {"from": "old", "to": "new"}


def test_meta(mock):
    Profiler(Level.INFO).add_meta_info("dpRankId", 3)
    assert "dpRankId=3" in mock.meta()
    mock.set(enabled=False)
    Profiler(Level.INFO).add_meta_info("other", 1)
    assert "other" not in mock.meta()


def test_levels_and_disabled(mock):
    mock.set(enabled=True, level=20)
    assert Profiler(Level.INFO).enable and not Profiler(Level.DETAILED).enable
    Profiler(Level.DETAILED).domain("D").event("skipped")
    Profiler(Level.L0).domain("D").event("kept")
    mock.set(enabled=False)
    p = Profiler(Level.INFO)
    assert not p.enable
    p.domain("D").res("x").metric("a", 1).span_start("s").span_end()
    p.event("e")
    p.link("a", "b")
    assert [r["name"] for r in mock.records()] == ["kept"]


def test_domain_filter(mock):
    mock.set(enabled=True, domain_filter=True)
    assert Profiler(Level.INFO).domain("AllowedX").enable
    assert not Profiler(Level.INFO).domain("Other").enable
    assert service_profiler.is_domain_enable("AllowedY")
    assert not service_profiler.is_domain_enable("Nope")


def test_non_json_values_and_nan_never_fail(mock):
    class Obj:
        def __repr__(self):
            return "Obj!"
    Profiler(Level.INFO).domain("D").attr("o", Obj()).attr("nan", float("nan")).attr("t", (1, 2)) \
        .attr("s", {1, 2} and "set").event("e")
    (r,) = mock.records()
    assert r["attrs"]["o"] == "Obj!" and r["attrs"]["nan"] == "nan" and r["attrs"]["t"] == [1, 2]
    assert json.loads(encode_attrs({"u": "é\u2028"})) == {"u": "é\u2028"}


def test_mstx(mock):
    sp = service_profiler
    assert sp.is_enable(20) and not sp.is_enable(30)
    h = sp.start_span("x")
    sp.span_end_ex("x", "Dom", '{"k": 1}', h)
    sp.mark_event_ex("ev", "Dom", '{"q": 2}')
    recs = mock.records()
    assert recs[0]["kind"] == "span" and recs[0]["attrs"] == {"k": 1} and recs[0]["start"] == h
    assert recs[1]["kind"] == "event" and recs[1]["attrs"] == {"q": 2}
    sp.add_meta_info("k", "v")
    assert "k=v" in mock.meta()
    assert sp.get_acl_task_time_level() == "L1"            # mock config
    assert sp.get_acl_prof_aicore_metrics() == 255
    assert sp.get_torch_prof_step_num() == 3
    assert sp.get_prof_path() == "/tmp/x/0101-0000/"
    assert not sp.is_torch_profiler_enable(20) and not sp.is_torch_profiler_register()
    sp.set_profiler_current_step(41)
    assert prof_step() == 42 and sp.get_profiler_current_step() == 42
    h = sp.register_profiler_start_callback(lambda: None)
    assert h.is_dynamic() and not h.is_legacy()


def test_start_stop_callbacks_fire_on_transitions(mock):
    from ms_service_profiler import _control
    fired = []
    mock.set(enabled=False)
    Profiler(Level.INFO)                                     # observe "off"
    service_profiler.register_profiler_start_callback(lambda: fired.append("start"))
    service_profiler.register_profiler_stop_callback(lambda: fired.append("stop"))
    try:
        mock.set(enabled=True)
        Profiler(Level.INFO)
        Profiler(Level.INFO)
        mock.set(enabled=False)
        Profiler(Level.INFO)
        assert fired == ["start", "stop"]
    finally:
        _control.start_callbacks.clear()
        _control.stop_callbacks.clear()


FALLBACK = r'''
import logging, sys, io
logging.basicConfig(stream=sys.stdout, level=logging.WARNING)
from ms_service_profiler import Profiler, Level
from ms_service_profiler.mstx import service_profiler as sp
from ms_service_profiler.profiler import prof_step
import ms_service_profiler.patcher.hooks
p = Profiler(Level.INFO).domain("D").res("r").span_start("s")
p.span_end(); p.event("e"); p.link("a", "b"); p.add_meta_info("k", 1)
assert not p.enable
assert sp.is_enable(0) is False
assert sp.get_acl_task_time_level() == "L0"
assert sp.get_acl_prof_aicore_metrics() == -1
sp.start_profiler(); sp.stop_profiler(); sp.span_end_ex("a", "b", "{}", sp.start_span("a"))
prof_step()
print("OK")
'''


def test_no_library_fallback_single_warning(tmp_path):
    env = dict(os.environ)
    env["MS_SERVICE_PROFILER_LIB"] = str(tmp_path / "missing.so")
    env["ASCEND_HOME_PATH"] = str(tmp_path)
    env.pop("LD_PRELOAD", None)
    # make sure the bundled copy is not found either: run from a copy of the package without it
    import shutil
    pkg = os.path.dirname(ms_service_profiler.__file__)
    dst = tmp_path / "site" / "ms_service_profiler"
    shutil.copytree(pkg, dst, ignore=shutil.ignore_patterns("libms_service_profiler.so", "__pycache__"))
    env["PYTHONPATH"] = str(tmp_path / "site")
    out = subprocess.run([sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True,
                         cwd=str(tmp_path), timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip().endswith("OK")
    warnings = [line for line in (out.stdout + out.stderr).splitlines() if "not found" in line]
    assert len(warnings) == 1 and "MS_SERVICE_PROFILER_LIB" in warnings[0]


def test_binding_mode_matches_environment():
    from ms_service_profiler._native import native
    assert (native.fast is None) == (os.environ.get("MSP_PURE_PYTHON") == "1")


@pytest.mark.parametrize("value", [
    {}, {"a": 1}, {"s": 'q"uo\\te\n\t\x01\x1f é 漢 \u2028'}, {"f": 1.0, "g": 1e100, "h": -0.5, "i": 2 ** 70},
    {"l": [1, [2, {"x": None}], (3, True, False)]}, {"rid": [{"rid": "a", "iter": 0}]}, [], "x", 3,
    {"e": Level.INFO}, {"big": -2 ** 63}, {"nested": {"a": {"b": {"c": []}}}},
])
def test_encode_matches_json(value):
    from ms_service_profiler._native import native
    expect = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert encode_attrs(value) == expect
    if native.fast is not None:
        assert native.fast.encode(value) == expect


def test_encode_fallbacks():
    from ms_service_profiler._native import native
    odd = {"o": object(), 1: "intkey", "nan": float("inf"), "sur": "\ud800", "set": {1}}
    out = json.loads(encode_attrs(odd).decode("utf-8", "surrogatepass"))
    assert out["1"] == "intkey" and out["nan"] == "inf" and out["o"].startswith("<object")
    if native.fast is not None:
        assert native.fast.encode(odd) is None
        deep = []
        cur = deep
        for _ in range(40):
            cur.append([])
            cur = cur[0]
        assert native.fast.encode(deep) is None
        assert json.loads(encode_attrs(deep))


def test_step_counter_reaches_the_library(mock):
    from ms_service_profiler import profiler
    from ms_service_profiler._native import native
    profiler.set_step(41)
    assert native.get_step() == 41
    assert profiler.prof_step() == 42 and native.get_step() == 42
    native.set_step("not a number")          # ignored, never raises
    native.set_step(2 ** 80)
    assert native.get_step() == 42
