# The README's two commands are `make demo` and `make test`; everything they need is built here,
# idempotently: Debian packages, the virtualenv, the native extension.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.stamp-deps-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
NATIVE_SRC := $(wildcard native/*.pyx native/*.pxd native/*.h) setup.py
NATIVE_STAMP := native/.stamp-build
PORT ?= 8080
# `serve` listens on every interface; without TWILIO_AUTH_TOKEN it refuses to (nothing could be
# verified): `make serve HOST=127.0.0.1` for a local run.
HOST ?= 0.0.0.0
# `serve` runs one worker process per core (so it uses every core; README "Running at scale");
# `make serve WORKERS=1` for one process.
WORKERS ?=

.PHONY: all venv native test bench demo serve soak load pipecat-venv clean

all: native

$(DEPS_STAMP): pyproject.toml scripts/install-system-deps.sh
	scripts/install-system-deps.sh
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel cython numpy
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	rm -f $(VENV)/.stamp-deps-*
	touch $@

venv: $(DEPS_STAMP)

$(NATIVE_STAMP): $(DEPS_STAMP) $(NATIVE_SRC)
	$(PY) setup.py -q build_ext --inplace
	touch $@

native: $(NATIVE_STAMP)

test: native
	$(PY) -m pytest -q

bench: native pipecat-venv
	$(PY) -m pytest -q bench -p no:randomly --benchmark-columns=min,median,ops -s -o addopts="--import-mode=importlib -p no:cacheprovider"

# `make load CALLS=30 SECONDS=60` (LOAD_ARGS=--ramp for the highest N that holds): simulated
# callers in their own processes against a server with instant fake providers, loopback only.
CALLS ?= 10
SECONDS ?= 30
LOAD_ARGS ?=
load: native
	$(PY) -m server.cli load --calls $(CALLS) --seconds $(SECONDS) $(LOAD_ARGS)

# The load comparison's baseline, Pipecat's pass-through Twilio pipeline (bench/pipecat_twilio.py),
# runs in its own environment, never in .venv: `make load LOAD_ARGS="--pipecat $(PIPECAT_PY)"`.
PIPECAT_VENV := artifacts/pipecat-venv
PIPECAT_PY := $(PIPECAT_VENV)/bin/python
PIPECAT_STAMP := $(PIPECAT_VENV)/.stamp-pipecat-1.14.0
$(PIPECAT_STAMP):
	@[ -x $(PIPECAT_PY) ] || $(PYTHON) -m venv $(PIPECAT_VENV)
	$(PIPECAT_PY) -m pip install -q 'pipecat-ai[websocket]==1.14.0' uvicorn
	touch $@

pipecat-venv: $(PIPECAT_STAMP)

soak: native
	$(PY) -m pytest -q -m soak -s -o addopts="--import-mode=importlib -p no:cacheprovider"

demo: native
	$(PY) -m server.cli demo

serve: native
	$(VENV)/bin/agentlocator serve --host $(HOST) --port $(PORT) $(if $(WORKERS),--workers $(WORKERS),)

clean:
	rm -rf build native/*.so native/*.c $(NATIVE_STAMP)
