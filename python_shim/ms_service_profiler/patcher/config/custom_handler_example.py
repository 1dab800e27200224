"""Example custom handler (the user guide's Example 1).

YAML::

    - symbol: vllm.v1.core.kv_cache_manager:KVCacheManager.free
      handler: ms_service_profiler.patcher.config.custom_handler_example.kvcache_manager_free_example_handler
      domain: Example
      name: example_custom

A handler receives ``(original_func, this, *args, **kwargs)`` for a method
(``(original_func, *args, **kwargs)`` for a module function), must call ``original_func``
itself -- with ``this`` and every argument -- and return its result.  The handler runs only
while capture is on; exceptions of the original propagate unchanged.
"""

from ms_service_profiler import Profiler, Level


def kvcache_manager_free_example_handler(original_func, this, *args, **kwargs):
    """Span ``example_custom`` (domain ``Example``) around ``KVCacheManager.free(request)``,
    tagged with the request id and the KV-cache usage after the call."""
    prof = Profiler(Level.INFO).domain("Example").span_start("example_custom")
    try:
        return original_func(this, *args, **kwargs)
    finally:
        request = args[0] if args else kwargs.get("request")
        rid = getattr(request, "request_id", None)
        if rid is not None:
            prof.res(rid)
        usage = getattr(this, "usage", None)
        if isinstance(usage, (int, float)):
            prof.metric("UsagePercent", usage)
        prof.span_end()
