# The two commands a newcomer needs:
#   make run    set up (Debian packages, .venv), start Redis and the S3 server, serve on the
#               embedded default (SQLite) in the foreground: API on 127.0.0.1:8000, workers, beat
#   make test   set up, start the test services (PostgreSQL, Redis, S3, a 3-OSD Ceph cluster), lint,
#               type-check, test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTEST_ARGS ?=

.PHONY: run test setup lint services-down bench

setup:
	deploy/install.sh

run: setup
	eval "$$(deploy/services.sh up embedded)"; exec .venv/bin/custody serve

# The Ceph cluster of the node-loss tests (deploy/cluster.sh, ~13 s) starts while the linters run.
test:
	deploy/install.sh --with-postgres
	cluster_env=$$(mktemp); deploy/cluster.sh up >"$$cluster_env" & cluster=$$!; \
	eval "$$(deploy/services.sh up test)"; \
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . && .venv/bin/lint-imports && \
	wait $$cluster && eval "$$(cat "$$cluster_env")" && rm -f "$$cluster_env" && \
	.venv/bin/pytest $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . && .venv/bin/lint-imports

services-down:
	deploy/services.sh down embedded; deploy/services.sh down test; deploy/cluster.sh down

bench:
	eval "$$(deploy/services.sh up test)"; .venv/bin/python bench/run_all.py
