"""API server: request lifecycle (CONTRACT §4.4 ``add_request_async`` / ``process_outputs``).

* ``add_request_async`` (``AsyncLLM.add_request``, async): before awaiting the original, events
  ``httpReq`` then ``tokenize``, domain ``Engine``, ``rid`` = the external request id
  (``cmpl-…-0``, ``chatcmpl-…``).  EngineCore and worker records carry the internal id
  ``<external>-<8 hex>``, which the parser maps back (CONTRACT §4.4, request-id correlation).
* ``process_outputs`` (``OutputProcessor.process_outputs``): after the original, event
  ``detokenize`` (domain ``Engine``) with ``rid`` = every id of the call that had a live request
  state, then for each request that finished in this call (its state was removed by the original:
  a finish reason from EngineCore or a stop string found while detokenizing) event ``httpRes``
  with ``recvTokenSize=`` = prompt length and ``replyTokenSize=`` = number of output tokens (the
  detokenizer's count, which is what vLLM's ``usage.completion_tokens`` reports; falls back to
  ``stats.num_generation_tokens``).  Work is proportional to the outputs of the call.
"""

from ms_service_profiler._native import native
from ms_service_profiler.profiler import Profiler, Level, encode_attrs, span_enabled
from . import common

_INFO = Level.INFO


async def add_request_async(original_func, this, *args, **kwargs):
    rid = args[0] if args else kwargs.get("request_id")
    prof = Profiler(_INFO).domain("Engine")
    if prof.enable and rid is not None:
        common.set_role("api_server")
        rid = str(rid)
        prof.res(rid).event("httpReq")
        Profiler(_INFO).domain("Engine").res(rid).event("tokenize")
    return await original_func(this, *args, **kwargs)


def _reply_tokens(st):
    det = getattr(st, "detokenizer", None)
    if det is not None:
        try:
            return det.num_output_tokens()
        except Exception:
            pass
    stats = getattr(st, "stats", None)
    if stats is not None:
        return getattr(stats, "num_generation_tokens", None)
    return None


def _prompt_tokens(st):
    n = getattr(st, "prompt_len", None)
    if n is not None:
        return n
    p = getattr(st, "prompt_token_ids", None)
    return len(p) if p is not None else None


def process_outputs(original_func, this, engine_core_outputs, *args, **kwargs):
    if not span_enabled(_INFO, "Engine"):
        return original_func(this, engine_core_outputs, *args, **kwargs)
    states = this.request_states
    get = states.get
    tracked = []
    for o in engine_core_outputs:
        rid = o.request_id
        st = get(rid)
        if st is not None:
            tracked.append((rid, st))
    r = original_func(this, engine_core_outputs, *args, **kwargs)
    if tracked:
        # once per engine step: written directly, as Profiler.event would
        native.event_json(native.intern("Engine"), native.intern("detokenize"), 0,
                          b'{"rid":%s,"type":0}' % encode_attrs([rid for rid, _st in tracked]))
        for rid, st in tracked:
            if rid not in states:
                Profiler(_INFO).domain("Engine").res(rid) \
                    .metric("recvTokenSize", _prompt_tokens(st)) \
                    .metric("replyTokenSize", _reply_tokens(st)).event("httpRes")
    return r
