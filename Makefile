# The two commands a newcomer needs:
#   make run    set up (Debian packages, .venv), start Redis and the S3 server, serve on the
#               embedded default (SQLite) in the foreground: API on 127.0.0.1:8000, workers, beat
#   make test   set up, start the test services (PostgreSQL, Redis, S3, a 3-OSD Ceph cluster), lint,
#               type-check, test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTEST_ARGS ?=
# pytest-xdist workers: most tests wait on subprocesses (uvicorn, Celery, ffmpeg, Chromium), so more
# workers than cores pays; each takes its own test slot (tests/conftest.py), at most 8.
PYTEST_WORKERS ?= 3
# security lint of the shipped code: medium severity and up fails the build (see [tool.bandit])
BANDIT = .venv/bin/bandit -q -c pyproject.toml -r . --severity-level medium

.PHONY: run test setup lint services-down bench i18n i18n-compile

setup:
	deploy/install.sh

run: setup
	services_env=$$(deploy/services.sh up embedded); eval "$$services_env"; exec .venv/bin/custody serve

# The Ceph cluster of the node-loss tests (deploy/cluster.sh, ~13 s) starts while the linters run.
# The test services must be up before anything else runs: `eval "$$(...)"` alone would carry on past a
# failed start (its status is lost), and every pytest worker would then try to start them at once. A
# start that times out on a cold, busy machine gets one more try (`up` is idempotent); then make stops
# with services.sh's reason and the tails of the logs.
test:
	deploy/install.sh --with-postgres
	cluster_env=$$(mktemp); deploy/cluster.sh up >"$$cluster_env" & cluster=$$!; \
	services_env=$$(deploy/services.sh up test) || services_env=$$(deploy/services.sh up test) || \
	  { echo "make test: the test services did not start (the lines above say why)" >&2; \
	    deploy/services.sh status test >&2 || true; df -h . /tmp >&2 || true; wait $$cluster || true; exit 1; }; \
	eval "$$services_env"; \
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . && .venv/bin/lint-imports && \
	wait $$cluster && eval "$$(cat "$$cluster_env")" && rm -f "$$cluster_env" && \
	$(BANDIT) && .venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . && .venv/bin/lint-imports && $(BANDIT)

services-down:
	deploy/services.sh down embedded; deploy/services.sh down test; deploy/cluster.sh down

bench:
	services_env=$$(deploy/services.sh up test); eval "$$services_env"; .venv/bin/python bench/run_all.py

# ---------- translations (docs/i18n.md) ----------
# make i18n          extract every _() message into the template and merge it into each catalog
# make i18n-compile  compile the catalogs (.mo files are build products, not in git)
I18N_POT := archive/locale/custody.pot
PYBABEL ?= .venv/bin/pybabel

i18n:
	$(PYBABEL) -q extract -F babel.cfg -k gettext_ --no-location --sort-output --no-wrap \
	  --project=Custody --copyright-holder=Custody --omit-header \
	  -o $(I18N_POT) .
	$(PYBABEL) -q update -D custody -i $(I18N_POT) -d archive/locale --no-fuzzy-matching --ignore-obsolete --no-wrap
	@# dates in the header would make every branch's catalog conflict with every other's
	sed -i -e '/^"POT-Creation-Date:/d' -e '/^"PO-Revision-Date:/d' -e '/^"Report-Msgid-Bugs-To:/d' archive/locale/*/LC_MESSAGES/custody.po

i18n-compile:
	$(PYBABEL) compile -D custody -d archive/locale --statistics
