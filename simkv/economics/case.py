"""The product brief's cost case: what re-encoding one shared prefix costs per month, what
keeping its KV *and reading it back on every request* costs, and the ratio between the two.

Storing is never the whole price of reuse: each of the ``per_day x days`` requests reads the
prefix's KV back, and a store bills every byte read (S3 Express: $0.0006/GiB retrieval, so
3.91 GiB read 60,000 times a month is $140.625 against $0.43 of storage).  The quote is
therefore store-and-read, with its components, and the time one read takes where the
medium's bandwidth is known."""

from __future__ import annotations

import math

from simkv.economics.bill import MTOK
from simkv.economics.pricebook import PLACEHOLDER_NOTE, PriceBook
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec


def monthly_recompute_usd(prefix_tokens: int, per_day: float, usd_per_mtok: float,
                          days_per_month: float = 30.0) -> float:
    """``prefix_tokens x per_day x days / 1e6 x $/MTok`` (32,000 x 2,000 x 30 at $0.15 = $288)."""
    return prefix_tokens * per_day * days_per_month * usd_per_mtok / MTOK


def cost_case(prefix_tokens: int, per_day: float, usd_per_mtok: float, *, days_per_month: float,
              spec: ModelSpec, book: PriceBook | None = None, variant: str | None = None) -> dict:
    """The case as a dict; ``book`` (with an optional tier/medium ``variant``) prices storage."""
    if prefix_tokens <= 0:
        raise InputError("must be > 0", where="--prefix-tokens")
    if per_day < 0:
        raise InputError("must be >= 0", where="--per-day")
    if usd_per_mtok < 0:
        raise InputError("must be >= 0", where="--usd-per-mtok")
    if days_per_month <= 0:
        raise InputError("must be > 0", where="--days-per-month")
    recompute = monthly_recompute_usd(prefix_tokens, per_day, usd_per_mtok, days_per_month)
    kv_bytes = float(spec.kv_bytes(prefix_tokens))
    out = {
        "prefix_tokens": int(prefix_tokens),
        "per_day": per_day,
        "usd_per_mtok": usd_per_mtok,
        "days_per_month": days_per_month,
        "monthly_recompute_tokens": prefix_tokens * per_day * days_per_month,
        "monthly_recompute_usd": round(recompute, 9),
        "model": spec.name,
        "kv_bytes": kv_bytes,
        "kv_bytes_per_token": spec.kv_bytes_per_token,
    }
    if book is None:
        return out
    reads = per_day * days_per_month
    quotes = book.storage_quotes(prefix_tokens, kv_bytes, days_per_month, reads_per_month=reads)
    if not quotes:
        raise InputError(f"price book {book.name!r} ({book.kind}) has no storage charge; choose a "
                         "storage, subscription or gemini book", where="--pricebook")
    if variant is not None:
        quotes = [q for q in quotes if q.variant == variant] or quotes[:0]
        if not quotes:
            raise InputError(f"price book {book.name!r} has no variant {variant!r}",
                             where="--pricebook")
    q = quotes[0]
    finite = math.isfinite(q.monthly_usd)
    ratio = recompute / q.monthly_usd if q.monthly_usd and finite else None
    comps = dict(q.components_usd)
    out.update({
        "pricebook": book.name + (f":{q.variant}" if q.variant else ""),
        "reads_per_month": reads,
        "monthly_storage_usd": (round(comps["storage_usd"], 9) if "storage_usd" in comps and finite
                                else None),
        "monthly_read_usd": round(sum(v for k, v in comps.items() if k != "storage_usd"), 9)
        if finite else None,
        "monthly_store_and_read_usd": round(q.monthly_usd, 9) if finite else None,
        "store_and_read_components_usd": {k: round(v, 9) for k, v in comps.items()},
        "read_load_s": q.load_s,
        "storage_basis": q.basis,
        "recompute_to_store_and_read_ratio": ratio,
        "pricebook_status": q.status,
        "placeholder": q.placeholder,
    })
    if q.placeholder:
        out["placeholder_note"] = PLACEHOLDER_NOTE
    return out
