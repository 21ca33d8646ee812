# swimguard: every target sets up what it needs by itself.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast test-slow lint bench hostile experiments experiments-short scale-10k serf clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

# Debian's serf (and Go memberlist sources for mlnode) for interop tests and benches; only as root.
serf:
	@if ! command -v serf >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends serf) >/dev/null; \
	  else echo "serf not installed and not root: interop tests will be skipped (failed under CI=1)"; fi; \
	fi

demo: venv
	$(BIN)/python -m swimguard.demo

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

# The fast suite runs against the built wheel on the oldest and newest supported CPython, a
# smoke test of the wheel on each (.ci/test-pythons).
test: venv serf lint docs
	BUILD_PY=$(BIN)/python .ci/test-pythons
	$(BIN)/python -m pytest -q -m slow

.PHONY: docs test-pythons
test-pythons: venv
	BUILD_PY=$(BIN)/python .ci/test-pythons

# The docs site in build/site; --strict fails on a broken link or a missing reference.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

bench: venv serf
	$(BIN)/python -m bench

# Hostile-input suite (issue 10) at the issue's sizes against live 3-agent clusters: ~1M
# datagrams, hostile TCP streams, spoofed gossip; results/hostile/hostile-full.json.
hostile: venv
	$(BIN)/python -m bench.hostile --size full

experiments: venv
	$(BIN)/python -m swimguard sim lifeguard --members 100 --anomalies 1,4,8,16,32 --duration 300 --seeds 5 --jobs 2 --out results/lifeguard

# The same study with short-lived slow episodes (1-4 s) and on-time timers (results/lifeguard/README.md).
experiments-short: venv
	$(BIN)/python -m swimguard sim lifeguard --members 100 --anomalies 1,4,8,16,32 --duration 300 --seeds 5 --jobs 2 \
	  --slow exp:6,notimers --slow-on 1,4 --slow-off 20,40 --out results/lifeguard_short

# N=10,000 members from a warm start: ~6 GB of memory, ~25 CPU minutes.
scale-10k: venv
	$(BIN)/python -m bench.sim_scale --sizes 10000 --warm --virtual 60 --out results/sim_scale/warm-10000

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
