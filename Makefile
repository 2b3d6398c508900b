# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test demo-assets bench-speed bench-validity bench-retrain check-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# the distribution was called `audit` before 0.1.0 was packaged: drop that old editable install
	$(BIN)/python -m pip uninstall --quiet --yes audit 2>/dev/null || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cpu,test]'
	touch $(STAMP)

setup: $(STAMP)

# The shortcut model must fail the gate (exit 1) and the control must pass (exit 0).
demo: $(STAMP)
	@$(BIN)/audit run configs/demo.yaml --history reports; code=$$?; \
	  if [ $$code -ne 1 ]; then echo "demo: expected the shortcut model to fail the gate (exit 1), got $$code"; exit 1; fi
	@$(BIN)/audit run configs/demo_control.yaml --quiet --history reports; code=$$?; \
	  if [ $$code -ne 0 ]; then echo "demo: expected the control model to pass (exit 0), got $$code"; exit 1; fi
	@echo "demo report: $(CURDIR)/reports/demo/index.html  (control: $(CURDIR)/reports/demo_control/index.html)"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Rebuild the embedded demo data and models from scratch (about 5 minutes on 2 cores).
demo-assets: $(STAMP)
	$(BIN)/python -m audit.demo.build

# Benchmarks (not timed tests): numbers go to benchmarks/results/ and the README.
# bench-speed creates the peers' own virtual environment(s) under benchmarks/.cache/ on first use.
bench-speed: $(STAMP)
	$(BIN)/python benchmarks/speed/bench.py

# Trained models and audits are cached in benchmarks/.cache/validity (audits per version of audit/).
bench-validity: $(STAMP)
	$(BIN)/python benchmarks/validity/run.py

# Honest retrains of the demo models vs new shortcuts: what the baseline tolerances rest on
# (about 1 hour on 2 cores for training, cached in benchmarks/.cache/retrain).
bench-retrain: $(STAMP)
	$(BIN)/python benchmarks/retrain/run.py

# The lowest dependency versions pyproject.toml claims, in a fresh venv, running both demos from a
# wheel (~5 minutes; downloads ~300 MB into pip's cache once). The highest are what `make test` runs.
check-deps: $(STAMP)
	$(BIN)/python benchmarks/deps/check.py

clean:
	rm -rf reports/demo reports/demo_control .pytest_cache
