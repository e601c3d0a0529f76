"""The compiled prompt layout of the workload generator: segments of each request.

Kept apart from ``simkv.workloads.generator`` (which draws and orders the requests) so that
each module stays small; the layout itself is described in the generator's docstring.
"""

from __future__ import annotations

import numba
import numpy as np

from simkv.hashing import mix64
from simkv.trace.model import TAG_CODES

_TAG_SYSTEM, _TAG_TOOLS = TAG_CODES["system"], TAG_CODES["tools"]
_TAG_DOC, _TAG_HISTORY, _TAG_USER = TAG_CODES["document"], TAG_CODES["history"], TAG_CODES["user"]


@numba.njit(cache=True)
def build_segments(req_q, req_j, hist_turns, include_docs, sys_id, sys_len, tools_id,
                    tools_len, doc_space, doc_offsets, doc_ids, doc_tokens, user_tokens,
                    output_tokens, user_key, out_key, doc_key):  # pragma: no cover - compiled
    """Flat segment lists (ids, lengths, tags) of every request; see the module docstring."""
    n = req_q.shape[0]
    counts = np.zeros(n + 1, dtype=np.int64)
    for r in range(n):
        q, j = req_q[r], req_j[r]
        h0 = 0 if hist_turns < 0 else max(0, j - hist_turns)
        c = (1 if sys_len[r] > 0 else 0) + (1 if tools_len[r] > 0 else 0)
        for qq in range(q - (j - h0), q):
            c += 2 + (doc_offsets[qq + 1] - doc_offsets[qq] if include_docs else 0)
        c += doc_offsets[q + 1] - doc_offsets[q] + 1
        counts[r + 1] = counts[r] + c
    total = counts[n]
    ids = np.empty(total, dtype=np.uint64)
    lens = np.empty(total, dtype=np.int64)
    tags = np.empty(total, dtype=np.int8)
    tok = np.zeros(n, dtype=np.int64)
    mk = mix64(user_key)
    ok = mix64(out_key)
    for r in range(n):
        q, j = req_q[r], req_j[r]
        h0 = 0 if hist_turns < 0 else max(0, j - hist_turns)
        k = counts[r]
        dk = mix64(doc_key ^ doc_space[r])
        if sys_len[r] > 0:
            ids[k], lens[k], tags[k] = sys_id[r], sys_len[r], _TAG_SYSTEM
            k += 1
        if tools_len[r] > 0:
            ids[k], lens[k], tags[k] = tools_id[r], tools_len[r], _TAG_TOOLS
            k += 1
        for qq in range(q - (j - h0), q + 1):
            tag_doc = _TAG_DOC if qq == q else _TAG_HISTORY
            if qq == q or include_docs:
                for i in range(doc_offsets[qq], doc_offsets[qq + 1]):
                    d = doc_ids[i]
                    ids[k] = mix64(dk ^ np.uint64(d))
                    lens[k], tags[k] = doc_tokens[d], tag_doc
                    k += 1
            tag_msg = _TAG_USER if qq == q else _TAG_HISTORY
            ids[k] = mix64(mk ^ np.uint64(qq))
            lens[k], tags[k] = user_tokens[qq], tag_msg
            k += 1
            if qq < q:
                ids[k] = mix64(ok ^ np.uint64(qq))
                lens[k], tags[k] = output_tokens[qq], _TAG_HISTORY
                k += 1
        s = 0
        for i in range(counts[r], k):
            s += lens[i]
        tok[r] = s
    return counts, ids, lens, tags, tok
