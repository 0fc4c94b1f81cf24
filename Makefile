# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint install browser clean protobuf

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Start viu (ingester, scheduler, API); embedded PostgreSQL/broker when none is configured.
run: install
	$(BIN)/viu up

## Lint, type-check and run the whole test suite against real PostgreSQL and MQTT, then
## every database test again on TimescaleDB (skipped, and said so, without ../shared/tools).
test: install lint browser
	$(BIN)/pytest -q
	.ci/timescaledb-lane

## Debian's chromium for the review-page test (best effort: without it that test is skipped).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  ; } || echo "chromium not installed: the review page browser test will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict schemas services/settlement

## Regenerate the Sparkplug B (Eclipse Tahu) protobuf module from the vendored .proto.
PROTO_DIR := services/ingest/formats
protobuf: install
	$(BIN)/pip install --quiet grpcio-tools
	$(BIN)/python -m grpc_tools.protoc --proto_path=$(PROTO_DIR) --python_out=$(PROTO_DIR) \
	  --pyi_out=$(PROTO_DIR) $(PROTO_DIR)/sparkplug_b.proto

clean:
	rm -rf $(VENV) .viu .pytest_cache .mypy_cache .ruff_cache
