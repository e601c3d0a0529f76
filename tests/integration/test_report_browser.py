"""The report in a real browser: headless Chromium renders ``index.html``.

Checks a person would make on opening it: the page is not blank (screenshot), every embedded
figure decodes, no console errors; and text from traces and specs is escaped (a workload named
``<script>alert(1)</script>`` shows as text and runs nothing).  Needs the Debian package
``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simkv.pipeline.api import build_report
from simkv.pipeline.workload import WorkloadInput
from simkv.report.model import ReportOptions

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert(1)</script>"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0")

#: Injected at the top of <head> in a *copy* of the report (the report itself has no script):
#: records errors and console.error calls, then on load writes every image's state into the DOM.
CHECK_SCRIPT = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? ('resource error: ' + t.tagName) : ('js error: ' + e.message));
}, true);
var __ce = console.error;
console.error = function () { window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); __ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight};
  });
  var pre = document.createElement('pre');
  pre.id = 'simkv-check';
  pre.textContent = JSON.stringify({images: imgs, errors: window.__errors,
                                    scripts: document.scripts.length,
                                    text: document.body.innerText.length});
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: run `apt-get install -y chromium` (Debian package)")
    return exe


def run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=False)


def console_errors(stderr: str) -> list[str]:
    """Console messages at error level and uncaught exceptions in Chromium's log."""
    out = []
    for line in stderr.splitlines():
        if ":CONSOLE" in line and ("ERROR" in line.split(":CONSOLE")[0] or "Uncaught" in line):
            out.append(line)
        elif "Uncaught" in line:
            out.append(line)
    return out


def page_check(tmp: Path, html: Path) -> tuple[dict, list[str]]:
    """Load a copy of ``html`` with the check script; (image/error record, console errors)."""
    text = html.read_text(encoding="utf-8")
    probe = tmp / f"probe-{html.stem}.html"
    probe.write_text(text.replace("<head>", "<head>" + CHECK_SCRIPT, 1), encoding="utf-8")
    res = run_chromium(tmp, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    m = re.search(r'<pre id="simkv-check">(.*?)</pre>', res.stdout, re.S)
    assert m, f"the check script did not run (chromium exit {res.returncode}): {res.stderr[-2000:]}"
    record = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                        .replace("&amp;", "&"))
    return record, console_errors(res.stderr)


def small_workloads() -> list[WorkloadInput]:
    """A head of the shared Mooncake trace under a hostile name, and a short RAG workload."""
    from simkv.trace import load_trace
    from simkv.workloads import generate, load_spec

    moon = load_trace(ROOT / "tests" / "data" / "mooncake_synthetic.jsonl").head(600) \
        .with_model("llama-3.1-8b")
    spec = load_spec(ROOT / "workloads" / "rag-zipf.yaml")
    rag = generate(spec, 900.0)
    return [
        WorkloadInput(name=EVIL, trace=moon, model="llama-3.1-8b", source=f"{EVIL}.jsonl",
                      description=f"described as {EVIL}", sha256="0" * 64),
        WorkloadInput(name=spec.name, trace=rag, model=rag.models[0], source="workloads/rag-zipf.yaml",
                      description=spec.description, spec=spec, sha256="1" * 64),
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(out, small_workloads(), ReportOptions(quick=True, n_boot=20, command="test"),
                 subtitle=f"test report for {EVIL}")
    return out


def test_page_is_not_blank(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    res = run_chromium(tmp_path, "--window-size=1200,3000", f"--screenshot={shot}",
                       (report / "index.html").as_uri())
    assert shot.exists(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[0] >= 3000 and img.shape[1] >= 1200
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    non_white = float(np.mean(np.any(img < 240, axis=2)))
    assert colours > 500, f"only {colours} distinct colours: the page looks blank"
    assert non_white > 0.05, f"only {non_white:.1%} of pixels are not white"


def test_every_image_loads_and_no_console_errors(report, tmp_path):
    html = report / "index.html"
    n_figures = html.read_text().count('<img src="data:image/png;base64,')
    assert n_figures >= 5
    record, errors = page_check(tmp_path, html)
    assert record["errors"] == [] and errors == []
    assert len(record["images"]) == n_figures
    bad = [i for i in record["images"] if not (i["complete"] and i["w"] > 100 and i["h"] > 100)]
    assert bad == []
    assert record["scripts"] == 1  # only the injected check: the report itself has none
    assert record["text"] > 2000


def test_checker_catches_a_broken_image_and_a_console_error(tmp_path):
    """The browser check above can fail: a page with a broken image and an error is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>"
                    "<img alt='broken' src='data:image/png;base64,AAAAAAAA'>"
                    "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    record, errors = page_check(tmp_path, page)
    assert any(not i["complete"] or i["w"] == 0 for i in record["images"])
    assert any("boom" in e for e in record["errors"])
    assert any("undefinedFunction" in e for e in record["errors"])


def test_text_from_traces_and_specs_is_escaped(report, tmp_path):
    raw = (report / "index.html").read_text()
    assert "<script" not in raw.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    md = (report / "report.md").read_text()
    assert EVIL not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    res = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom",
                       (report / "index.html").as_uri())
    dom = res.stdout
    assert "<script" not in dom.lower()  # nothing became an element
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    assert console_errors(res.stderr) == []
