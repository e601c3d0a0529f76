"""Bills of several price books on one trace, side by side (prefix and/or chunk reuse)."""

from __future__ import annotations

from simkv.cache.config import DEFAULT_BLEND_RECOMPUTE_SHARE
from simkv.economics.bill import Bill, Unavailable
from simkv.economics.context import BillContext
from simkv.economics.pricebook import PriceBook
from simkv.economics.requests import BillTrace
from simkv.economics.window import WarmupSpec
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource


def compare(trace: Trace | TraceSource | BillTrace, model: str | None, books: list[PriceBook], *,
            reuse_modes: tuple[str, ...] = ("prefix",), blend_recompute_share: float = DEFAULT_BLEND_RECOMPUTE_SHARE,
            warmup: WarmupSpec | None = None, days_per_month: float = 30.0, n_boot: int = 200,
            seed: int = 0, chunk_requests: int | None = None, progress=None) -> list[dict]:
    """One summary dict per bill (a book can bill several variants), in book order.

    Provider prompt caches are prefix caches; in ``chunk`` mode only books that sell a
    self-managed cache (``supports_chunk``) are billed.  Each row says whether its prices are
    ``published``, ``derived`` (secondary, computed or assumed figures) or a ``placeholder``
    (``status``, from the book's per-figure sources).  ``trace``: in memory or a source read
    chunk by chunk (its per-request columns are read once and shared by the reuse modes).
    ``progress``: as :class:`BillContext`'s (each long pass is named after its book).
    """
    rows: list[dict] = []
    bt = trace if isinstance(trace, BillTrace) else BillTrace(trace, model, chunk_requests)
    for reuse in reuse_modes:
        ctx = BillContext(bt, model, reuse=reuse, blend_recompute_share=blend_recompute_share,
                          warmup=warmup, days_per_month=days_per_month, n_boot=n_boot, seed=seed,
                          keep_requests=False, progress=progress)
        for book in books:
            if reuse == "chunk" and not book.supports_chunk:
                continue
            ctx.book_done()  # the previous book's runs stay (this one may share them)
            ctx.activity = f"compare {book.name}{' (chunk reuse)' if reuse == 'chunk' else ''}: "
            for bill in book.bills(ctx):
                if isinstance(bill, Unavailable):
                    row = bill.summary()
                    row["reuse"] = reuse
                else:
                    assert isinstance(bill, Bill)
                    row = bill.summary(ctx.rng_for(f"{reuse}/{bill.provider}"), ctx.n_boot)
                    row["available"] = True
                row["pricebook"] = book.name
                row["status"] = book.status(bill.provider.partition(":")[2] or None)
                row["pricebook_as_of"] = book.as_of
                rows.append(row)
    return rows
