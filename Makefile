# Every command a developer or CI needs. `make run` and `make test` set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HTMX_VERSION := 2.0.11
AXE_VERSION := 4.14.1
AXE := .cache/axe-core-$(AXE_VERSION)/axe.min.js
OIDC_VERSION := 9.13.3
OIDC_PROVIDER := .cache/oidc-provider-$(OIDC_VERSION)/node_modules/oidc-provider/lib/index.js
export PORTAL_DATA_DIR ?= data

help:
	@echo "make run     set up and run the portal on SQLite with the demo catalog (development mode)"
	@echo "make run-sip2  the same, patrons signing in with a library card through SIP2 (a stand-in library system)"
	@echo "make test    set up everything (incl. PostgreSQL, Chromium) and run lint, types and tests"
	@echo "make quick   lint, types, then the unit and functional tests on SQLite (no other processes)"
	@echo "make bench   run the benchmarks and print figures"
	@echo "make bench-consortium   the nightly jobs at 1, 3 and 10 million patrons (hours)"
	@echo "make crash   kill the server, then the delivery worker, at random on PostgreSQL; check every promise"
	@echo "make messages  regenerate locales/messages.pot and update every catalog"

$(BIN)/portal: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/portal

# PostgreSQL for the second test run, Chromium for the browser tests, Node and npm for the
# tools fetched from npm (Debian packages).
system-packages:
	@missing=""; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -d /usr/share/fonts/truetype/noto || missing="$$missing fonts-noto-core"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# axe-core checks pages against WCAG in the browser tests; fetched from npm, never served.
$(AXE):
	mkdir -p $(dir $@)
	cd $(dir $@) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && \
	  tar xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js && mv package/axe.min.js . && rm -rf package *.tgz

# node-oidc-provider, a certified OpenID Connect provider, runs on loopback in the staff
# sign-in tests (tests/oidc/provider.mjs); fetched from npm, never served.
$(OIDC_PROVIDER):
	mkdir -p .cache/oidc-provider-$(OIDC_VERSION)
	cd .cache/oidc-provider-$(OIDC_VERSION) && echo '{"private": true}' >package.json && \
	  npm install --silent --no-audit --no-fund --save-exact oidc-provider@$(OIDC_VERSION)
	test -f $@

run: setup
	PORTAL_DEV_MODE=true $(BIN)/portal migrate
	PORTAL_DEV_MODE=true $(BIN)/portal publish deploy/catalog.toml
	@echo
	@PORTAL_DEV_MODE=true $(BIN)/portal demo-patron </dev/null
	@echo "Open http://127.0.0.1:8000/setup-pin to choose the demo patron's PIN, then sign in."
	@echo
	@PORTAL_DEV_MODE=true $(BIN)/portal demo-desk
	@echo "Desk: choose the password at http://127.0.0.1:8000/staff/setup, then open http://127.0.0.1:8000/desk"
	@echo
	PORTAL_DEV_MODE=true $(BIN)/portal serve --host 127.0.0.1 --port 8000

# As `run`, with patrons signing in by library card and PIN through SIP2: the library system
# stand-in (tests/ils/server.py, its demo cards) on 127.0.0.1:6001, stopped with the portal.
run-sip2: setup
	PORTAL_DEV_MODE=true $(BIN)/portal migrate
	PORTAL_DEV_MODE=true $(BIN)/portal publish deploy/catalog.toml
	@echo
	@PORTAL_DEV_MODE=true $(BIN)/portal demo-desk
	@echo "Desk: choose the password at http://127.0.0.1:8000/staff/setup, then open http://127.0.0.1:8000/desk"
	@echo
	@exec 3< <(exec $(BIN)/python -m tests.ils.server --demo --port 6001); ils=$$!; \
	  trap 'kill $$ils 2>/dev/null' EXIT; \
	  read -r -u 3 word _ && [ "$$word" = ready ] || { echo "The library system stand-in did not start: is port 6001 free?"; exit 1; }; \
	  echo "Library system stand-in on 127.0.0.1:6001 (SIP2, plain text on loopback)."; \
	  echo "Open http://127.0.0.1:8000/ and sign in with card 21000000000001, PIN 1234"; \
	  echo "  (a child of 10: card 21000000000002, PIN 1234; a name with accents: 21000000000003, PIN 1234)"; \
	  echo; \
	  PORTAL_DEV_MODE=true PORTAL_IDENTITY_SOURCE=sip2 PORTAL_SIP2_HOST=127.0.0.1 PORTAL_SIP2_PORT=6001 \
	    PORTAL_SIP2_PLAIN_LOOPBACK=true $(BIN)/portal serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: setup
	$(BIN)/mypy

# Regional variants (portal.locale_codes.VARIANT_OF) hold only the entries whose words differ
# from their language's: `make messages` leaves them alone (tests/unit/test_catalogs.py
# says when one of their entries is stale).
VARIANTS := zh_Hant_HK

messages: setup
	$(BIN)/pybabel extract -F babel.cfg --omit-header --sort-by-file --no-wrap -k _ -k N_ -k Np_:1,2 -k Cp_:1c,2 -k Cnp_:1c,2,3 -o locales/messages.pot . >/dev/null
	for dir in locales/*/LC_MESSAGES; do \
	  code=$$(basename $$(dirname $$dir)); \
	  case " $(VARIANTS) " in *" $$code "*) continue ;; esac; \
	  $(BIN)/pybabel update -i locales/messages.pot -d locales -l $$code --no-wrap --ignore-obsolete --no-fuzzy-matching || exit 1; \
	done

# The build fails when a template or message changed without `make messages`.
messages-check: setup
	@tmp=$$(mktemp); \
	$(BIN)/pybabel extract -F babel.cfg --omit-header --sort-by-file --no-wrap -k _ -k N_ -k Np_:1,2 -k Cp_:1c,2 -k Cnp_:1c,2,3 -o $$tmp . >/dev/null 2>&1; \
	if ! diff -q $$tmp locales/messages.pot >/dev/null; then \
	  echo "locales/messages.pot is stale: run 'make messages' and translate the new entries"; \
	  diff -u locales/messages.pot $$tmp | head -40; rm -f $$tmp; exit 1; fi; \
	rm -f $$tmp; echo "locales/messages.pot is up to date"

migration: setup
	$(BIN)/tortoise makemigrations

test: setup system-packages $(AXE) $(OIDC_PROVIDER) lint types messages-check
	# The unit and functional tiers on both cores (each process its own databases); then the
	# tiers that start servers, clusters and Chromium, one test at a time on each engine, the
	# two engines side by side (each prints its report when it ends).
	PORTAL_TEST_AXE=$(AXE) PORTAL_TEST_OIDC_PROVIDER=$(CURDIR)/$(OIDC_PROVIDER) $(BIN)/pytest --db sqlite -n 2 tests/unit tests/functional
	PORTAL_TEST_OIDC_PROVIDER=$(CURDIR)/$(OIDC_PROVIDER) $(BIN)/pytest --db postgres -n 2 tests/functional
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite-servers test-postgres-servers

# Parts of `make test` (it runs both, side by side, after the tiers above).
test-sqlite-servers:
	PORTAL_TEST_AXE=$(AXE) PORTAL_TEST_OIDC_PROVIDER=$(CURDIR)/$(OIDC_PROVIDER) $(BIN)/pytest --db sqlite tests/integration tests/system tests/browser
test-postgres-servers:
	PORTAL_TEST_OIDC_PROVIDER=$(CURDIR)/$(OIDC_PROVIDER) $(BIN)/pytest --db postgres tests/integration tests/system

# The loop while working: what needs no other process (no PostgreSQL, Chromium, provider or
# receiver). tests/integration and tests/system are left to `make test`.
quick: setup lint types
	$(BIN)/pytest --db sqlite -q -n 2 tests/unit tests/functional

bench: setup system-packages
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk valgrind >/dev/null; }
	$(BIN)/python -m tests.benchmarks sqlite
	$(BIN)/python -m tests.benchmarks postgres

# A state consortium's night at 1, 3 and 10 million patrons on PostgreSQL (hours; the disk
# each scale needs is printed first: BENCH_CONSORTIUM_DIR puts the cluster on a larger disk).
bench-consortium: setup system-packages
	BENCH_CONSORTIUM_PATRONS=1000000,3000000,10000000 $(BIN)/python -m tests.benchmarks postgres consortium

# The long crash tests on PostgreSQL: 1,000 operations from 8 clients, 10 SIGKILLs, figures;
# then 400 requests to a connected system while `portal deliver` is killed 10 times mid-batch.
crash: setup system-packages
	$(BIN)/python -m tests.crash 1000 10
	$(BIN)/python -m tests.delivery 200 10

vendor-htmx:
	cd $$(mktemp -d) && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null && tar xzf htmx.org-$(HTMX_VERSION).tgz && \
	  cp package/dist/htmx.min.js $(CURDIR)/portal/static/htmx.min.js
	@echo "Vendored htmx.org $(HTMX_VERSION); record it in portal/static/VENDORED.md"

.PHONY: help setup system-packages run run-sip2 lint types messages messages-check migration test test-sqlite-servers test-postgres-servers quick bench bench-consortium crash vendor-htmx
