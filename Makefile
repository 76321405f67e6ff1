# rs5m: `make demo` sets up .venv and builds the embedded sample; `make test` sets up .venv and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= data
WORLD := $(DATA)/sample-world
REAL_DATA ?=
# `make test` must finish in 15 min on a fresh 2-core machine, install included: pytest-xdist runs the
# tests on TEST_WORKERS processes (the slow ones mostly wait on servers and child builds; tests that
# share a port or folder are kept together by an xdist_group mark), longest first, and the 20 slowest
# are printed so the budget stays visible. PYTEST_ARGS replaces these options (e.g. PYTEST_ARGS=-n0).
# `make test` is the short form: tests marked `slow` (100x memory files, extra kill points and lock
# races, Ctrl-C of a real build) are left to `make test-long`, which also sets RS5M_FUZZ_LONG=1 (more
# fuzz examples and fault cases); every slow test has a shorter sibling in the short form.
TEST_WORKERS ?= 3
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist loadgroup --durations=20
TEST_SELECT ?= -m "not slow"

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
export NO_ALBUMENTATIONS_UPDATE ?= 1

.PHONY: install demo test test-long lint browser bench-keywords clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	# img2dataset pulls the Python-3.6 `dataclasses` backport, which breaks Prefect's server: remove it.
	$(BIN)/pip uninstall -y dataclasses
	touch $(STAMP)

install: $(STAMP)

demo: install
	@test -f $(WORLD)/expected.json || $(BIN)/rs5m sample --out $(WORLD) $(if $(REAL_DATA),--real-data $(REAL_DATA))
	@test -f $(DATA)/detectors/sample/detector.pt || $(BIN)/python -m flows.train_detector
	$(BIN)/rs5m build --config deployments/sample.yaml --root $(DATA)
	$(BIN)/rs5m funnel --root $(DATA) --reasons
	$(BIN)/rs5m versions list --root $(DATA)
	$(BIN)/rs5m loader-check --root $(DATA) --version sample --verify
	$(BIN)/rs5m evaluate --demo $(DATA)/eval-demo $(if $(REAL_DATA),--real-data $(REAL_DATA))
	$(BIN)/rs5m train --config deployments/train-sample.yaml
	$(BIN)/rs5m evaluate --config deployments/evaluate-sample.yaml \
		--checkpoint $(DATA)/train-runs/sample/final/model.pt --label "rs5m-tiny, 20 steps on the sample shards"

test: install browser
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS) $(TEST_SELECT)

test-long: install browser
	RS5M_FUZZ_LONG=1 $(BIN)/pytest $(PYTEST_ARGS)

# The rating tool's browser test drives Debian's Chromium; it skips (saying so) where none can be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the browser test will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-keywords: install
	$(BIN)/python bench/keyword_scan.py

clean:
	rm -rf $(DATA)/versions $(DATA)/lineage.duckdb
