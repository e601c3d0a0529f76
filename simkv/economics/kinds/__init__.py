"""The shipped price-book kinds; importing this package registers them."""

from simkv.economics.kinds import (  # noqa: F401
    anthropic,
    deepseek,
    gemini,
    openai,
    per_token,
    self_hosted,
    storage,
    subscription,
)
