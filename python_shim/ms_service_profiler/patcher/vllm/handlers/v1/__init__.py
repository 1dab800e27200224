"""vLLM V1 handlers: request (API server), batch / queue / KV cache (EngineCore), model execution,
sampling and spec decode (worker), process meta.  See docs/VLLM.md."""
