# One command to set up and run the demo, one to set up and run the tests.
# Both build their own virtual environment and install everything they need.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMP   := build/stamps
PYTEST_ARGS ?=

.PHONY: demo test deps system-deps peers bench clean

demo: deps
	$(VENV)/bin/selfpub demo

test: deps system-deps peers
	$(PY) -m pytest $(PYTEST_ARGS)

deps: $(STAMP)/venv

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[local,test]'
	@touch $@

# Debian packages the tests use: hledger (ledger export cross-check),
# chromium + chromium-driver (status page screenshot).
system-deps: $(STAMP)/apt

$(STAMP)/apt:
	@mkdir -p $(STAMP)
	bash tests/peers/apt.sh
	@touch $@

# Node peers from npm: Node 22, the Bluesky PDS, the in-memory PLC, anvil, solc.
peers: $(STAMP)/node

$(STAMP)/node: $(wildcard tests/peers/*/package.json tests/peers/*/install.sh)
	@mkdir -p $(STAMP)
	bash tests/peers/setup.sh
	@touch $@

bench: deps peers
	$(PY) bench/run_all.py

clean:
	rm -rf build $(VENV)
