"""Worker: model execution, forward phases, sampling (CONTRACT §4.4, adapted to mainline vLLM).

* ``execute_model_runner`` (``GPUModelRunner.execute_model`` — inherited by ``CPUModelRunner`` —
  and ``NPUModelRunner.execute_model``): span ``modelExec``, domain ``Execute``, timed **in the
  worker**, where the work happens: from the start of ``execute_model`` to the end of
  ``sample_tokens`` when sampling is a separate second phase (vLLM ≥ 0.11: ``execute_model``
  returns None), else to the end of ``execute_model``.  Attributes: ``rid`` = the rid dict list
  (same ``rid``/``iter``/``type`` as the scheduler's ``batchFrameworkProcessing``),
  ``batch_type``, ``batch_size`` = total scheduled tokens (a token count; CONTRACT §6 item 32).
  The framework step counter advances once per call (``profiler_step_num``).  Also writes the
  process meta ``processRole`` = worker and ``dpRankId``.
* ``sample_tokens`` (``GPUModelRunner.sample_tokens``): ends the pending ``modelExec``; when draft
  tokens were verified in this step, span ``specDecoding`` (domain ``Execute``) with rid dicts
  carrying ``num_spec_output_tokens`` (proposed) and ``num_spec_accepted_tokens`` (accepted, read
  from the host-side ``ModelRunnerOutput.sampled_token_ids``; omitted for an async output, so no
  device synchronisation happens).
* ``record_function_or_nullcontext`` (``vllm.v1.utils``): the mainline ``gpu_model_runner: *``
  phase tags become spans in domain ``Execute``: ``forward`` (with ``rid`` = the batch's id list,
  ``batch_type``, ``batch_size`` = number of requests), ``prepare input``, ``post process``,
  ``sample_token``, ``draft_token``, ``bookkeep``; vllm-ascend's tag names are accepted as they
  are; every other tag passes through untouched (CONTRACT §6 item 31).
* ``capture_async`` (vllm-ascend ``ProfileExecuteDuration.capture_async(tag)``): same mapping.
* ``execute_model`` (``*Executor.execute_model``, EngineCore side; not in the bundled YAML,
  kept for custom YAMLs): span ``executorExec`` that ends when the returned Future completes.
* ``compute_logits`` / ``sampler_forward``: spans ``computing_logits`` / ``sample`` without any
  device synchronisation (the bundled YAML uses plain timers for these, which is cheaper).

No handler here synchronises a device (CONTRACT §6 item 28).
"""

import inspect
from time import monotonic_ns as _now

from ms_service_profiler._native import native, HOOK_ERROR
from ms_service_profiler.profiler import Profiler, Level, prof_step, span_enabled
from . import common

_INFO = Level.INFO
_counters = common.IterCounters()
_depth = [0]            # re-entrancy: NPUModelRunner.execute_model calling super() is one step
_pending = [None]       # modelExec waiting for sample_tokens: (start ns, attribute JSON)
_current = [None]       # step being executed: (forward's attribute JSON, batch_type, rid dicts
                        # when drafts were scheduled else None)
_Phase = native.fast.Phase if native.fast is not None else None


def _prompt_len_of(runner):
    reqs = getattr(runner, "requests", None) or {}

    def f(rid):
        st = reqs.get(rid)
        if st is None:
            return None
        n = getattr(st, "num_prompt_tokens", None)
        if n is not None:
            return n
        p = getattr(st, "prompt_token_ids", None)
        return len(p) if p is not None else None
    return f


def execute_model_runner(original_func, this, scheduler_output, *args, **kwargs):
    if _depth[0]:
        return original_func(this, scheduler_output, *args, **kwargs)
    _pending[0] = None          # a span left open by a disable between the two phases: drop it
    _current[0] = None
    common.set_role("worker")
    common.set_dp_rank(this)
    so = scheduler_output
    js = None
    bs = so.total_num_scheduled_tokens
    if bs and span_enabled(_INFO, "Execute"):
        _counters.finished(so.finished_req_ids)
        _counters.prune(getattr(this, "requests", None) or {})
        dicts_json, btype, ids_json, n, dicts = common.classify_json(so, _counters, _prompt_len_of(this))
        bt = common.batch_type_json(btype)
        js = b'{"type":2,"rid":%s,%s,"batch_size":%d}' % (dicts_json, bt, bs)
        spec = dicts if dicts is not None and getattr(so, "scheduled_spec_decode_tokens", None) else None
        _current[0] = (b'{"rid":%s,%s,"batch_size":%d,"type":2}' % (ids_json, bt, n), btype, spec)
        t0 = _now()
    _depth[0] += 1
    try:
        r = original_func(this, so, *args, **kwargs)
    except BaseException:
        _current[0] = None
        if js is not None:
            _end_model_exec(t0, js[:-1] + b',"error":"exception"}')
        raise
    finally:
        _depth[0] -= 1
        prof_step()
    if js is not None:
        if r is None and hasattr(this, "sample_tokens"):
            _pending[0] = (t0, js)      # sampling is the second phase: sample_tokens ends it
        else:
            _current[0] = None
            _end_model_exec(t0, js)
    return r


def _end_model_exec(t0, js):
    native.span_json(native.intern("Execute"), native.intern("modelExec"), t0, _now(), js)


def sample_tokens(original_func, this, *args, **kwargs):
    pending = _pending[0]
    _pending[0] = None
    cur = _current[0]
    spec = None
    if cur is not None and cur[2] is not None and any("num_spec_tokens" in d for d in cur[2]):
        spec = Profiler(_INFO).domain("Execute").span_start("specDecoding")
    try:
        r = original_func(this, *args, **kwargs)
    finally:
        _current[0] = None
        if pending is not None:
            _end_model_exec(*pending)
    if spec is not None and spec.enable:
        _spec_decoding(spec, cur, r)
    return r


def _spec_decoding(prof, cur, output):
    """specDecoding: per request, drafts proposed for this step and how many were accepted."""
    sampled = getattr(output, "sampled_token_ids", None)      # host lists; absent when async
    index = None
    if isinstance(sampled, list):
        ids = getattr(output, "req_ids", None)
        if ids is not None:
            index = getattr(output, "req_id_to_index", None) or {r: i for i, r in enumerate(ids)}
    dicts = []
    total_spec = total_acc = 0
    for d in cur[2]:
        n = d.get("num_spec_tokens")
        if not n:
            continue
        e = {"rid": d["rid"], "iter": d["iter"], "type": d["type"],
             "num_scheduled_tokens": n, "num_computed_tokens": d["num_computed_tokens"],
             "num_spec_output_tokens": n}
        if index is not None:
            i = index.get(d["rid"])
            if i is not None and i < len(sampled):
                acc = max(len(sampled[i]) - 1, 0)
                e["num_spec_accepted_tokens"] = acc
                total_acc += acc
        total_spec += n
        dicts.append(e)
    prof.res(dicts).attr("batch_type", cur[1])
    if index is not None and total_spec:
        prof.attr("accepted_ratio", round(total_acc / total_spec, 4))
    prof.span_end()


# ------------------------------------------------------------------------------------------------
# phase tags

_TAGS = {
    "gpu_model_runner: forward": "forward",
    "gpu_model_runner: preprocess": "prepare input",
    "gpu_model_runner: postprocess": "post process",
    "gpu_model_runner: sample": "sample_token",
    "gpu_model_runner: draft": "draft_token",
    "gpu_model_runner: bookkeep": "bookkeep",
    # vllm-ascend's own tags (ProfileExecuteDuration / record_function_or_nullcontext)
    "forward": "forward",
    "prepare input": "prepare input",
    "post process": "post process",
    "sample_token": "sample_token",
    "draft_token": "draft_token",
    "EPLB weight D2D": "EPLB weight D2D",
    "EPLB update": "EPLB update",
    "async_state_update": "async_state_update",
}


_SPAN_ONLY = b'{"type":2}'      # what Profiler.span_start puts on a span without attributes


_phase_ids = {}      # span name -> (id of "Execute", id of the name); the library's ids are
                    # fixed for the life of the process and inherited by forks


def _phase(cm, span):
    """The phase tag's context manager wrapped in a span (C ``_fast.Phase`` when built)."""
    js = _SPAN_ONLY
    if span == "forward":
        cur = _current[0]
        if cur is not None:
            js = cur[0]
    if _Phase is None:
        return _PhaseSpan(cm, span, js)
    ids = _phase_ids.get(span)
    if ids is None:
        ids = (native.intern("Execute"), native.intern(span))
        if ids[0] and ids[1]:
            _phase_ids[span] = ids
    return _Phase(cm, ids[0], ids[1], _INFO, js)


class _PhaseSpan:
    """Python fallback of ``_fast.Phase``: wraps the context manager vLLM gets back with a span
    around its ``with`` block, written directly (interned ids, attribute JSON built once per
    step) rather than through the ``Profiler`` builder."""

    __slots__ = ("_cm", "_span", "_t0", "_js")

    def __init__(self, cm, span, js):
        self._cm = cm
        self._span = span
        self._js = js
        self._t0 = None

    def __enter__(self):
        try:                       # vLLM calls this directly: nothing of ours may raise into it
            if span_enabled(_INFO, "Execute"):
                self._t0 = _now()
        except Exception:
            native.count_error(HOOK_ERROR)
        return self._cm.__enter__()

    def __exit__(self, et, ev, tb):
        try:
            return self._cm.__exit__(et, ev, tb)
        finally:
            t0 = self._t0
            if t0 is not None:
                self._t0 = None
                try:
                    native.span_json(native.intern("Execute"), native.intern(self._span), t0, _now(), self._js)
                except Exception:
                    native.count_error(HOOK_ERROR)

    def __getattr__(self, name):
        return getattr(self._cm, name)


def record_function_or_nullcontext(original_func, name, *args, **kwargs):
    cm = original_func(name, *args, **kwargs)
    span = _TAGS.get(name)
    if span is None:
        return cm
    return _phase(cm, span)


def capture_async(original_func, *args, **kwargs):
    """vllm-ascend ``ProfileExecuteDuration.capture_async(self, duration_tag)`` (a context
    manager function): span named by the tag."""
    cm = original_func(*args, **kwargs)
    tag = kwargs.get("duration_tag", args[-1] if args else None)
    span = _TAGS.get(tag) if isinstance(tag, str) else None
    if span is None:
        return cm
    return _phase(cm, span)


# ------------------------------------------------------------------------------------------------
# EngineCore side executor (kept for custom YAMLs) and plain spans

def execute_model(original_func, this, scheduler_output, *args, **kwargs):
    so = scheduler_output
    if not getattr(so, "total_num_scheduled_tokens", 0):
        return original_func(this, so, *args, **kwargs)
    prof = Profiler(_INFO).domain("Execute")
    if not prof.enable:
        return original_func(this, so, *args, **kwargs)
    prof.span_start("executorExec").attr("batch_size", so.total_num_scheduled_tokens) \
        .res(list(so.num_scheduled_tokens))
    try:
        r = original_func(this, so, *args, **kwargs)
    except BaseException:
        prof.attr("error", "exception").span_end()
        raise
    add = getattr(r, "add_done_callback", None)
    if add is not None and not inspect.isawaitable(r):
        try:
            add(lambda _f: prof.span_end())
            return r
        except Exception:
            pass
    prof.span_end()
    return r


def compute_logits(original_func, *args, **kwargs):
    with Profiler(_INFO).domain("Execute").span_start("computing_logits"):
        return original_func(*args, **kwargs)


def sampler_forward(original_func, *args, **kwargs):
    with Profiler(_INFO).domain("Execute").span_start("sample"):
        return original_func(*args, **kwargs)
