"""State of one grid part's pass, carried from chunk to chunk (``grid_pass``).

Per object: its latest position and touch time.  Per position: a window of at least twice the
objects seen so far, compacted by the kernel when full (only the latest access of each
object matters), so memory follows unique blocks, not accesses.  The histograms add up over
chunks; the answer is the same for any chunking.
"""

from __future__ import annotations

import numpy as np

from simkv.sizing.kernels import fen_build, grid_pass

_MIN = 1024


class GridPartState:
    """One part (size class x TTL subset): per-object and per-position state, histograms."""

    def __init__(self, caps: np.ndarray, ttls: np.ndarray, max_size: int, all_included: bool,
                 unit: str) -> None:
        self.caps = np.ascontiguousarray(caps, dtype=np.int64)
        self.ttls = np.ascontiguousarray(ttls, dtype=np.float64)
        self.max_size, self.all_included = int(max_size), bool(all_included)
        self.weight_dtype = np.int32 if unit == "blocks" else np.int64
        self.n = 0
        self.last_pos = np.zeros(0, dtype=np.int32)  # positions < 2 x objects + 64
        self.last_t = np.zeros(0, dtype=np.float64)
        self.pos_weight = np.zeros(0, dtype=self.weight_dtype)
        self.pos_obj = np.zeros(0, dtype=np.int32)
        self.fen = np.zeros(2, dtype=np.int64)
        self.scal = np.zeros(2, dtype=np.int64)  # total weight, next position
        shape = (len(caps) + 1, len(ttls) + 1)
        self.block_hist = np.zeros(shape, dtype=np.int64)
        self.token_hist = np.zeros(shape, dtype=np.int64)

    def _ensure(self, n_obj: int) -> None:
        if n_obj <= self.n:
            return
        n = max(self.n, _MIN)
        while n < n_obj:
            n *= 2
        last_pos = np.full(n, -1, dtype=np.int32)
        last_pos[:self.n] = self.last_pos
        last_t = np.zeros(n, dtype=np.float64)
        last_t[:self.n] = self.last_t
        n_pos = 2 * n + 64
        pos_weight = np.zeros(n_pos, dtype=self.weight_dtype)
        pos_weight[:len(self.pos_weight)] = self.pos_weight
        pos_obj = np.full(n_pos, -1, dtype=np.int32)
        pos_obj[:len(self.pos_obj)] = self.pos_obj
        fen = np.zeros((n_pos >> 6) + 2, dtype=np.int64)
        fen_build(pos_weight, fen)
        self.n, self.last_pos, self.last_t = n, last_pos, last_t
        self.pos_weight, self.pos_obj, self.fen = pos_weight, pos_obj, fen

    def feed(self, ids: np.ndarray, sizes: np.ndarray, n_obj: int, req_offsets: np.ndarray,
             req_time_s: np.ndarray, tokens: np.ndarray) -> None:
        self._ensure(n_obj)
        if self.all_included:
            include = np.ones(1, dtype=np.uint8)
        else:
            include = (sizes[:n_obj] <= self.max_size).astype(np.uint8)
        grid_pass(ids, sizes, include, self.all_included, req_offsets, req_time_s, tokens,
                  self.caps, self.ttls, self.last_pos, self.last_t, self.pos_weight,
                  self.pos_obj, self.fen, self.scal, self.block_hist, self.token_hist)

    def hits(self) -> tuple[np.ndarray, np.ndarray]:
        """Hit blocks and prefix-hit tokens at each (capacity, TTL) of the part."""
        hits = self.block_hist.cumsum(axis=0).cumsum(axis=1)[:-1, :-1]
        tok = self.token_hist.cumsum(axis=0).cumsum(axis=1)[:-1, :-1]
        return hits, tok
