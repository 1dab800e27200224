"""EngineCore: scheduler batches and queues (CONTRACT §4.4 ``schedule`` / ``add_request``).

``schedule`` (``Scheduler.schedule``, ``AscendScheduler.schedule``):

* span ``batchFrameworkProcessing`` (domain ``Schedule``) around the call, with ``rid`` = the rid
  dict list and ``batch_type``; recorded only when tokens were scheduled;
* queue events, domain ``Schedule``, ``rid`` = list of ids, ``QueueSize=`` = queue length after
  the call, ``scope#QueueName`` = ``RUNNING`` / ``WAITING``: ``Dequeue``/``Enqueue`` — emitted
  also when nothing was scheduled (CONTRACT §6 item 29).  The moves are read from the
  SchedulerOutput instead of diffing copies of the queues (item 27): requests scheduled from the
  waiting queue = new requests + ``resumed_req_ids``; preempted = ``preempted_req_ids``; requests
  that left a queue by finishing = ``finished_req_ids``;
* event ``KVCacheStatus`` (domain ``Schedule.KVCache``) when tokens were scheduled: ``TotalBlocks=``,
  ``UsedBlocks=``, ``FreeBlocks=``, ``UsagePercent=`` (0–1), ``AllocatedBlocks=`` (used after −
  used before; negative when blocks were freed).

``add_request`` (``Scheduler.add_request``): event ``Enqueue`` into ``WAITING`` with the new
request's id (not for a streaming-input update of a request already known).
"""

from math import isfinite as _finite
from time import monotonic_ns as _now

from ms_service_profiler._native import native
from ms_service_profiler.profiler import Profiler, Level, encode_attrs, span_enabled
from . import common

_counters = common.IterCounters()
# rid -> "WAITING" / "RUNNING": which queue a live request is in, so a finished request leaves the
# right one.  Updated only for requests that move; pruned like the iter counters.
_where = {}
_where_limit = [1024]
_depth = [0]   # re-entrancy guard: a subclass override calling super().schedule() is one batch

_INFO = Level.INFO


def _waiting_len(sched):
    n = len(sched.waiting)
    kvh = getattr(sched, "kv_holding_waiting", None)
    if kvh is not None:
        n += len(kvh)
    return n


def _free_blocks(kvm):
    try:
        return kvm.block_pool.get_num_free_blocks()
    except Exception:
        return None


def _total_blocks(sched, kvm):
    try:
        return sched.kv_cache_config.num_blocks
    except Exception:
        pass
    try:
        return kvm.block_pool.num_gpu_blocks
    except Exception:
        return None


def _queue_event(name, queue, rids, size):
    Profiler(_INFO).domain("Schedule").res(rids).metric("QueueSize", size) \
        .metric_scope("QueueName", queue).event(name)


def _prune_where(sched):
    if len(_where) > _where_limit[0]:
        live = sched.requests
        for rid in [r for r in _where if r not in live]:
            del _where[rid]
        _where_limit[0] = max(1024, 2 * len(_where))


def schedule(original_func, this, *args, **kwargs):
    if _depth[0] or not span_enabled(_INFO, "Schedule"):
        return original_func(this, *args, **kwargs)
    common.set_role("engine_core")
    common.set_dp_rank(this)
    kvm = getattr(this, "kv_cache_manager", None)
    free_before = _free_blocks(kvm) if kvm is not None else None
    t0 = _now()
    _depth[0] += 1
    try:
        out = original_func(this, *args, **kwargs)
    finally:
        _depth[0] -= 1
    _after_schedule(this, out, t0, kvm, free_before)
    return out


def _after_schedule(this, out, t0, kvm, free_before):
    requests = this.requests
    # --- queues -------------------------------------------------------------------------------
    finished = out.finished_req_ids
    preempted = getattr(out, "preempted_req_ids", None)
    moved = [r.req_id for r in out.scheduled_new_reqs]
    cr = out.scheduled_cached_reqs
    resumed = getattr(cr, "resumed_req_ids", None)
    if resumed:
        moved.extend(resumed)
    elif resumed is None and not isinstance(cr, (list, tuple)):
        flags = getattr(cr, "resumed_from_preemption", None)        # vLLM 0.10 – 0.11
        if flags:
            moved.extend(rid for rid, f in zip(cr.req_ids, flags) if f)
    elif isinstance(cr, (list, tuple)):                               # vLLM 0.9.x
        moved.extend(c.req_id for c in cr if getattr(c, "resumed_from_preemption", False))

    if finished or preempted or moved:
        n_run = len(this.running)
        n_wait = _waiting_len(this)
        left_running = []
        if finished:
            left_waiting = []
            for rid in finished:
                q = _where.pop(rid, "RUNNING")
                (left_waiting if q == "WAITING" else left_running).append(rid)
            if left_waiting:
                _queue_event("Dequeue", "WAITING", left_waiting, n_wait)
            _counters.finished(finished)
        if preempted:
            pre = list(preempted)
            left_running.extend(pre)
        if left_running:
            _queue_event("Dequeue", "RUNNING", left_running, n_run)
        if preempted:
            for rid in pre:
                _where[rid] = "WAITING"
            _queue_event("Enqueue", "WAITING", pre, n_wait)
        if moved:
            for rid in moved:
                _where[rid] = "RUNNING"
            _queue_event("Dequeue", "WAITING", moved, n_wait)
            _queue_event("Enqueue", "RUNNING", moved, n_run)
    _prune_where(this)
    _counters.prune(requests)

    # --- batch --------------------------------------------------------------------------------
    if not out.total_num_scheduled_tokens:
        return   # nothing scheduled: no batch span, no KV status (the queue events are above)

    def prompt_len_of(rid):
        r = requests.get(rid)
        return getattr(r, "num_prompt_tokens", None) if r is not None else None

    dicts_json, btype, ids_json, _n, _dicts = common.classify_json(out, _counters, prompt_len_of)
    if kvm is not None:
        _kv_status(this, kvm, free_before, ids_json)
    # written directly (the attribute JSON is built by classify_json), as Profiler.span_end would
    native.span_json(native.intern("Schedule"), native.intern("batchFrameworkProcessing"), t0, _now(),
                     b'{"type":2,"rid":' + dicts_json + b"," + common.batch_type_json(btype) + b"}")


def _kv_status(this, kvm, free_before, ids_json):
    """Event ``KVCacheStatus`` (domain ``Schedule.KVCache``) after a batch was scheduled; ``rid``
    is the batch's id list (JSON from classify_json)."""
    free_after = _free_blocks(kvm)
    total = _total_blocks(this, kvm)
    if free_after is None or total is None or not span_enabled(_INFO, "Schedule.KVCache"):
        return
    tail = b""
    try:
        u = kvm.usage
        tail = b',"UsagePercent=":' + (b"%r" % u if type(u) is float and _finite(u) else encode_attrs(u))
    except Exception:
        pass
    if free_before is not None:
        tail += b',"AllocatedBlocks=":%d' % (free_before - free_after)
    native.event_json(native.intern("Schedule.KVCache"), native.intern("KVCacheStatus"), 0,
                      b'{"rid":%s,"TotalBlocks=":%d,"UsedBlocks=":%d,"FreeBlocks=":%d%s,"type":0}'
                      % (ids_json, total, total - free_after, free_after, tail))


def add_request(original_func, this, request, *args, **kwargs):
    prof = Profiler(_INFO).domain("Schedule")
    if not prof.enable:
        return original_func(this, request, *args, **kwargs)
    rid = request.request_id
    known = rid in this.requests
    r = original_func(this, request, *args, **kwargs)
    if not known:
        _where[rid] = "WAITING"
        prof.res(rid).metric("QueueSize", _waiting_len(this)) \
            .metric_scope("QueueName", "WAITING").event("Enqueue")
    return r
