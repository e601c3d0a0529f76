"""Placeholder: the engine-faithful ``vllm`` policy is added by the harness issue (#7)."""
