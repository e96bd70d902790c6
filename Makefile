# Build and test entry points for the tablesync.integration collection.
#
#   make test         services + lint + typecheck + docs + sanity + ansible-lint + unit + integration + molecule (what CI runs)
#   make venv         create .venv and install requirements-dev.txt (only when needed)
#   make collection   link the checkout as collections/ansible_collections/tablesync/integration
#   make demo         run playbooks/demo.yml (embedded SQLite ERP and CRM)
#   make sanity       ansible-test sanity in a copy of the checkout
#   make docs         lint and build the collection docsite (antsibull-docs + Sphinx, warnings fail)
#   make molecule     molecule test (converge, idempotence, verify on localhost)
#   make bench        side-by-side sync benchmark (BENCH_ARGS="--rows 1000000" for the large one)
#   make help         list all targets
#
# Every target that needs Python tools depends on the venv stamp, so a fresh
# clone with only python3 gets .venv created on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.requirements.stamp
REQUIREMENTS := requirements.txt requirements-dev.txt

NAMESPACE := tablesync
NAME := integration
COLLECTION_LINK := collections/ansible_collections/$(NAMESPACE)/$(NAME)

# ansible-test sanity runs in a copy whose path ends in ansible_collections/<ns>/<name>.
SANITY_ROOT := $(CURDIR)/tests/output/sanity-root
SANITY_DIR := $(SANITY_ROOT)/ansible_collections/$(NAMESPACE)/$(NAME)
SANITY_PYTHON ?= 3.11
SANITY_ARGS ?=

# pytest-xdist workers for `unit` and `integration`: one per core, at least 2, at most 4
# (each integration test drives ansible-playbook processes and the database servers).
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 2 ? 2 : n > 4 ? 4 : n )))
# worksteal: an idle worker takes queued tests from a busy one, so a few long tests do not
# leave the other workers waiting at the end.
PYTEST_DIST ?= worksteal
PYTEST_ARGS ?=

# Lint only the directories that exist (a fresh clone may lack some).
LINT_PATHS := $(wildcard plugins tests benchmarks)
SHELL_SCRIPTS := $(wildcard tests/ci/*.sh .ci/run)

# Environment for anything that runs ansible-playbook: the venv first on PATH
# (so subprocesses find ansible-playbook and the venv's python) and this
# checkout's ansible.cfg whatever the cwd.
ANSIBLE_ENV := PATH="$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" ANSIBLE_CONFIG="$(CURDIR)/ansible.cfg"

.PHONY: help venv collection demo services lint typecheck fix unit integration test sanity \
        molecule build changelog-lint ansible-lint docs clean distclean bench

help:
	@echo "Targets:"
	@echo "  venv            create $(VENV) and install requirements-dev.txt (skipped when up to date)"
	@echo "  collection      link the checkout as $(COLLECTION_LINK)"
	@echo "  services        make sure PostgreSQL and MariaDB are up (tests/ci/ensure-services.sh)"
	@echo "  lint            ruff check $(LINT_PATHS); shellcheck the CI scripts; changelog fragments"
	@echo "  fix             ruff check --fix (safe auto-fixes)"
	@echo "  unit            pytest -n $(PYTEST_WORKERS) tests/unit"
	@echo "  integration     pytest -n $(PYTEST_WORKERS) tests/integration (runs ansible-playbook)"
	@echo "  typecheck       mypy over plugins/ (settings in pyproject.toml)"
	@echo "  test            services + lint + typecheck + docs + sanity + ansible-lint + unit + integration + molecule (CI entry point)"
	@echo "  docs            lint and build the collection docsite into $(DOCSITE)/build/html (any warning fails)"
	@echo "  demo            ansible-playbook playbooks/demo.yml"
	@echo "  sanity          ansible-test sanity --local --python $(SANITY_PYTHON) in a copy under tests/output/"
	@echo "  ansible-lint    ansible-lint (profile in .ansible-lint)"
	@echo "  molecule        molecule test: extensions/molecule/default on localhost, no containers"
	@echo "  bench           sync benchmark vs the SQLite limit, plain Python and dlt (BENCH_ARGS=\"--rows 1000000\")"
	@echo "  changelog-lint  antsibull-changelog lint"
	@echo "  build           ansible-galaxy collection build into tests/output/build/"
	@echo "  clean           remove generated files (keeps $(VENV))"
	@echo "  distclean       clean + remove $(VENV)"

# --- environment -----------------------------------------------------------

venv: $(STAMP)

# Re-run when the venv is missing or a requirements file is newer than the stamp.
$(STAMP): $(REQUIREMENTS)
	@if [ ! -x "$(VENV)/bin/python" ]; then \
	    echo "Creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
	    $(PYTHON) -m venv $(VENV); \
	fi
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	touch $@

# Relative link: collections/ansible_collections/tablesync/integration -> ../../..
# Checked on every run (cheap): pytest-ansible may have left a directory of
# per-entry links there instead, which is replaced by the single link.
collection:
	@if [ "$$(readlink $(COLLECTION_LINK) 2>/dev/null)" != "../../.." ]; then \
	    mkdir -p $(dir $(COLLECTION_LINK)); \
	    if [ -e $(COLLECTION_LINK) ] || [ -L $(COLLECTION_LINK) ]; then rm -rf -- $(COLLECTION_LINK); fi; \
	    ln -s ../../.. $(COLLECTION_LINK); \
	    echo "linked $(COLLECTION_LINK) -> ../../.."; \
	fi

services:
	tests/ci/ensure-services.sh

# --- checks ----------------------------------------------------------------

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/shellcheck $(SHELL_SCRIPTS)
	$(BIN)/antsibull-changelog lint

# mypy over the plugins as Ansible imports them (through the collections/ link); settings in pyproject.toml.
typecheck: $(STAMP) collection
	$(BIN)/mypy -p ansible_collections.tablesync.integration.plugins

# Apply ruff's safe auto-fixes (import order, pyupgrade, ...).
fix: $(STAMP)
	$(BIN)/ruff check --fix $(LINT_PATHS)

# The collection link is made here, before pytest starts its workers.
unit: $(STAMP) collection services
	$(ANSIBLE_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) tests/unit $(PYTEST_ARGS)

# pytest exits 5 when it collects nothing; that fails the target. Until the
# first integration test file lands, the suite is reported as skipped instead.
# The tests run in parallel: each has its own temporary directory, SQLite files,
# server databases (unique names) and HTTP doubles (port 0).
integration: $(STAMP) collection services
	@if [ -z "$$(find tests/integration -name 'test_*.py' -o -name '*_test.py' 2>/dev/null)" ]; then \
	    echo "integration: no test files under tests/integration yet -- skipped"; \
	else \
	    $(ANSIBLE_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) tests/integration $(PYTEST_ARGS); \
	fi

# Make stops at the first failing step, so a failure anywhere fails `make test`.
test: services lint typecheck docs sanity ansible-lint unit integration molecule

# Side-by-side benchmark; results (table, JSON, PNG) in benchmarks/results/.
#   make bench BENCH_ARGS="--rows 1000000"
BENCH_ARGS ?=
BENCH_STAMP := $(VENV)/.bench-requirements.stamp

$(BENCH_STAMP): $(STAMP) benchmarks/requirements.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_STAMP) collection
	$(ANSIBLE_ENV) $(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# Extra ansible-playbook options: make demo DEMO_ARGS="-e demo_dir=/tmp/demo -v"
DEMO_ARGS ?=

demo: $(STAMP) collection
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook playbooks/demo.yml $(DEMO_ARGS)

# Copies the work tree (tracked or not, minus what .gitignore lists) so that
# ansible-test sees a path ending in ansible_collections/tablesync/integration.
# The copy gets a git repo of its own: ansible-test lists content through the
# nearest .git above the collection root, and the checkout's would list nothing
# (tests/output is ignored there). The copy is made afresh with git and tar.
sanity: $(STAMP)
	$(BIN)/python tests/ci/get_pip_standin.py --install
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C $(SANITY_DIR)
	@[ -d $(SANITY_DIR)/.git ] || git -C $(SANITY_DIR) init --quiet
	cd $(SANITY_DIR) && env -u ANSIBLE_CONFIG PATH="$(BIN):$$PATH" \
	    $(BIN)/ansible-test sanity --local --python $(SANITY_PYTHON) $(SANITY_ARGS)

# The collection docsite as antsibull-docs makes it: the plugin pages and the guides of
# docs/docsite/ (links.yml, extra-docs.yml, rst/). Built offline (tests/ci/docsite_offline.py)
# by Sphinx with warnings as errors.
DOCSITE := tests/output/docsite

docs: $(STAMP) collection
	cd $(COLLECTION_LINK) && $(ANSIBLE_ENV) $(BIN)/antsibull-docs lint-collection-docs --plugin-docs .
	@rm -rf $(DOCSITE) && mkdir -p $(DOCSITE)/rst && chmod og-w $(DOCSITE)/rst
	$(ANSIBLE_ENV) ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/collections" $(BIN)/antsibull-docs sphinx-init --use-current \
	    --fail-on-error --dest-dir $(DOCSITE) $(NAMESPACE).$(NAME) > /dev/null
	cd $(DOCSITE) && $(ANSIBLE_ENV) ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/collections" $(BIN)/antsibull-docs \
	    --config-file antsibull-docs.cfg collection --cleanup everything --fail-on-error --use-current \
	    --dest-dir rst $(NAMESPACE).$(NAME)
	$(BIN)/python tests/ci/docsite_offline.py $(DOCSITE)
	cd $(DOCSITE) && $(BIN)/sphinx-build -M html rst build -c . -W --keep-going -q

ansible-lint: $(STAMP) collection
	$(ANSIBLE_ENV) $(BIN)/ansible-lint

# The prerun of molecule builds the collection and installs it into the first
# entry of ANSIBLE_COLLECTIONS_PATH: a temporary directory here, so the installed
# copy never shadows the checkout for other runs, and a fresh one every time.
# The demo databases are built in that directory too, and removed with it.
MOLECULE_ARGS ?=

molecule: $(STAMP)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	    $(ANSIBLE_ENV) TABLESYNC_MOLECULE_DIR="$$tmp/demo" \
	    ANSIBLE_COLLECTIONS_PATH="$$tmp/collections:$$HOME/.ansible/collections" \
	    $(BIN)/molecule test $(MOLECULE_ARGS)

changelog-lint: $(STAMP)
	$(BIN)/antsibull-changelog lint

build: $(STAMP)
	@mkdir -p tests/output/build
	$(BIN)/ansible-galaxy collection build --force --output-path tests/output/build .

# --- housekeeping ----------------------------------------------------------

clean:
	rm -rf collections tests/output .pytest_cache .ruff_cache .ansible changelogs/.plugin-cache.yaml
	rm -f *.tar.gz
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
