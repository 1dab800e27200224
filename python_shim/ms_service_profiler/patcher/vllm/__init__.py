"""vLLM integration: the ``vllm.general_plugins`` entry point.

``register_service_profiler`` is called by vLLM in every process it creates (API server,
EngineCore, workers).  It does nothing unless ``SERVICE_PROF_CONFIG_PATH`` is set, skips vLLM's
model-registry inspection subprocess, tolerates repeated calls, and never raises.
"""

import logging
import os
import sys

logger = logging.getLogger("ms_service_profiler")

_REGISTRY_MODULE = "vllm.model_executor.models.registry"
_done = False


def _is_registry_subprocess():
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None) == _REGISTRY_MODULE:
        return True
    argv0 = sys.argv[0] if sys.argv else ""
    tail = os.path.join("model_executor", "models", "registry.py")
    if argv0.endswith(tail) or argv0 == _REGISTRY_MODULE:
        return True
    orig = getattr(sys, "orig_argv", [])
    for i, a in enumerate(orig[:-1]):
        if a == "-m" and orig[i + 1] == _REGISTRY_MODULE:
            return True
    return False


def register_service_profiler():
    """Entry point: install the profiler hooks in this process when profiling is configured."""
    global _done
    try:
        if not os.environ.get("SERVICE_PROF_CONFIG_PATH", "").strip():
            return
        if _done or _is_registry_subprocess():
            return
        _done = True
        from ... import patcher as _patcher   # binds the native library (msp_init) on import
        _patcher.enable_hooks()
    except Exception as exc:  # never raise into vLLM
        try:
            logger.warning("ms_service_profiler: plugin activation failed: %s", exc)
        except Exception:
            pass
