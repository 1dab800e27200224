"""Built-in vLLM handlers of ms_service_profiler (the CONTRACT §4 event contract).

``v1`` holds the handlers for the vLLM V1 engine (0.9.x … 0.32.x); the bundled
``patcher/vllm/config/service_profiling_symbols.yaml`` points at them.  Every handler runs only
while capture is on (the patcher's wrapper checks the native state word first and calls the
original directly otherwise), does work proportional to what changed in the call it wraps,
never synchronises a device, and never lets an exception of its own reach vLLM.
"""
