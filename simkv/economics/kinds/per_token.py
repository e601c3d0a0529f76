"""``per_token``: an API's input price with no caching at all (the recompute baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simkv.economics.bill import Bill, usd
from simkv.economics.book import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import Charges, Price, make_bill
from simkv.economics.runs import View


class PerTokenSchema(BookSchema):
    kind: Literal["per_token"]
    input_usd_per_mtok: Price


@dataclass(frozen=True)
class PerTokenBook(PriceBook):
    """Every input token is encoded and paid for, every time."""

    name: str
    input_usd_per_mtok: float
    kind: str = "per_token"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()
    supports_chunk: bool = True

    def bills(self, ctx: BillContext) -> list[Bill]:
        def price(v: View) -> Charges:
            inp = v.input_tokens
            cost = usd(inp, self.input_usd_per_mtok)
            return Charges(hit_tokens=inp * 0, written_tokens=inp * 0,
                           request_usd={"input_usd": cost}, baseline_usd=cost)

        return [make_bill(ctx, ctx.window(), provider=self.name, kind=self.kind, price=price,
                          placeholder=self.placeholder, reuse=ctx.reuse,
                          notes=("no caching: the recompute baseline",))]


def _build(s: PerTokenSchema, name: str) -> PerTokenBook:
    return PerTokenBook(name=name, input_usd_per_mtok=s.input_usd_per_mtok, source=s.source,
                        as_of=s.as_of, placeholder=s.placeholder)


PRICEBOOK_KINDS.register("per_token", Kind(PerTokenSchema, _build,
                                           "input $/MTok, no caching (recompute baseline)"))
