"""ms_service_profiler: the Python side of the service profiler for vLLM.

``from ms_service_profiler import Profiler, Level`` is the msServiceProfiler-compatible API.
Importing this package loads only the native binding; the patcher is imported on demand.
"""

from .profiler import Profiler, Level

__all__ = ["Profiler", "Level"]
__version__ = "0.1.0"
