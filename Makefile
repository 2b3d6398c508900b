# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup system-deps demo demo-imagenet test test-fast docs demo-assets imagenet-models bench-speed bench-validity bench-discovery bench-removal bench-recognizability bench-memory bench-retrain bench-scale bench-peers bench-swaps bench-decision check-deps clean

# Debian packages the tests and the real-network demo use: a real browser for the HTML report's
# test, a CJK font for the watermark concept. Installed only when missing (needs root + apt-get).
DEBS := chromium fonts-wqy-zenhei fonts-dejavu-core
system-deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing Debian packages: $$missing"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing Debian packages (install them): $$missing"; fi; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# the distribution was called `audit` before 0.1.0 was packaged: drop that old editable install
	$(BIN)/python -m pip uninstall --quiet --yes audit 2>/dev/null || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cpu,test,imagenet,ray]'
	touch $(STAMP)

setup: $(STAMP)

# The shortcut model must fail the gate (exit 1) and the control must pass (exit 0).
demo: $(STAMP)
	@$(BIN)/audit run configs/demo.yaml --history reports; code=$$?; \
	  if [ $$code -ne 1 ]; then echo "demo: expected the shortcut model to fail the gate (exit 1), got $$code"; exit 1; fi
	@$(BIN)/audit run configs/demo_control.yaml --quiet --history reports; code=$$?; \
	  if [ $$code -ne 0 ]; then echo "demo: expected the control model to pass (exit 0), got $$code"; exit 1; fi
	@echo "demo report: $(CURDIR)/reports/demo/index.html  (control: $(CURDIR)/reports/demo_control/index.html)"

# The real network: EfficientNet-Lite0 (ImageNet) and the published stock-photo watermark shortcut.
# Converts the network and draws the demo data on first use (.cache/, ~1 min), then audits (~5 min).
# On Lite0 the watermark moves no decision but the five published classes respond to it: they must
# warn (exit 0), and the Latin-text control must stay quiet.
demo-imagenet: $(STAMP) system-deps
	@$(BIN)/python -m audit.model.pretrained efficientnet-lite0 --out .cache/imagenet >/dev/null
	@$(BIN)/python -m audit.demo.imagenet --out .cache/demo_imagenet_data >/dev/null
	@$(BIN)/audit run configs/demo_imagenet.yaml; code=$$?; \
	  if [ $$code -ne 0 ]; then echo "demo-imagenet: expected warnings and exit 0 (the watermark moves no decision on Lite0), got $$code"; exit 1; fi
	@$(BIN)/python -m audit.demo.imagenet --check reports/demo_imagenet/audit.json
	@echo "demo-imagenet report: $(CURDIR)/reports/demo_imagenet/index.html"

# The whole suite, as CI runs it (about 15 minutes on 2 cores), and the docs build.
test: $(STAMP) system-deps docs
	$(BIN)/python -m pytest -q tests

# The fast tier while you work (about 2 minutes on 2 cores): everything but the tests marked `slow`
# (full audits through the CLI, the real network, Ray, the wheel install). CI runs `make test`.
test-fast: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m "not slow" tests

# The documentation site (mkdocs.yml): docs/ into build/site, strict, so a broken link or anchor or a page
# missing from the nav fails. Not `--quiet`: it also stops strict mode from counting warnings (mkdocs
# issue 4126); the build's log is printed only when it fails.
docs: $(STAMP)
	@log=$$(NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict 2>&1) || { echo "$$log"; exit 1; }

# Rebuild the embedded demo data and models from scratch (about 5 minutes on 2 cores).
demo-assets: $(STAMP)
	$(BIN)/python -m audit.demo.build

# Real ImageNet networks (EfficientNet-Lite0/2) converted from their PyTorch wheels into .cache/models
# (about 10 s each, once; PyTorch is not needed). Prints where the .keras and class-name files are.
imagenet-models: $(STAMP)
	$(BIN)/python -m audit.model.pretrained efficientnet-lite0
	$(BIN)/python -m audit.model.pretrained efficientnet-lite2

# Benchmarks (not timed tests): numbers go to benchmarks/results/ and the pages in docs/.
# bench-speed creates the peers' own virtual environment(s) under benchmarks/.cache/ on first use.
bench-speed: $(STAMP)
	$(BIN)/python benchmarks/speed/bench.py

# Trained models and audits are cached in benchmarks/.cache/validity (audits per version of audit/).
bench-validity: $(STAMP)
	$(BIN)/python benchmarks/validity/run.py

# Discovery with an empty concept bank on the validity benchmark's 30 models (reuses their cache;
# ~10 min), then on EfficientNet-Lite0 with the real-network demo's photos (~5 min), then on
# Lite0's own watermark shortcut with no concept named (~15 min; the CJK font).
bench-discovery: $(STAMP) system-deps
	$(BIN)/python benchmarks/discovery/run.py
	$(BIN)/python benchmarks/discovery/imagenet.py
	$(BIN)/python benchmarks/discovery/imagenet_planted.py

# Why there is no removal test: two ways of finding a concept in a class's own images and a removal
# design with a restore control, measured on the demo's two models (~5 min on 2 cores).
bench-removal: $(STAMP)
	$(BIN)/python benchmarks/removal/run.py

# Peak RSS of an audit of EfficientNet-Lite0 at memory budgets, and the model's own footprint (~15 min).
bench-memory: $(STAMP)
	$(BIN)/python benchmarks/memory/bench.py

# A 1000-class real-network audit through the CLI (EfficientNet-Lite0, 5 concepts, probes): 10/100/1000
# classes, local and on a local Ray instance with 1 and 2 workers (~1.5 hours on 2 cores).
bench-scale: $(STAMP) system-deps
	$(BIN)/python benchmarks/scale/run.py

# Honest retrains of the demo models vs new shortcuts: what the baseline tolerances rest on
# (about 1 hour on 2 cores for training, cached in benchmarks/.cache/retrain).
bench-retrain: $(STAMP)
	$(BIN)/python benchmarks/retrain/run.py

# The lowest dependency versions pyproject.toml claims, in a fresh venv, running both demos from a
# wheel (~5 minutes; downloads ~300 MB into pip's cache once). The highest are what `make test` runs.
check-deps: $(STAMP)
	$(BIN)/python benchmarks/deps/check.py

# Lite0 visualizes 50 ImageNet classes per setting, Lite2 judges them (about 10-15 min per setting
# on 2 cores; images cached in benchmarks/.cache/recognizability per setting and code version).
bench-recognizability: $(STAMP)
	$(BIN)/python benchmarks/recognizability/run.py

# Time to a recognizable image on EfficientNet-Lite0: the engine (default and raw) vs tf-keras-vis and
# xplique (Fourier, MaCo), judged by Lite2 at 32/64/128/256 steps (~45 min on 2 cores; per-setting
# images cached in benchmarks/.cache/peers; the peers' venv is made on first use, ~2 min).
bench-peers: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/peers/run.py

# The real network's watermark in decision units: points of photo crops (plain and made less confident)
# the CJK watermark moves into each class beyond a mask-matched control, and the log-odds (~5 min quiet).
bench-decision: $(STAMP) system-deps
	$(BIN)/python benchmarks/decision/imagenet_watermark.py

# Concurrent report-folder swaps: 4 processes x 500 swaps, 10 times (20,000 swaps, ~1 min); any failure exits 1.
bench-swaps: $(STAMP)
	$(BIN)/python benchmarks/stress/report_swaps.py

clean:
	rm -rf reports/demo reports/demo_control reports/demo_imagenet .pytest_cache
