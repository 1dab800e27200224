"""Spec decode on vllm-ascend (CONTRACT §4.4 ``propose_draft_token_ids_npu``).

On mainline vLLM the ``specDecoding`` span comes from ``model_handlers.sample_tokens`` (proposed
and accepted tokens per request, no device synchronisation).  This handler covers
``NPUModelRunner.propose_draft_token_ids``: when ``scheduled_spec_decode_tokens`` is a non-empty
dict, span ``specDecoding`` (domain ``Execute``) with rid dicts carrying
``num_spec_output_tokens`` = number of draft tokens.  Unlike the reference, it copies nothing from
the device (accepted counts are not read here).
"""

from ms_service_profiler.profiler import Profiler, Level

_INFO = Level.INFO


def _find_scheduler_output(args, kwargs):
    so = kwargs.get("scheduler_output")
    if so is not None:
        return so
    for a in args:
        if hasattr(a, "scheduled_spec_decode_tokens"):
            return a
    return None


def propose_draft_token_ids_npu(original_func, this, *args, **kwargs):
    so = _find_scheduler_output(args, kwargs)
    spec = getattr(so, "scheduled_spec_decode_tokens", None)
    if not isinstance(spec, dict) or not spec:
        return original_func(this, *args, **kwargs)
    prof = Profiler(_INFO).domain("Execute")
    if not prof.enable:
        return original_func(this, *args, **kwargs)
    prof.span_start("specDecoding")
    try:
        return original_func(this, *args, **kwargs)
    finally:
        prof.res([{"rid": rid, "num_scheduled_tokens": len(t), "num_spec_output_tokens": len(t)}
                  for rid, t in spec.items()])
        prof.span_end()
