"""Cache configuration: a frozen dataclass the engine receives (validated at the edge)."""

from __future__ import annotations

from dataclasses import dataclass

from simkv.errors import InputError

TTL_MODES = ("refresh_on_hit", "from_write")
REUSE_MODES = ("prefix", "chunk")
#: Share of non-prefix chunk-hit tokens recomputed to restore cross-attention (CacheBlend-style
#: reuse): the one default of ``--blend-recompute-share``, the report and the bill comparison.
DEFAULT_BLEND_RECOMPUTE_SHARE = 0.15


@dataclass(frozen=True)
class CacheConfig:
    """One cache: capacity (bytes or blocks; neither = unlimited), policy, TTL and reuse mode.

    - ``capacity_bytes``: blocks weigh ``model.block_bytes(trace.block_tokens)`` each;
    - ``capacity_blocks``: every block weighs 1 whatever its model;
    - ``ttl_s``: an entry last touched (``refresh_on_hit``) or written (``from_write``) at ``t``
      serves a request arriving at ``t'`` only if ``t' - t < ttl_s``; expired entries are
      dropped and never count against capacity;
    - ``reuse``: ``prefix`` (a request's hit is its leading run of cached blocks) or ``chunk``
      (a block hits if its *content* is cached, whatever precedes it; CacheBlend-style), with
      ``blend_recompute_share`` of chunk-hit tokens recomputed anyway to restore cross-attention.
    """

    capacity_bytes: int | None = None
    capacity_blocks: int | None = None
    policy: str = "lru"
    ttl_s: float | None = None
    ttl_mode: str = "refresh_on_hit"
    reuse: str = "prefix"
    blend_recompute_share: float = 0.0

    def __post_init__(self) -> None:
        if self.capacity_bytes is not None and self.capacity_blocks is not None:
            raise InputError("give a capacity in bytes or in blocks, not both", where="capacity")
        for name in ("capacity_bytes", "capacity_blocks"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise InputError(f"{name} must be >= 0", where=name)
        if self.ttl_s is not None and not self.ttl_s > 0:
            raise InputError("ttl must be > 0", where="ttl")
        if self.ttl_mode not in TTL_MODES:
            raise InputError(f"unknown TTL mode {self.ttl_mode!r} (valid: {', '.join(TTL_MODES)})",
                             where="ttl_mode")
        if self.reuse not in REUSE_MODES:
            raise InputError(f"unknown reuse mode {self.reuse!r} (valid: {', '.join(REUSE_MODES)})",
                             where="reuse")
        if not 0.0 <= self.blend_recompute_share <= 1.0:
            raise InputError("blend_recompute_share must be within [0, 1]",
                             where="blend_recompute_share")

    @property
    def unlimited(self) -> bool:
        return self.capacity_bytes is None and self.capacity_blocks is None

    @property
    def by_blocks(self) -> bool:
        return self.capacity_blocks is not None

    def describe(self) -> str:
        if self.capacity_blocks is not None:
            cap = f"{self.capacity_blocks} blocks"
        elif self.capacity_bytes is not None:
            cap = f"{self.capacity_bytes} bytes"
        else:
            cap = "unlimited"
        ttl = "no TTL" if self.ttl_s is None else f"TTL {self.ttl_s:g} s ({self.ttl_mode})"
        return f"{self.policy}, {cap}, {ttl}, {self.reuse} reuse"
