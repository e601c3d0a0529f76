"""Economics: price books, the brief's cost case, bills on a trace, and tier recommendations.

Nothing is loaded on import; price books are read when asked for
(:func:`~simkv.economics.pricebook.load_pricebooks`).
"""

from simkv.economics.bill import Bill, Unavailable
from simkv.economics.case import cost_case, monthly_recompute_usd
from simkv.economics.compare import compare
from simkv.economics.context import BillContext
from simkv.economics.pricebook import (
    PRICEBOOK_KINDS,
    book_from_dict,
    find_book,
    load_pricebook,
    load_pricebooks,
)
from simkv.economics.window import WarmupSpec, parse_warmup

__all__ = ["Bill", "BillContext", "PRICEBOOK_KINDS", "Unavailable", "WarmupSpec", "book_from_dict",
           "compare", "cost_case", "find_book", "load_pricebook", "load_pricebooks",
           "monthly_recompute_usd", "parse_warmup"]
