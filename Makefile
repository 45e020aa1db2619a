# imagerank: the two commands a fresh machine needs are `make lab` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= data/demo
PYTEST_ARGS ?=

.PHONY: install lab app demo test test-fast lint bench clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed

$(DEMO)/imagerank.db: | $(VENV)/.installed
	$(VENV)/bin/imagerank demo $(DEMO)

demo: $(DEMO)/imagerank.db

# Voting in JupyterLab on the demo collection (or IMAGERANK_WORKSPACE=/your/workspace make lab).
lab: install demo
	IMAGERANK_WORKSPACE="$${IMAGERANK_WORKSPACE:-$(abspath $(DEMO))}" $(VENV)/bin/imagerank lab "$${IMAGERANK_WORKSPACE:-$(DEMO)}"

# The voting notebook as a stand-alone app (Voilà), bound to 127.0.0.1, offline (voila.json: the imagerank template
# in share/jupyter, without CDN stylesheets) and trusted (no "not trusted" warning).
app: install demo
	$(VENV)/bin/jupyter trust notebooks/01_vote.ipynb
	IMAGERANK_WORKSPACE="$${IMAGERANK_WORKSPACE:-$(abspath $(DEMO))}" JUPYTER_PATH="$(CURDIR)/share/jupyter" \
		$(VENV)/bin/voila notebooks/01_vote.ipynb --Voila.ip=127.0.0.1 --no-browser

# The whole suite: unit, notebook (nbmake) and real-browser tests.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not e2e and not slow" $(PYTEST_ARGS)

# ruff, mypy and the import-linter layers contract (pyproject.toml, docs/architecture.md)
lint: install
	$(VENV)/bin/ruff check imagerank tests benchmarks
	$(VENV)/bin/mypy imagerank benchmarks
	$(VENV)/bin/lint-imports

bench: install
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_pairing.py
	$(PY) benchmarks/ranking_sim.py --compact
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_faults.py
	$(PY) benchmarks/bench_generation.py && $(PY) benchmarks/generation_sim.py --seeds 10
	$(PY) benchmarks/bench_cull.py
	$(PY) benchmarks/bench_burst_rerank.py
	$(PY) benchmarks/bench_plan.py
	$(PY) benchmarks/bench_autopick.py
	if [ -x /usr/bin/chromium ]; then $(PY) benchmarks/bench_panel.py; \
	else echo "bench_panel skipped: it needs Debian's chromium (apt-get install -y chromium)"; fi

clean-demo:
	rm -rf $(DEMO)
