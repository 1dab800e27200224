"""Shared pieces of the V1 handlers: the per-request classifier (CONTRACT §4.3), the batch type,
and the process meta (processRole, dpRankId).

Nothing here synchronises a device or copies a queue: the classifier walks the requests of the
one SchedulerOutput it is given.
"""

import logging

from ms_service_profiler._native import native
from ms_service_profiler.mstx import service_profiler
from ms_service_profiler.profiler import encode_attrs

logger = logging.getLogger("ms_service_profiler")

PREFILL = 0
DECODE = 1


class IterCounters:
    """Per-request scheduling state: ``counts[rid] = [next iter, prompt length]``.

    ``iter`` counts from 0 and advances each time the request is scheduled while capture is on;
    the prompt length is remembered so that steady-state decode steps need no lookup.  Entries are
    dropped for ``finished_req_ids``; if capture was off when a request finished, the stale entry
    is removed by an occasional prune against the live request table, so the state is bounded by
    the live requests (CONTRACT §6 item 30)."""

    __slots__ = ("counts", "limit")

    def __init__(self):
        self.counts = {}
        self.limit = 1024

    def next(self, rid, prompt_len=None):
        st = self.counts.get(rid)
        if st is None:
            self.counts[rid] = st = [0, prompt_len]
        it = st[0]
        st[0] = it + 1
        return it

    def finished(self, rids):
        if rids:
            c = self.counts
            for rid in rids:
                c.pop(rid, None)

    def prune(self, live):
        """Called once per step: O(1) unless the table outgrew the live requests."""
        c = self.counts
        if len(c) > self.limit:
            try:
                keep = {k: v for k, v in c.items() if k in live}
            except Exception:
                keep = {}
            self.counts = keep
            self.limit = max(1024, 2 * len(keep))


def _prompt_len_new(req):
    p = getattr(req, "prompt_token_ids", None)
    if p is not None:
        return len(p)
    e = getattr(req, "prompt_embeds", None)
    if e is not None:
        try:
            return int(e.shape[0])
        except Exception:
            return None
    return None


def batch_type_of(has_prefill, has_decode):
    if has_prefill and has_decode:
        return "Prefill,Decode"          # no space (CONTRACT §4.3)
    if has_prefill:
        return "Prefill"
    if has_decode:
        return "Decode"
    return None


def _scheduled(scheduler_output, nst):
    """``(rid, tokens, computed, new request or None)`` of every request with scheduled tokens:
    the new ones first, then the cached (running / resumed) ones, in both the columnar
    ``CachedRequestData`` (vLLM >= 0.10) and the 0.9.x list of per-request objects."""
    for r in scheduler_output.scheduled_new_reqs:
        n = nst.get(r.req_id)
        if n is not None:
            yield r.req_id, n, r.num_computed_tokens, r
    cr = scheduler_output.scheduled_cached_reqs
    if isinstance(cr, (list, tuple)):           # vLLM 0.9.x
        pairs = [(x.req_id, x.num_computed_tokens) for x in cr]
    else:
        ids = getattr(cr, "req_ids", None)
        pairs = zip(ids, cr.num_computed_tokens) if ids else ()
    for rid, c in pairs:
        n = nst.get(rid)
        if n is not None:
            yield rid, n, c, None


def classify(scheduler_output, counters, prompt_len_of):
    """The rid dict list (CONTRACT §3.5 shape 3) and the batch type of one SchedulerOutput.

    Work proportional to the batch.  ``prompt_len_of(rid)`` gives the prompt length of a request
    whose own object does not tell it (first seen as a cached one: capture turned on while it
    ran).  Returns ``([], None)`` when nothing was scheduled.  ``classify_json`` is the fast
    form."""
    nst = scheduler_output.num_scheduled_tokens
    if not nst:
        return [], None
    counts = counters.counts
    spec = getattr(scheduler_output, "scheduled_spec_decode_tokens", None)
    out = []
    append = out.append
    has_p = has_d = False
    for rid, n, c, new in _scheduled(scheduler_output, nst):
        st = counts.get(rid)
        if new is not None:
            p = _prompt_len_new(new)
            if p is None:
                p = prompt_len_of(rid)
            if st is None:
                counts[rid] = st = [0, p]
            else:
                st[1] = p
        else:
            if st is None:
                counts[rid] = st = [0, prompt_len_of(rid)]
            p = st[1]
        it = st[0]
        st[0] = it + 1
        if p is not None and c < p:
            t = 0
            has_p = True
        else:
            t = 1
            has_d = True
        append({"rid": rid, "iter": it, "type": t, "num_scheduled_tokens": n,
                "num_prompt_tokens": p, "num_computed_tokens": c})
    if spec:
        for d in out:
            s = spec.get(d["rid"])
            if s:
                d["num_spec_tokens"] = len(s)
    return out, batch_type_of(has_p, has_d)


_fast_classify = native.fast.classify if native.fast is not None else None

_BATCH_TYPE_JSON = {None: b'"batch_type":null', "Prefill": b'"batch_type":"Prefill"',
                    "Decode": b'"batch_type":"Decode"', "Prefill,Decode": b'"batch_type":"Prefill,Decode"'}


def classify_json(scheduler_output, counters, prompt_len_of):
    """``classify`` with its lists already JSON: ``(dicts_json, batch_type, ids_json, n, dicts)``.

    ``dicts_json`` is the rid dict list and ``ids_json`` the list of its ids, both as bytes; ``n``
    the number of requests.  Uses the C extension (``_fast.classify``, no Python dicts at all)
    for the common shape, where ``dicts`` is None; otherwise, or without the extension, the
    Python ``classify`` and ``dicts`` is its list (the spec-decode handler reads it).  Both
    update ``counters`` the same way and give the same bytes."""
    if _fast_classify is not None:
        r = _fast_classify(scheduler_output, counters.counts, prompt_len_of)
        if r is not None:
            return r + (None,)
    dicts, btype = classify(scheduler_output, counters, prompt_len_of)
    return encode_attrs(dicts), btype, encode_attrs([d["rid"] for d in dicts]), len(dicts), dicts


def batch_type_json(btype):
    """``"batch_type":<json>`` as bytes, for attribute JSON written by hand."""
    t = _BATCH_TYPE_JSON.get(btype)
    return t if t is not None else b'"batch_type":' + encode_attrs(btype)


# ------------------------------------------------------------------------------------------------
# process meta: processRole and dpRankId, written once per process (the library keeps meta for the
# life of the process and writes it into every file set, whether or not capture is on).

_roles = []
_dp_written = [False]


def set_role(role):
    """Record this process's role ("api_server", "engine_core", "worker"); cheap after the first
    call.  A process with two roles (the worker inside EngineCore with UniProcExecutor) gets
    "engine_core,worker"."""
    if role in _roles:
        return
    try:
        _roles.append(role)
        service_profiler.add_meta_info("processRole", ",".join(_roles))
    except Exception:
        pass


def dp_rank_of(obj):
    """dp rank from an object holding ``dp_rank``, ``parallel_config`` or ``vllm_config``; -1."""
    try:
        r = getattr(obj, "dp_rank", None)
        if isinstance(r, int):
            return r
        pc = getattr(obj, "parallel_config", None)
        if pc is None:
            vc = getattr(obj, "vllm_config", None)
            pc = getattr(vc, "parallel_config", None)
        r = getattr(pc, "data_parallel_rank", None)
        if isinstance(r, int):
            return r
    except Exception:
        pass
    return -1


def set_dp_rank(obj):
    """Write meta ``dpRankId`` once per process (looked up on ``obj``)."""
    if _dp_written[0]:
        return
    _dp_written[0] = True
    try:
        service_profiler.add_meta_info("dpRankId", dp_rank_of(obj))
    except Exception:
        pass


def _after_fork_child():
    # a forked child is a new process with its own file set: write its meta again
    del _roles[:]
    _dp_written[0] = False


try:
    import os as _os
    _os.register_at_fork(after_in_child=_after_fork_child)
except Exception:  # pragma: no cover
    pass
