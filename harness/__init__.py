"""simkv-harness: replay a simkv Trace on a real vLLM (+ LMCache) and compare with simkv."""
