"""``simkv simulate`` (summary only) never imports pandas.

Why: S1 counts the whole command against libCacheSim, interpreter start included, and
importing pandas was about 0.4 s of a 4.4 s run on the 3-day trace.  The engine and the
records writer import it only where a DataFrame is built; Parquet scalar columns are viewed
from their buffers (pyarrow's ``to_numpy`` imports pandas).  A fresh interpreter is needed:
the test process itself has pandas loaded.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import MOONCAKE

PROBE = """
import sys
from simkv.cli.main import build_app, run
rc = run(build_app(), sys.argv[1:])
print("RC", rc, "PANDAS", "pandas" in sys.modules)
"""


def _probe(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, check=False, timeout=300)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """The shipped Mooncake trace as Parquet, converted once by the CLI."""
    out = tmp_path_factory.mktemp("startup") / "t.parquet"
    assert _probe("trace", "convert", str(MOONCAKE), str(out)).startswith("RC 0")
    return out


def test_simulate_summary_loads_no_pandas(trace):
    assert _probe("simulate", "--trace", str(trace), "--capacity-blocks", "1000",
                  "--json") == "RC 0 PANDAS False"


def test_simulate_with_records_still_writes_them(trace, tmp_path):
    """The lazy import is taken where frames are built: --records needs and gets pandas."""
    records = tmp_path / "r.parquet"
    assert _probe("simulate", "--trace", str(trace), "--capacity-blocks", "1000",
                  "--records", str(records)) == "RC 0 PANDAS True"
    import pyarrow.parquet as pq

    assert pq.ParquetFile(records).metadata.num_rows == 3993
