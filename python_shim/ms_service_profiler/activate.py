"""``import ms_service_profiler.activate`` activates the profiler in this process.

For launchers that do not run vLLM's ``vllm.general_plugins`` (custom serving code, scripts).
Same rules as the plugin: nothing happens unless ``SERVICE_PROF_CONFIG_PATH`` is set.  Child
processes started with ``spawn`` must import it again (vLLM's own processes use the plugin).
"""

from .patcher.vllm import register_service_profiler as _register

_register()
