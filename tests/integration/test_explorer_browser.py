"""The explorer in a real headless Chromium, driven over the Chrome DevTools Protocol.

The report is made the way a user makes it (``simkv report --trace T --model M --out D``).  The
test sets the explorer's controls, reads the numbers the page shows, and compares them with the
same point computed here, in Python, straight from the run's tables (``data/explorer_grid.csv``,
``data/explorer_volume.csv``) and the shipped subscription price book's tiers, with the bucket
formula written out below (not the explorer's code):

    no cache = V * p / 1e6;  bill = fee + V * (1 - h) * p / 1e6;  net = no cache - bill

to the cent and to 4 decimals of hit rate.  It also screenshots the headline and the explorer at
1280 x 800, checks the answer is in the first screen, that no console error or exception
occurred, and that the page stays under 5 MB with aggregates only.  Needs the Debian package
``chromium`` (``make browser``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import subprocess
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import pytest

from tests.integration.test_report_browser import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.slow

MODEL = "llama-3.1-8b"
WIDTH, HEIGHT = 1280, 800
PAGE_LIMIT_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """``simkv report`` on a user's trace (the head of the shared Mooncake sample)."""
    from simkv.trace import load_trace, save_trace
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("explorer")
    trace = root / "mine.parquet"
    save_trace(load_trace(Path(__file__).resolve().parents[1] / "data" / "mooncake_synthetic.jsonl")
               .head(800), trace)
    out = root / "rep"
    res = run_cli("report", "--trace", str(trace), "--model", MODEL, "--quick", "--out", str(out))
    assert res.exit_code == 0, res.stderr
    return out


# ---------------------------------------------------------------------------- a small CDP client
class Cdp:
    """Just enough of the DevTools protocol: commands on one page session, events kept."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.n, self.events, self.session = ws, 0, [], None

    async def send(self, method: str, params: dict | None = None, *, browser: bool = False) -> dict:
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        await self.ws.send_json(msg)
        while True:
            m = await self.ws.receive_json(timeout=60)
            if m.get("id") == self.n:
                assert "error" not in m, f"{method}: {m['error']}"
                return m["result"]
            self.events.append(m)

    async def wait_event(self, method: str) -> dict:
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(i)
        while True:
            m = await self.ws.receive_json(timeout=60)
            if m.get("method") == method:
                return m
            self.events.append(m)

    async def js(self, expression: str):
        r = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                 "awaitPromise": True})
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        r = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(r["data"]))

    def errors(self) -> list[str]:
        out = []
        for m in self.events:
            p = m.get("params", {})
            if m.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(json.dumps(p.get("args", []))[:500])
            elif m.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out


async def _session(profile: Path, script):
    """Start Chromium with a DevTools port, open one page, run ``script(cdp)``, stop Chromium."""
    proc = subprocess.Popen([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                             "about:blank"], stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for _ in range(400):
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "Chromium did not print its DevTools address"
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
            cdp = Cdp(ws)
            target = (await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
            cdp.session = (await cdp.send("Target.attachToTarget",
                                          {"targetId": target, "flatten": True}))["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                await cdp.send(f"{domain}.enable")
            await cdp.send("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
            return await script(cdp)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_page(tmp: Path, html: Path, script):
    async def main(cdp: Cdp):
        await cdp.send("Page.navigate", {"url": html.as_uri()})
        await cdp.wait_event("Page.loadEventFired")
        return await script(cdp)

    return asyncio.run(_session(tmp / "profile", main))


# ---------------------------------------------------------------------------- the expected values
def expected_point(out: Path, traffic: int, ttl_s: float | None, capacity_bytes: float,
                   usd_per_mtok: float, fee_usd: float) -> dict:
    """The month at one computed grid point, from the run's CSV tables (formula in the docstring)."""
    grid = pd.read_csv(out / "data" / "explorer_grid.csv")
    vol = pd.read_csv(out / "data" / "explorer_volume.csv")
    g = grid[(grid["traffic"] == traffic) & (grid["capacity_bytes"] == capacity_bytes)]
    g = g[g["ttl_s"].isna()] if ttl_s is None else g[g["ttl_s"] == ttl_s]
    assert len(g) == 1
    h = float(g["prefix_token_hit_ratio"].iloc[0])
    v = float(vol[vol["traffic"] == traffic]["input_tokens_per_month"].iloc[0])
    base = v * usd_per_mtok / 1e6
    bill = fee_usd + v * (1 - h) * usd_per_mtok / 1e6
    return {"hit": h, "bill": bill, "no_cache": base, "net": base - bill}


def shipped_tiers() -> tuple[float, list[tuple[str, float, float]]]:
    """(recompute $/MTok, [(tier, capacity bytes, $/month)]) read from the shipped YAML."""
    import yaml

    from simkv.units import parse_size

    root = Path(__file__).resolve().parents[2] / "simkv" / "data" / "pricebooks" / "subscription.yaml"
    book = yaml.safe_load(root.read_text())
    return float(book["recompute_usd_per_mtok"]), [
        (t["name"], float(parse_size(t["capacity"])),
         float(t["usd_per_month"])) for t in book["tiers"]]


def usd(x: float) -> str:
    return ("-" if x < 0 else "") + f"${abs(x):,.2f}"


READ = """(() => { const o = {}; for (const id of ['o-hit','o-bill','o-nocache','o-net','o-breakeven',
  'o-fee','o-ttft','o-note','x-answer']) { const e = document.getElementById(id);
  o[id] = e.textContent; o[id + ':v'] = e.getAttribute('data-value'); } return o; })()"""


def set_controls(**ids) -> str:
    """JS setting each control (id -> value) and firing its change event, then reading back."""
    parts = [f"(() => {{ const e = document.getElementById({json.dumps(k)}); e.value = {json.dumps(str(v))};"
             " e.dispatchEvent(new Event('change')); e.dispatchEvent(new Event('input')); })();"
             for k, v in ids.items()]
    return "".join(parts) + READ


# ---------------------------------------------------------------------------- tests
def test_ttl_15_minutes_and_traffic_doubled_match_python_to_the_cent(report, tmp_path):
    """"What if the TTL were 15 minutes and the traffic doubled", at the bronze tier's capacity."""
    p, tiers = shipped_tiers()
    bronze = next(t for t in tiers if t[0] == "bronze")
    payload_caps = None

    async def script(cdp: Cdp):
        nonlocal payload_caps
        data = await cdp.js("JSON.parse(document.getElementById('simkv-explorer-data').textContent)")
        w = data["workloads"][0]
        payload_caps = w["capacities_bytes"]
        ttl_idx = data["ttls_s"].index(900.0)
        cap_idx = payload_caps.index(bronze[1])
        return await cdp.js(set_controls(**{"x-traffic": 2, "x-ttl": ttl_idx, "x-capacity": cap_idx})), \
            cdp.errors()

    got, errors = run_page(tmp_path, report / "index.html", script)
    assert errors == []
    want = expected_point(report, 2, 900.0, bronze[1], p, bronze[2])
    assert got["o-hit"] == f"{100 * want['hit']:.2f}%"
    assert abs(float(got["o-hit:v"]) - want["hit"]) < 1e-9
    assert got["o-bill"] == usd(want["bill"])
    assert got["o-nocache"] == usd(want["no_cache"])
    assert got["o-net"] == usd(want["net"])
    assert abs(float(got["o-net:v"]) - want["net"]) < 1e-6
    assert got["o-breakeven"] == f"{100 * bronze[2] / want['no_cache']:.2f}%"
    assert "bronze" in got["o-fee"] and "exact grid point" in got["o-note"]
    assert "2x traffic" in got["x-answer"] and "15 min" in got["x-answer"]


def test_what_if_button_from_the_card(report, tmp_path):
    """The "TTL 15 min, 2x traffic" button moves the card's own point; same check in Python."""
    p, _ = shipped_tiers()
    card = json.loads((report / "data" / "decision.json").read_text())["cards"][0]
    tier = card["tier"]

    async def script(cdp: Cdp):
        await cdp.js("document.getElementById('x-preset-15m-2x').click(); true")
        got = await cdp.js(READ)
        await cdp.js("document.getElementById('x-preset-card').click(); true")
        return got, await cdp.js(READ), cdp.errors()

    got, back, errors = run_page(tmp_path, report / "index.html", script)
    assert errors == []
    want = expected_point(report, 2, 900.0, tier["capacity_bytes"], p, tier["usd_per_month"])
    assert got["o-hit"] == f"{100 * want['hit']:.2f}%" and got["o-net"] == usd(want["net"])
    assert back["o-hit"] == f"{100 * card['hit_rate']['value']:.2f}%"


def test_another_model_scales_capacity_by_its_kv_block_size(report, tmp_path):
    """llama-3.1-70b on the same trace: 80 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 320 KiB
    of KV per token against llama-3.1-8b's 32 layers = 128 KiB, 2.5x the bytes per block: the
    grid point c hits the same at 2.5 c, and the fee is that of the cheapest tier holding 2.5 c."""
    p, tiers = shipped_tiers()
    grid = pd.read_csv(report / "data" / "explorer_grid.csv")
    caps = sorted(grid["capacity_bytes"].dropna().unique())
    idx = len(caps) // 2
    cap70 = caps[idx] * 2.5
    fee = min((t for t in tiers if t[1] >= cap70), key=lambda t: t[2])

    async def script(cdp: Cdp):
        ttl_idx = await cdp.js("JSON.parse(document.getElementById('simkv-explorer-data').textContent)"
                               ".ttls_s.indexOf(null)")
        got = await cdp.js(set_controls(**{"x-model": "llama-3.1-70b", "x-traffic": 1,
                                           "x-ttl": ttl_idx, "x-capacity": idx}))
        return got, cdp.errors()

    got, errors = run_page(tmp_path, report / "index.html", script)
    assert errors == []
    want = expected_point(report, 1, None, caps[idx], p, fee[2])
    assert got["o-hit"] == f"{100 * want['hit']:.2f}%"
    assert got["o-bill"] == usd(want["bill"]) and got["o-net"] == usd(want["net"])
    assert fee[0] in got["o-fee"] and "llama-3.1-70b" in got["x-answer"]
    assert "not computed" in got["o-ttft"]


def test_own_price_and_an_interpolated_capacity(report, tmp_path):
    """A typed price and a capacity between two grid points: log-linear between those two."""
    grid = pd.read_csv(report / "data" / "explorer_grid.csv")
    g = grid[(grid["traffic"] == 1) & grid["ttl_s"].isna() & grid["capacity_bytes"].notna()]
    g = g.sort_values("capacity_bytes")
    lo, hi = g.iloc[2], g.iloc[3]
    cap = math.sqrt(lo["capacity_bytes"] * hi["capacity_bytes"])  # halfway in log capacity
    want_h = lo["prefix_token_hit_ratio"] + 0.5 * (hi["prefix_token_hit_ratio"] - lo["prefix_token_hit_ratio"])
    v = float(pd.read_csv(report / "data" / "explorer_volume.csv").query("traffic == 1")
              ["input_tokens_per_month"].iloc[0])

    async def script(cdp: Cdp):
        ttl_idx = await cdp.js("JSON.parse(document.getElementById('simkv-explorer-data').textContent)"
                               ".ttls_s.indexOf(null)")
        n_caps = await cdp.js("document.getElementById('x-capacity').max")
        unlimited = await cdp.js(set_controls(**{"x-capacity": n_caps}))  # the unlimited end
        got = await cdp.js(set_controls(**{"x-traffic": 1, "x-ttl": ttl_idx, "x-pricing": "custom",
                                           "x-fee": 40, "x-mtok": 0.3,
                                           "x-capacity-gib": repr(cap / 2**30)}))
        return unlimited, got, cdp.errors()

    unlimited, got, errors = run_page(tmp_path, report / "index.html", script)
    assert errors == []
    assert unlimited["o-bill"] == "n/a" and "no tier holds" in unlimited["x-answer"]
    assert abs(float(got["o-hit:v"]) - want_h) < 1e-6
    assert "interpolated" in got["o-note"]
    h = float(got["o-hit:v"])
    assert got["o-bill"] == usd(40 + v * (1 - h) * 0.3 / 1e6)
    assert got["o-net"] == usd(v * 0.3 / 1e6 - (40 + v * (1 - h) * 0.3 / 1e6))


def test_headline_and_explorer_screenshots_no_errors(report, tmp_path):
    from PIL import Image

    async def script(cdp: Cdp):
        first = await cdp.js(READ)
        box = await cdp.js("(() => { const r = document.querySelector('#answers tbody tr td.big')"
                           ".getBoundingClientRect(); const h = document.getElementById('headline')"
                           ".getBoundingClientRect(); return [r.bottom, h.top, window.innerWidth]; })()")
        await cdp.screenshot(tmp_path / "headline.png")
        await cdp.js("document.getElementById('explorer').scrollIntoView(); true")
        svg = await cdp.js("document.querySelectorAll('#p-hit path, #p-net path').length")
        await cdp.screenshot(tmp_path / "explorer.png")
        return first, box, svg, cdp.errors()

    first, (bottom, head_top, width), n_paths, errors = run_page(tmp_path, report / "index.html",
                                                                 script)
    assert errors == []
    # the explorer opens on the card's own point, and its JavaScript agrees with the card's Python
    card = json.loads((report / "data" / "decision.json").read_text())["cards"][0]
    if card["tier"]["recommended"]:
        assert first["o-net"] == usd(card["net_savings_usd"]["value"])
    assert first["o-hit"] == f"{100 * card['hit_rate']['value']:.2f}%"
    assert width == WIDTH and head_top < HEIGHT and bottom <= HEIGHT  # the answer is on screen one
    assert n_paths >= 2  # the SVG plots were drawn
    for name in ("headline.png", "explorer.png"):
        img = np.asarray(Image.open(tmp_path / name).convert("RGB"))
        assert img.shape[:2] == (HEIGHT, WIDTH)
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 100, f"{name} looks blank"


def test_page_is_small_and_embeds_aggregates_only(report):
    html = (report / "index.html").read_text()
    assert len(html.encode()) < PAGE_LIMIT_BYTES
    payload = json.loads(re.search(r'<script type="application/json" id="simkv-explorer-data">(.*?)'
                                   r"</script>", html, re.S).group(1))
    assert payload["schema_version"] == 1 and payload["kind"] == "simkv.explorer"
    text = json.dumps(payload)
    assert "hash" not in text and str(report.parent) not in html
    decision = json.loads((report / "data" / "decision.json").read_text())
    assert decision["schema_version"] == 1 and decision["cards"] == payload["cards"]


def test_the_checker_sees_an_exception(tmp_path):
    """The error capture above can fail: a page that throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();</script>"
                    "</body></html>")

    async def script(cdp: Cdp):
        await cdp.js("1")
        return cdp.errors()

    errors = run_page(tmp_path, page, script)
    assert any("boom" in e for e in errors) and any("nope" in e for e in errors)
