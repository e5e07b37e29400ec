# Kaiwa: one command to run the suite, one to test it. See README.md.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
PROTOS    := $(shell find protos/kaiwa -name '*.proto')
STAMP_ENV := $(VENV)/.stamp-env
STAMP_GEN := gen/.stamp-gen
STAMP_DEV := $(VENV)/.stamp-dev

.PHONY: setup prosody console chromium proto run lint test bench clean token

setup: $(STAMP_GEN) $(STAMP_DEV) prosody console chromium

# The XMPP server the XMPP bridge's end-to-end tests start (CMD-02): Debian's prosody,
# installed when missing (non-interactive; nothing is done when it is there).
prosody:
	@command -v prosody >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y prosody)

# The web console (PLAT-04, README "Console"): npm ci from the committed lock, TypeScript
# generated from protos/ by buf + protoc-gen-es (both from npm), bundled by esbuild into
# console/dist; rebuilt only when the lock, the sources or the protos change.
CONSOLE_SRC := console/package-lock.json console/buf.gen.yaml console/build.mjs console/tsconfig.json \
	$(shell find console/src console/public -type f -not -path 'console/src/gen/*' 2>/dev/null) $(PROTOS)
CONSOLE_STAMP := console/dist/.stamp-console
console: $(CONSOLE_STAMP)
$(CONSOLE_STAMP): $(CONSOLE_SRC)
	cd console && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent
	touch $@

# The browser the console's test drives: Debian's chromium, installed when missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The environment: a venv created from the locked dependency list.
$(STAMP_ENV): requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

# Generated contracts: one importable package `kaiwa.<svc>.v1` under gen/ (built aside,
# then swapped in, so a run in progress never sees a half-written tree), and the
# descriptor set the gateway's gRPC-JSON transcoder reads (gen/kaiwa.pb, PLAT-04).
# google/api/{annotations,http}.proto are vendored under protos/google (so buf sees them
# offline); their Python modules come from googleapis-common-protos at run time, and
# google/rpc/status.proto (for the transcoder's error bodies) from its site-packages.
GOOGLEAPIS = $(shell $(BIN)/python -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))')
$(STAMP_GEN): $(STAMP_ENV) $(PROTOS) protos/google/api/annotations.proto protos/google/api/http.proto
	rm -rf gen.tmp && mkdir -p gen.tmp
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=gen.tmp --pyi_out=gen.tmp \
		--grpc_python_out=gen.tmp $(PROTOS)
	$(BIN)/python -m grpc_tools.protoc -Iprotos -I$(GOOGLEAPIS) --include_imports \
		--descriptor_set_out=gen.tmp/kaiwa.pb $(PROTOS) google/rpc/status.proto
	find gen.tmp/kaiwa -type d -exec touch {}/__init__.py \;
	touch gen.tmp/.stamp-gen
	rm -rf gen.old && { [ ! -d gen ] || mv gen gen.old; } && mv gen.tmp gen && rm -rf gen.old

# The project itself, installed editable, so every service imports the same code.
$(STAMP_DEV): $(STAMP_GEN) pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

proto: $(STAMP_GEN)

# Starts NATS and PostgreSQL (unless KAIWA_NATS_URL / KAIWA_DATABASE_URL are set),
# migrates, starts all five services and prints where each listens. Ctrl-C stops all.
run: setup
	$(BIN)/python -m kaiwa_common.devrun

# ruff (lint and format) on the Python tree, buf's STANDARD rules on the contracts.
lint: setup
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/buf lint

# Lint, then unit, integration (real PostgreSQL + NATS, started by the run) and e2e tests,
# TEST_WORKERS test files at a time (pytest-xdist; each worker starts its own PostgreSQL
# and NATS; a file's tests stay together, they share its module fixtures).
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(BIN)/python -m bench $(ONLY)

token: setup
	@$(BIN)/kaiwa token $(ARGS)

clean:
	rm -rf gen gen.tmp gen.old $(VENV) .pytest_cache console/node_modules console/dist console/src/gen
