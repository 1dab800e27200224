"""The per-step fast path of the built-in vLLM handlers (no vLLM needed):

* ``common.classify_json``: the C ``_fast.classify`` must give byte for byte the JSON, and leave
  the iteration counters exactly as, the Python ``classify`` + ``encode_attrs`` — checked on
  random step sequences (new requests, chunked prefill, decode, finishes, unknown prompt
  lengths, requests first seen as cached ones) — and must fall back (returning None, counters
  untouched) on every shape it does not handle;
* the phase-tag span (C ``_fast.Phase`` and the Python ``_PhaseSpan``): recorded around the
  ``with`` block with the step's attributes, not recorded when capture is off or the domain is
  filtered out, recorded and transparent when the wrapped manager raises, attribute lookups
  forwarded.

Runs against the mock native library (conftest.py); the pure-Python pass of run.sh runs it
without the C extension (the C-only tests skip).
"""
import contextlib
import random
import types

import pytest

from ms_service_profiler._native import native
from ms_service_profiler.patcher.vllm.handlers.v1 import common, model_handlers

fast = native.fast
needs_fast = pytest.mark.skipif(fast is None, reason="C extension not built (pure-Python pass)")


def ns(**kw):
    return types.SimpleNamespace(**kw)


def sched_output(new, cached, tokens, spec=None):
    return ns(scheduled_new_reqs=list(new),
              scheduled_cached_reqs=ns(req_ids=[c[0] for c in cached],
                                       num_computed_tokens=[c[1] for c in cached],
                                       resumed_req_ids=set()),
              num_scheduled_tokens=dict(tokens), total_num_scheduled_tokens=sum(tokens.values()),
              scheduled_spec_decode_tokens=spec or {}, finished_req_ids=set())


def python_classify_json(so, counters, prompt_len_of):
    dicts, btype = common.classify(so, counters, prompt_len_of)
    return (common.encode_attrs(dicts), btype, common.encode_attrs([d["rid"] for d in dicts]),
            len(dicts))


def random_steps(seed, steps=60):
    """A scheduler's life: requests arrive (prompt 1..40, some without known prompt length),
    are prefilled in chunks, decode, finish; now and then one is unscheduled for a step."""
    rng = random.Random(seed)
    live = {}       # rid -> [prompt, computed, announced]
    prompts = {}
    n = 0
    for _ in range(steps):
        new, cached, tokens = [], [], {}
        for _ in range(rng.randint(0, 3)):
            rid = f"req-{seed}-{n}" if rng.random() < 0.9 else f"é-{n}\"\\"   # escaping
            n += 1
            p = rng.randint(1, 40)
            live[rid] = [p, 0, False]
            prompts[rid] = p if rng.random() < 0.8 else None
        for rid, st in list(live.items()):
            if rng.random() < 0.1:
                continue                                # not scheduled this step
            p, c, announced = st
            k = max(1, min(p - c, rng.randint(1, 16))) if c < p else 1
            if not announced and rng.random() < 0.85:
                new.append(ns(req_id=rid, prompt_token_ids=list(range(p)), num_computed_tokens=c))
                st[2] = True
            else:
                cached.append((rid, c))
                st[2] = True
            if rng.random() > 0.05:                     # sometimes listed but given no tokens
                tokens[rid] = k
            st[1] = c + k
            if st[1] > p + rng.randint(2, 12):
                del live[rid]
        yield sched_output(new, cached, tokens), prompts


@needs_fast
@pytest.mark.parametrize("seed", range(12))
def test_fast_classify_matches_python(seed):
    a, b = common.IterCounters(), common.IterCounters()
    for so, prompts in random_steps(seed):
        fast_r = fast.classify(so, a.counts, prompts.get)
        py_r = python_classify_json(so, b, prompts.get)
        assert fast_r is not None
        assert fast_r == py_r
        assert a.counts == b.counts


@needs_fast
def test_fast_classify_empty_and_fallbacks():
    c = common.IterCounters()
    assert fast.classify(sched_output([], [], {}), c.counts, lambda r: 1) == (b"[]", None, b"[]", 0)
    base = sched_output([ns(req_id="a", prompt_token_ids=[1, 2], num_computed_tokens=0)],
                        [("b", 3)], {"a": 2, "b": 1})
    c.counts["b"] = [4, 2]
    before = {k: list(v) for k, v in c.counts.items()}
    cases = {
        "draft tokens": dict(scheduled_spec_decode_tokens={"b": [1, 2]}),
        "0.9.x list of cached requests": dict(scheduled_cached_reqs=[ns(req_id="b", num_computed_tokens=3)]),
        "prompt embeds instead of ids": dict(scheduled_new_reqs=[ns(req_id="a", prompt_token_ids=None,
                                                                    prompt_embeds=None, num_computed_tokens=0)]),
        "non-int token count": dict(num_scheduled_tokens={"a": 2.0, "b": 1}),
        "non-str request id": dict(scheduled_new_reqs=[ns(req_id=7, prompt_token_ids=[1], num_computed_tokens=0)],
                                   num_scheduled_tokens={7: 1, "b": 1}),
        "lone surrogate in an id": dict(scheduled_new_reqs=[ns(req_id="a\ud800", prompt_token_ids=[1],
                                                               num_computed_tokens=0)],
                                        num_scheduled_tokens={"a\ud800": 1, "b": 1}),
        "tuple of computed counts": dict(scheduled_cached_reqs=ns(req_ids=["b"], num_computed_tokens=(3,))),
        "no num_scheduled_tokens dict": dict(num_scheduled_tokens=None),
    }
    for what, change in cases.items():
        so = types.SimpleNamespace(**{**vars(base), **change})
        assert fast.classify(so, c.counts, lambda r: 1) is None, what
        assert c.counts == before, what
    c.counts["b"] = ["x", 2]                         # an entry the C form cannot use
    assert fast.classify(base, c.counts, lambda r: 1) is None
    assert c.counts["b"] == ["x", 2]


def test_classify_json_falls_back_with_the_dicts(monkeypatch):
    so = sched_output([], [("b", 3)], {"b": 1}, spec={"b": [5, 6]})
    c = common.IterCounters()
    dj, btype, ij, n, dicts = common.classify_json(so, c, lambda r: 10)
    assert dicts == [{"rid": "b", "iter": 0, "type": 0, "num_scheduled_tokens": 1, "num_prompt_tokens": 10,
                      "num_computed_tokens": 3, "num_spec_tokens": 2}]
    assert (dj, btype, ij, n) == (common.encode_attrs(dicts), "Prefill", b'["b"]', 1)
    monkeypatch.setattr(common, "_fast_classify", None)      # no extension: the same answer
    so = sched_output([], [("b", 12)], {"b": 1})
    assert common.classify_json(so, c, lambda r: 10)[:4] == (
        b'[{"rid":"b","iter":1,"type":1,"num_scheduled_tokens":1,"num_prompt_tokens":10,'
        b'"num_computed_tokens":12}]', "Decode", b'["b"]', 1)


# ------------------------------------------------------------------------------------------------
# phase spans

@pytest.fixture(params=["c", "python"])
def phase_impl(request, monkeypatch):
    if request.param == "c":
        if fast is None:
            pytest.skip("C extension not built (pure-Python pass)")
        monkeypatch.setattr(model_handlers, "_Phase", fast.Phase)
    else:
        monkeypatch.setattr(model_handlers, "_Phase", None)
    monkeypatch.setattr(model_handlers, "_current", [None])
    return request.param


class Tracked:
    def __init__(self, fail_exit=False):
        self.log = []
        self.fail_exit = fail_exit
        self.extra = "forwarded"

    def __enter__(self):
        self.log.append("enter")
        return "entered"

    def __exit__(self, et, ev, tb):
        self.log.append(("exit", et))
        if self.fail_exit:
            raise KeyError("from exit")
        return False


def test_phase_span_recorded_around_block(phase_impl, mock):
    mock.reset()
    mock.set(enabled=True)
    model_handlers._current[0] = (b'{"rid":["a","b"],"batch_type":"Decode","batch_size":2,"type":2}', "Decode", None)
    cm = Tracked()
    with model_handlers._phase(cm, "forward") as v:
        assert v == "entered"
    mock.set(enabled=False)
    with model_handlers._phase(Tracked(), "bookkeep") as w:
        assert w == "entered"
    spans = mock.spans()
    assert [(s["domain"], s["name"]) for s in spans] == [("Execute", "forward")]
    assert spans[0]["attrs"] == {"rid": ["a", "b"], "batch_type": "Decode", "batch_size": 2, "type": 2}
    assert spans[0]["start"] <= spans[0]["end"]
    assert cm.log == ["enter", ("exit", None)]


def test_phase_span_off_filtered_and_raising(phase_impl, mock):
    mock.reset()
    mock.set(enabled=True, level=10)             # INFO spans are above ERROR level: none
    with model_handlers._phase(Tracked(), "sample_token"):
        pass
    mock.set(enabled=True, domain_filter=True)   # the mock's filter lets only "Allowed*" through
    with model_handlers._phase(Tracked(), "sample_token"):
        pass
    assert mock.spans() == []
    mock.set(enabled=True)
    p = model_handlers._phase(Tracked(), "sample_token")
    assert p.extra == "forwarded"
    with pytest.raises(ValueError):
        with p:
            raise ValueError("in block")
    cm = Tracked(fail_exit=True)
    with pytest.raises(KeyError):
        with model_handlers._phase(cm, "post process"):
            pass
    spans = mock.spans()
    assert [s["name"] for s in spans] == ["sample_token", "post process"]
    assert all(s["attrs"] == {"type": 2} for s in spans)
    assert cm.log == ["enter", ("exit", None)]
