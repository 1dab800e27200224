"""acl_task_time: 3 — the framework-profiler driver (torch_prof.py) against a fake ``torch``
module that records what the driver asks of it (the real torch.profiler path is exercised on
the real vLLM server: tests/vllm/test_torch_prof.py)."""
import json
import sys
import threading
import time
import types

import pytest

from ms_service_profiler import _control, torch_prof
from ms_service_profiler.profiler import prof_step


class FakeProfile:
    instances = []

    def __init__(self, **kw):
        self.kw = kw
        self.calls = []
        self.events = []
        FakeProfile.instances.append(self)

    def start(self):
        self.calls.append("start")

    def step(self):
        self.calls.append("step")

    def stop(self):
        self.calls.append("stop")

    def export_chrome_trace(self, path):
        self.calls.append("export")
        with open(path, "w") as f:
            json.dump({"traceEvents": self.events}, f)


def _fake_torch(fail_start=False):
    torch = types.ModuleType("torch")
    prof = types.ModuleType("torch.profiler")
    prof.ProfilerActivity = types.SimpleNamespace(CPU="CPU", CUDA="CUDA")

    class RF:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            self.t0 = time.monotonic_ns()

        def __exit__(self, *a):
            p = FakeProfile.instances[-1]
            p.events.append({"ph": "X", "name": self.name, "ts": self.t0 / 1e3, "dur": (time.monotonic_ns() - self.t0) / 1e3})

    def profile(**kw):
        p = FakeProfile(**kw)
        if fail_start:
            def boom():
                raise RuntimeError("no profiler here")
            p.start = boom
        return p

    prof.record_function = RF
    prof.profile = profile
    prof.schedule = lambda **kw: ("schedule", kw)
    torch.profiler = prof
    torch.cuda = types.SimpleNamespace(is_available=lambda: False)

    class Handle:
        def __init__(self, fn):
            self.fn = fn
            HOOKS.append(fn)

        def remove(self):
            HOOKS.remove(self.fn)

    module = types.SimpleNamespace(register_module_forward_pre_hook=Handle)
    torch.nn = types.SimpleNamespace(modules=types.SimpleNamespace(module=module))
    return torch, prof


HOOKS = []        # global forward pre-hooks registered with the fake torch


@pytest.fixture
def fake(monkeypatch, tmp_path, mock):
    torch, prof = _fake_torch()
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch.profiler", prof)
    monkeypatch.setitem(sys.modules, "torch_npu", None)       # not Ascend
    monkeypatch.setattr(torch_prof, "_s", torch_prof._State())
    monkeypatch.setattr(torch_prof, "settings", lambda: (True, True, False, 2, str(tmp_path)))
    monkeypatch.setattr(_control, "stop_callbacks", list(_control.stop_callbacks))
    FakeProfile.instances.clear()
    yield tmp_path


def test_start_step_stop_writes_trace_and_anchors(fake, mock):
    prof_step()                       # starts
    prof_step()                       # steps
    prof_step()
    p = FakeProfile.instances[-1]
    assert p.kw["with_stack"] is True and p.kw["with_modules"] is False
    assert p.kw["activities"] == ["CPU"]
    assert p.kw["schedule"] == ("schedule", {"wait": 0, "warmup": 0, "active": 2, "repeat": 1})
    assert p.calls == ["start", "step", "step"]
    spans = mock.spans("torch_profiler")
    assert [s["attrs"]["step"] for s in spans] == [0, 1]       # the third is still open
    mock.set(enabled=False)
    prof_step()                       # the first step after capture off stops and exports
    assert p.calls == ["start", "step", "step", "stop", "export"]
    d = fake / "torch_prof"
    (sub,) = list(d.iterdir())
    assert sub.name.endswith("-%d" % __import__("os").getpid())
    clock = json.loads((sub / "clock_0.json").read_text())
    assert clock["trace"] == "trace_0.json" and clock["profiler"] == "torch"
    names = [a["name"] for a in clock["anchors"]]
    assert names == ["ms_service_profiler::clock_anchor#0", "ms_service_profiler::clock_anchor#1"]
    for a in clock["anchors"]:
        assert a["mono_before"] <= a["mono_after"] and a["real_before"] <= a["real_after"]
    trace = json.loads((sub / "trace_0.json").read_text())
    assert [e["name"] for e in trace["traceEvents"]] == ["ms_service_profiler::warmup"] + names
    assert len(mock.spans("torch_profiler")) == 2     # the open one ends after capture off: dropped
    prof_step()                       # capture off: nothing new
    assert len(FakeProfile.instances) == 1


def test_other_threads_neither_step_nor_stop(fake, mock):
    prof_step()
    p = FakeProfile.instances[-1]
    mock.set(enabled=False)
    t = threading.Thread(target=prof_step)
    t.start()
    t.join()
    assert torch_prof.on_stop in _control.stop_callbacks
    torch_prof.on_stop()              # on the owner thread: stops now
    assert p.calls == ["start", "stop", "export"]


def test_forward_after_capture_off_stops_an_idle_worker(fake, mock):
    HOOKS.clear()
    prof_step()
    p = FakeProfile.instances[-1]
    assert len(HOOKS) == 1
    HOOKS[0](object(), ())            # a forward while capture is on: nothing
    assert p.calls == ["start"]
    mock.set(enabled=False)           # service hooks are bypassed now; no step comes
    HOOKS[0](object(), ())            # the next module forward on the worker thread stops it
    assert p.calls == ["start", "stop", "export"]
    assert HOOKS == []
    assert (fake / "torch_prof").exists()


def test_mode_off_does_nothing(fake, mock, monkeypatch):
    monkeypatch.setattr(torch_prof, "settings", lambda: (False, False, False, 0, "/nonexistent"))
    prof_step()
    assert FakeProfile.instances == []


def test_failure_warns_once_and_turns_off(fake, mock, monkeypatch, caplog):
    torch, prof = _fake_torch(fail_start=True)
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch.profiler", prof)
    prof_step()
    prof_step()
    assert len(FakeProfile.instances) == 1
    assert sum("torch profiler step failed" in r.message for r in caplog.records) == 1


def test_real_torch_schedule_and_anchors(monkeypatch, tmp_path, mock):
    """With the real torch.profiler (skipped where torch is not installed): a 2-step schedule,
    the anchors recorded in the trace, each inside its capture-clock window once aligned."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch_prof, "_s", torch_prof._State())
    monkeypatch.setattr(torch_prof, "settings", lambda: (True, False, False, 2, str(tmp_path)))
    monkeypatch.setattr(_control, "stop_callbacks", list(_control.stop_callbacks))
    x = torch.randn(64, 64)
    for _ in range(4):
        x = torch.tanh(x @ x)
        prof_step()
    mock.set(enabled=False)
    y = torch.nn.Linear(4, 4)(torch.randn(2, 4))    # a module forward after capture off stops it
    assert torch_prof._s.prof is None and y is not None
    (sub,) = list((tmp_path / "torch_prof").iterdir())
    clock = json.loads((sub / "clock_0.json").read_text())
    events = json.loads((sub / "trace_0.json").read_text())["traceEvents"]
    by_name = {e["name"]: e for e in events if e.get("ph") == "X"}
    a0 = clock["anchors"][0]
    assert a0["name"] in by_name                       # recorded (the schedule starts recording)
    assert any(n.startswith("aten::mm") for n in by_name)
    # The stop anchor falls after the 2 active steps: not in the trace, so one pair aligns it.
    assert clock["anchors"][1]["name"] not in by_name
    e = by_name[a0["name"]]
    assert e["dur"] * 1e3 <= a0["mono_after"] - a0["mono_before"]
