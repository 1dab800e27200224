"""Unit tests of the built-in vLLM V1 handlers with fake vLLM objects (no vLLM needed).

``Profiler`` is replaced in each handler module by a recorder, so these run in any environment
with the package importable (``tests/vllm/run.sh`` runs them in the vLLM venv; plain
``pytest tests/vllm/test_handlers.py`` with ``PYTHONPATH=python_shim`` works too).  They cover the
paths the end-to-end test cannot force: preemption, a finish while waiting, nothing scheduled,
counter pruning, the columnar and the 0.9.x list form of ``scheduled_cached_reqs``, and the
split ``execute_model`` / ``sample_tokens`` timing.
"""

import json
import types
from collections import deque

import pytest

from ms_service_profiler.patcher.vllm.handlers.v1 import (batch_handlers, common, kvcache_handlers,
                                                          model_handlers, request_handlers)


class Rec:
    """Stands in for ms_service_profiler.Profiler: records what would be emitted."""
    out = []

    def __init__(self, level=20):
        self.attrs = {}
        self.dom = None
        self.name = None
        self.enable = True

    def domain(self, d):
        self.dom = d
        return self

    def res(self, r):
        self.attrs["rid"] = r
        return self

    def attr(self, k, v):
        self.attrs[k] = v
        return self

    def metric(self, k, v):
        self.attrs[k + "="] = v
        return self

    def metric_scope(self, k, v=0):
        self.attrs["scope#" + k] = v
        return self

    def event(self, name):
        Rec.out.append(("event", self.dom, name, dict(self.attrs)))

    def span_start(self, name):
        self.name = name
        return self

    def span_end(self):
        Rec.out.append(("span", self.dom, self.name, dict(self.attrs)))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.span_end()


class RecNative:
    """Stands in for the native library where a handler writes spans directly (phase tags)."""

    @staticmethod
    def intern(s):
        return s

    @staticmethod
    def span_json(domain, name, start, end, js):
        assert start <= end
        attrs = json.loads(js)
        assert attrs.pop("type") == 2
        Rec.out.append(("span", domain, name, attrs))

    @staticmethod
    def event_json(domain, name, ts, js):
        attrs = json.loads(js)
        assert attrs.pop("type") == 0
        Rec.out.append(("event", domain, name, attrs))

    @staticmethod
    def count_error(kind):
        raise AssertionError("a handler counted an error")


@pytest.fixture(autouse=True)
def recorder(monkeypatch):
    Rec.out = []
    for m in (batch_handlers, kvcache_handlers, model_handlers, request_handlers):
        monkeypatch.setattr(m, "Profiler", Rec)
    for m in (batch_handlers, model_handlers, request_handlers):
        monkeypatch.setattr(m, "native", RecNative)
        monkeypatch.setattr(m, "span_enabled", lambda level, domain: True)
    monkeypatch.setattr(model_handlers, "_Phase", None)      # the C Phase reads the real state word
    monkeypatch.setattr(model_handlers, "prof_step", lambda: None)
    monkeypatch.setattr(common, "set_role", lambda role: None)
    monkeypatch.setattr(common, "set_dp_rank", lambda obj: None)
    batch_handlers._where.clear()
    batch_handlers._counters.counts.clear()
    model_handlers._counters.counts.clear()
    yield Rec.out


def ns(**kw):
    return types.SimpleNamespace(**kw)


class FakeBlockPool:
    def __init__(self, free):
        self.free = free

    def get_num_free_blocks(self):
        return self.free


class FakeSched:
    def __init__(self):
        self.requests = {}
        self.running = []
        self.waiting = deque()
        self.kv_holding_waiting = deque()
        self.kv_cache_manager = ns(block_pool=FakeBlockPool(99), usage=0.01)
        self.kv_cache_config = ns(num_blocks=100)


def new_req(rid, prompt, computed=0):
    return ns(req_id=rid, prompt_token_ids=list(range(prompt)), num_computed_tokens=computed)


def output(new=(), cached=(), tokens=None, finished=(), preempted=None, resumed=()):
    cached = list(cached)
    return ns(scheduled_new_reqs=list(new),
              scheduled_cached_reqs=ns(req_ids=[c[0] for c in cached],
                                       num_computed_tokens=[c[1] for c in cached],
                                       resumed_req_ids=set(resumed)),
              num_scheduled_tokens=dict(tokens or {}),
              total_num_scheduled_tokens=sum((tokens or {}).values()),
              scheduled_spec_decode_tokens={}, finished_req_ids=set(finished),
              preempted_req_ids=set(preempted) if preempted is not None else None)


def events(out, name, queue=None):
    return [a for k, d, n, a in out if n == name and (queue is None or a.get("scope#QueueName") == queue)]


def run_schedule(sched, out_obj, mutate=None, free_after=None):
    def original(this):
        if mutate:
            mutate(this)
        if free_after is not None:
            this.kv_cache_manager.block_pool.free = free_after
        return out_obj
    return batch_handlers.schedule(original, sched)


def test_add_request_then_prefill_then_decode(recorder):
    s = FakeSched()
    r = ns(request_id="a-1", num_prompt_tokens=5)

    def add(this, req):
        this.requests[req.request_id] = req
        this.waiting.append(req)
    batch_handlers.add_request(add, s, r)
    assert events(recorder, "Enqueue", "WAITING") == [
        {"rid": "a-1", "QueueSize=": 1, "scope#QueueName": "WAITING"}]

    def to_running(this):
        this.waiting.popleft()
        this.running.append(r)
    run_schedule(s, output(new=[new_req("a-1", 5)], tokens={"a-1": 5}), to_running, free_after=97)
    span = [a for k, d, n, a in recorder if n == "batchFrameworkProcessing"][-1]
    assert span["batch_type"] == "Prefill"
    assert span["rid"] == [{"rid": "a-1", "iter": 0, "type": 0, "num_scheduled_tokens": 5,
                            "num_prompt_tokens": 5, "num_computed_tokens": 0}]
    assert events(recorder, "Dequeue", "WAITING")[-1]["rid"] == ["a-1"]
    assert events(recorder, "Enqueue", "RUNNING")[-1] == {"rid": ["a-1"], "QueueSize=": 1,
                                                          "scope#QueueName": "RUNNING"}
    kv = events(recorder, "KVCacheStatus")[-1]
    assert kv["TotalBlocks="] == 100 and kv["FreeBlocks="] == 97 and kv["UsedBlocks="] == 3
    assert kv["AllocatedBlocks="] == 2 and kv["UsagePercent="] == 0.01 and kv["rid"] == ["a-1"]

    recorder.clear()
    run_schedule(s, output(cached=[("a-1", 5)], tokens={"a-1": 1}))
    span = [a for k, d, n, a in recorder if n == "batchFrameworkProcessing"][-1]
    assert span["batch_type"] == "Decode" and span["rid"][0]["iter"] == 1
    assert span["rid"][0]["type"] == 1
    assert not events(recorder, "Enqueue") and not events(recorder, "Dequeue")

    # finished: leaves RUNNING at the next schedule, even with nothing scheduled (no span)
    recorder.clear()
    s.running.clear()
    run_schedule(s, output(finished=["a-1"]))
    assert events(recorder, "Dequeue", "RUNNING") == [{"rid": ["a-1"], "QueueSize=": 0,
                                                       "scope#QueueName": "RUNNING"}]
    assert not [1 for k, d, n, a in recorder if n in ("batchFrameworkProcessing", "KVCacheStatus")]
    assert "a-1" not in batch_handlers._counters.counts and "a-1" not in batch_handlers._where


def test_preemption_and_resume(recorder):
    s = FakeSched()
    for rid in ("x", "y"):
        s.requests[rid] = ns(request_id=rid, num_prompt_tokens=4)
    batch_handlers._where.update(x="RUNNING", y="RUNNING")
    s.running = [s.requests["x"]]
    s.waiting.append(s.requests["y"])
    # y preempted while x decodes (mixed with nothing new)
    run_schedule(s, output(cached=[("x", 4)], tokens={"x": 1}, preempted=["y"]))
    assert events(recorder, "Dequeue", "RUNNING")[-1]["rid"] == ["y"]
    assert events(recorder, "Enqueue", "WAITING")[-1] == {"rid": ["y"], "QueueSize=": 1,
                                                          "scope#QueueName": "WAITING"}
    assert batch_handlers._where["y"] == "WAITING"
    recorder.clear()
    # y resumed: leaves WAITING, enters RUNNING; its recompute is a prefill
    s.waiting.clear()
    s.running.append(s.requests["y"])
    run_schedule(s, output(cached=[("x", 5), ("y", 0)], tokens={"x": 1, "y": 5}, resumed=["y"]))
    assert events(recorder, "Dequeue", "WAITING")[-1]["rid"] == ["y"]
    assert events(recorder, "Enqueue", "RUNNING")[-1]["rid"] == ["y"]
    span = [a for k, d, n, a in recorder if n == "batchFrameworkProcessing"][-1]
    assert span["batch_type"] == "Prefill,Decode"


def test_finish_while_waiting_leaves_waiting(recorder):
    s = FakeSched()
    batch_handlers._where["w"] = "WAITING"
    run_schedule(s, output(finished=["w"]))
    assert events(recorder, "Dequeue", "WAITING") == [{"rid": ["w"], "QueueSize=": 0,
                                                       "scope#QueueName": "WAITING"}]
    assert not events(recorder, "Dequeue", "RUNNING")


def test_list_form_cached_reqs_and_reentrancy(recorder):
    s = FakeSched()
    s.requests["o"] = ns(request_id="o", num_prompt_tokens=3)
    out = output(tokens={"o": 1})
    out.scheduled_cached_reqs = [ns(req_id="o", num_computed_tokens=3,
                                    resumed_from_preemption=False)]

    def outer(this):   # a subclass override calling the hooked base
        return batch_handlers.schedule(lambda t: out, this)
    batch_handlers.schedule(outer, s)
    spans = [a for k, d, n, a in recorder if n == "batchFrameworkProcessing"]
    assert len(spans) == 1 and spans[0]["rid"][0]["type"] == 1


def test_counters_are_pruned():
    c = common.IterCounters()
    for i in range(3000):
        c.next("r%d" % i)
    c.prune({"r1": 1, "r2": 2})
    assert set(c.counts) == {"r1", "r2"}


def test_kvcache_events(recorder):
    kvm = ns(block_pool=FakeBlockPool(42), usage=0.25)
    req = ns(request_id="k", num_tokens=10)
    kvcache_handlers.free(lambda this, r: None, kvm, req)
    assert events(recorder, "Free") == [{"rid": "k", "deviceBlock=": 42, "UsagePercent=": 0.25}]
    r = kvcache_handlers.get_computed_blocks(lambda this, r: ("blocks", 8, 0), kvm, req)
    assert r == ("blocks", 8, 0)
    assert events(recorder, "CacheHitRate") == [{"rid": "k", "hitCache": 0.8}]


def test_model_exec_spans_execute_and_sample(recorder):
    runner = ns(requests={"m": ns(num_prompt_tokens=4)}, sample_tokens=True)
    so = output(cached=[("m", 4)], tokens={"m": 1})
    order = []

    def execute(this, s):
        order.append("exec")
        # the forward phase tag inside execute_model
        cm = model_handlers.record_function_or_nullcontext(
            lambda name: __import__("contextlib").nullcontext(), "gpu_model_runner: forward")
        with cm:
            pass
        return None
    assert model_handlers.execute_model_runner(execute, runner, so) is None
    assert not [1 for k, d, n, a in recorder if n == "modelExec"]   # still open
    model_handlers.sample_tokens(lambda this, g: order.append("sample") or "out", runner, None)
    exe = [a for k, d, n, a in recorder if n == "modelExec"]
    fwd = [a for k, d, n, a in recorder if n == "forward"]
    assert len(exe) == 1 and exe[0]["batch_size"] == 1 and exe[0]["batch_type"] == "Decode"
    assert exe[0]["rid"][0]["rid"] == "m" and fwd == [{"rid": ["m"], "batch_type": "Decode",
                                                       "batch_size": 1}]
    assert order == ["exec", "sample"]
    # other tags pass through untouched
    sentinel = object()
    assert model_handlers.record_function_or_nullcontext(lambda n: sentinel,
                                                         "schedule: allocate_slots") is sentinel


def test_process_outputs_http_res(recorder):
    det = ns(num_output_tokens=lambda: 7)
    st = ns(prompt_len=11, prompt_token_ids=[0] * 11, detokenizer=det, stats=None)
    proc = ns(request_states={"r-1": st, "r-2": ns()})
    outs = [ns(request_id="r-1"), ns(request_id="r-2"), ns(request_id="gone")]

    def original(this, o):
        this.request_states.pop("r-1")      # r-1 finished in this call
        return "ok"
    assert request_handlers.process_outputs(original, proc, outs) == "ok"
    assert events(recorder, "detokenize") == [{"rid": ["r-1", "r-2"]}]
    assert events(recorder, "httpRes") == [{"rid": "r-1", "recvTokenSize=": 11,
                                            "replyTokenSize=": 7}]


def test_bundled_yaml_handlers_resolve():
    """Every handler named by the bundled symbol file imports and is a plain callable."""
    import inspect
    import yaml
    from ms_service_profiler.patcher.symbols import BUNDLED_YAML, parse_entries
    from ms_service_profiler.patcher.hooks import resolve_handler
    with open(BUNDLED_YAML) as f:
        data = yaml.safe_load(f)
    entries = parse_entries(data, BUNDLED_YAML)
    assert len(entries) == len(data) >= 20
    handlers = [e for e in entries if not e.is_timer]
    assert len(handlers) >= 12
    for e in handlers:
        h = resolve_handler(e)
        assert callable(h) and not inspect.isgeneratorfunction(h), e.handler
    # the async target gets an async handler
    (req,) = [e for e in handlers if e.symbol.endswith("AsyncLLM.add_request")]
    assert inspect.iscoroutinefunction(resolve_handler(req))


def test_phase_span_gate(monkeypatch):
    """The phase tags' capture check (profiler.span_enabled): on/off from the state word; a domain
    filter, a level below INFO or an unobserved config change defers to the Profiler (here: off)."""
    from ms_service_profiler import _control, profiler
    monkeypatch.undo()                       # the real gate, with a fake state word

    def gate():
        return profiler.span_enabled(20, "Execute")

    class Off(Rec):
        def __init__(self, level=20):
            super().__init__(level)
            self.enable = False
    monkeypatch.setattr(profiler, "Profiler", Off)
    gen = 7
    monkeypatch.setattr(_control, "last_gen", gen)

    def word(bits, level=20, g=gen):
        monkeypatch.setattr(profiler, "_state", ns(value=bits | level << 8 | g << 32))
    word(0)
    assert not gate()
    word(1)
    assert gate()
    word(1 | 2)                              # domain filter: the Profiler decides
    assert not gate()
    word(1, level=10)                        # profiler_level below INFO
    assert not gate()
    word(1, g=gen + 1)                       # a change not yet observed
    assert not gate()
