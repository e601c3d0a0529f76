"""Which assumption the answer rests on most: move each input by +-50% and see net savings move.

Why: a buyer needs to know which number to check before signing.  The inputs are the recompute
(input-token) price, the bucket's monthly fee, the traffic volume and the hit rate; each is moved
to 0.5x and 1.5x its value (the hit rate capped at 1) with the others held, and the input whose
move changes net monthly savings most is named.  Under the bucket's linear model the price,
traffic and hit-rate moves are equal unless the hit rate hits its cap, so ties (within 1%) are
broken towards the least certain input: a placeholder fee first, then the modelled hit rate,
then the traffic, then a published price; the tied inputs are named too.
"""

from __future__ import annotations

from dataclasses import dataclass

from simkv.report.explorer.money import month

MOVE = 0.5
#: moves within 1% of the largest count as ties
TIE = 0.01
#: tie-break order (most uncertain first); "fee" ranks first only when it is a placeholder
_ORDER = ("fee", "hit_rate", "traffic", "price")
LABELS = {"price": "the input-token (recompute) price", "fee": "the bucket's monthly price",
          "traffic": "the traffic volume", "hit_rate": "the modelled hit rate"}
SHORT = {"price": "input price", "fee": "bucket price", "traffic": "traffic", "hit_rate": "hit rate"}


@dataclass(frozen=True)
class Swing:
    name: str
    label: str
    low_usd: float    # net savings with the input at 0.5x
    high_usd: float   # net savings with the input at 1.5x

    @property
    def swing_usd(self) -> float:
        return max(abs(self.low_usd), abs(self.high_usd))


def swings(tokens_month: float, hit_rate: float, usd_per_mtok: float, fee_usd: float,
           *, fee_placeholder: bool) -> list[Swing]:
    """Net-savings change at 0.5x and 1.5x of each input, most sensitive first."""
    base = month(tokens_month, hit_rate, usd_per_mtok, fee_usd).net_savings_usd
    out = []
    for name in _ORDER:
        vals = []
        for f in (1 - MOVE, 1 + MOVE):
            v, h, p, fee = tokens_month, hit_rate, usd_per_mtok, fee_usd
            if name == "traffic":
                v *= f
            elif name == "hit_rate":
                h = min(1.0, h * f)
            elif name == "price":
                p *= f
            else:
                fee *= f
            vals.append(month(v, h, p, fee).net_savings_usd - base)
        label = LABELS[name] + (" (a placeholder)" if name == "fee" and fee_placeholder else "")
        out.append(Swing(name, label, vals[0], vals[1]))
    order = [n for n in _ORDER if n != "fee" or fee_placeholder] + ([] if fee_placeholder else ["fee"])
    rank = {n: i for i, n in enumerate(order)}
    top = max(s.swing_usd for s in out)
    tied = sorted((s for s in out if s.swing_usd >= (1 - TIE) * top), key=lambda s: rank[s.name])
    rest = sorted((s for s in out if s.swing_usd < (1 - TIE) * top), key=lambda s: -s.swing_usd)
    return tied + rest


def most_sensitive(ranked: list[Swing]) -> tuple[Swing, list[Swing]]:
    """The first input, and the others tied with it (within 1% of the largest move)."""
    top = ranked[0]
    tied = [s for s in ranked[1:] if s.swing_usd >= (1 - TIE) * top.swing_usd]
    return top, tied


def sentence(ranked: list[Swing]) -> str:
    top, tied = most_sensitive(ranked)
    text = (f"Most sensitive to {top.label}: +-50% moves net savings by "
            f"{_signed(top.low_usd)} / {_signed(top.high_usd)} a month")
    if tied:
        text += " (as much: " + ", ".join(s.label for s in tied) + ")"
    rest = [s for s in ranked if s is not top and s not in tied]
    if rest:
        text += "; " + "; ".join(f"{s.label} {_signed(s.low_usd)} / {_signed(s.high_usd)}"
                                 for s in rest)
    return text + "."


def short(ranked: list[Swing], placeholder: bool) -> str:
    """A table cell: the input(s) that move net savings most, and by how much."""
    top, tied = most_sensitive(ranked)
    names = [SHORT[s.name] + (" (placeholder)" if s.name == "fee" and placeholder else "")
             for s in [top, *tied]]
    return " = ".join(names) + f" (+-50%: up to ${top.swing_usd:,.0f}/mo)"


def _signed(x: float) -> str:
    sign = "-" if x < 0 else "+"
    return f"{sign}${abs(x):,.2f}"
