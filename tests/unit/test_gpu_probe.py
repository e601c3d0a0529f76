"""The GPU probe runs end to end on the CPU with tiny configs (engine interpreter: torch +
transformers), and its records load into a profile; the report line says "modelled only"
while no records are committed."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from simkv.errors import InputError
from simkv.latency.gpu_profile import fit_profile, load_probe, profile_status

ROOT = Path(__file__).resolve().parents[2]
ENGINE_PY = Path(os.environ.get("SIMKV_ENGINE_PYTHON") or ROOT / ".venv-engine" / "bin" / "python")


@pytest.mark.slow
def test_probe_runs_on_cpu_with_tiny_configs(tmp_path):
    if not ENGINE_PY.exists():
        if os.environ.get("CI"):
            pytest.fail("engine venv missing in CI")
        pytest.skip("engine venv (torch + transformers) missing: run `make engine`")
    out = tmp_path / "probe.json"
    proc = subprocess.run([str(ENGINE_PY), str(ROOT / "harness" / "gpu_probe.py"), "--tiny",
                           "--device", "cpu", "--repeats", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = load_probe(out)
    kinds = {(r["model"] if "model" in r else "-", r["kind"]) for r in doc["records"]}
    for model in ("llama-3.1-8b", "deepseek-v3"):
        for kind in ("prefill", "suffix_prefill", "decode_step"):
            assert (model, kind) in kinds
    assert all(r["seconds"] is not None and r["seconds"] >= 0 for r in doc["records"])
    assert doc["environment"]["torch"] and doc["measured"] is True
    mla = [r for r in doc["records"] if r.get("model") == "deepseek-v3"]
    assert all(r["mla"] for r in mla)
    prof = fit_profile(doc)
    assert set(prof.models) == {"llama-3.1-8b", "deepseek-v3"}
    assert prof.h2d_bytes_per_s is None  # no device: no pinned transfer measured


def test_fit_profile_by_hand(tmp_path):
    # prefill 0.01 + 1e-4 x tokens exactly; suffix 0.02 + 2e-6 x cached; decode 3, 5, 4 ms
    recs = [{"kind": "prefill", "model": "m", "tokens": n, "seconds": 0.01 + 1e-4 * n}
            for n in (100, 200, 400)]
    recs += [{"kind": "suffix_prefill", "model": "m", "tokens": 16, "cached_tokens": c,
              "seconds": 0.02 + 2e-6 * c} for c in (0, 1000)]
    recs += [{"kind": "decode_step", "model": "m", "context_tokens": 1, "seconds": s}
             for s in (0.003, 0.005, 0.004)]
    recs += [{"kind": "h2d_copy", "bytes": 1 << 30, "pinned": True, "seconds": 0.05,
              "bytes_per_s": (1 << 30) / 0.05}]
    path = tmp_path / "h200.json"
    path.write_text(json.dumps({"kind": "gpu_probe", "environment": {"gpu": "NVIDIA H200"},
                                "records": recs}))
    p = fit_profile(load_probe(path)).models["m"]
    assert p.prefill_fixed_s == pytest.approx(0.01) and p.prefill_per_token_s == pytest.approx(1e-4)
    assert p.per_cached_token_s == pytest.approx(2e-6) and p.decode_step_s == pytest.approx(0.004)
    assert "measured on NVIDIA H200" in profile_status(tmp_path)
    assert "modelled only" in profile_status(tmp_path / "none")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError):
        load_probe(tmp_path / "bad.json")


def test_the_committed_profile_is_modelled_only_until_records_exist():
    from simkv.latency.gpu_profile import RECORDS_DIR

    has = list(RECORDS_DIR.glob("*.json"))
    assert ("modelled only" in profile_status()) == (not has)
