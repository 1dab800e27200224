"""EngineCore: KV cache events (CONTRACT §4.4 ``free`` / ``get_computed_blocks``).

* ``free`` (``KVCacheManager.free``): after the call, event ``Free``, domain ``Schedule.KVCache``,
  ``rid`` = the request id, ``deviceBlock=`` = number of **free** blocks after the call (the
  reference's key name, kept for the parser; CONTRACT §6 item 32), ``UsagePercent=`` = vLLM's
  ``usage`` (0–1).
* ``get_computed_blocks`` (``KVCacheManager.get_computed_blocks``): after the call, when the result
  has more than one element and ``request.num_tokens`` > 0, event ``CacheHitRate``, domain
  ``Schedule.KVCache``, ``rid``, ``hitCache`` = prefix-cache hit tokens (result[1]) ÷ request tokens.
"""

from ms_service_profiler.profiler import Profiler, Level

_INFO = Level.INFO


def free(original_func, this, request, *args, **kwargs):
    r = original_func(this, request, *args, **kwargs)
    prof = Profiler(_INFO).domain("Schedule.KVCache")
    if prof.enable:
        prof.res(request.request_id)
        try:
            prof.metric("deviceBlock", this.block_pool.get_num_free_blocks())
        except Exception:
            pass
        try:
            prof.metric("UsagePercent", this.usage)
        except Exception:
            pass
        prof.event("Free")
    return r


def get_computed_blocks(original_func, this, request, *args, **kwargs):
    r = original_func(this, request, *args, **kwargs)
    prof = Profiler(_INFO).domain("Schedule.KVCache")
    if prof.enable and isinstance(r, tuple) and len(r) > 1:
        n = request.num_tokens
        if n:
            prof.res(request.request_id).attr("hitCache", r[1] / n).event("CacheHitRate")
    return r
