# atlab: every target sets up what it needs in .venv (created with $(PYTHON) -m venv).
#   make lab       JupyterLab on the course: notebooks/ and exercises/ (installs .[notebooks])
#   make test      ruff, mypy, notebook hygiene, then pytest (installs .[dev,notebooks,hub])
#   make workshop  Voila on notebooks/ for a room of learners (WORKSHOP_PORT, WORKSHOP_IP)
#   make hub       JupyterHub for a room of learners (HUB_LEARNERS, HUB_PORT, HUB_MEM, ...; HUB_ARGS)
#   make bench     python -m benchmarks
#   make difftest  python -m tools.difftest (the model against QEMU)
#   make fuzz      python -m tools.fuzz: 10,000 mutated inputs per command (FUZZ_ARGS)
#   make realsys   boot Debian's arm64 kernel under QEMU, snapshot its tables, compare with QEMU
#   make clean     remove caches and build output; `make distclean` removes .venv too
# System packages (QEMU 10, aarch64 binutils, Chromium, gcc + linux-source-6.12 for tools/kvm)
# come from tools/install-system-deps.sh.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --quiet --disable-pip-version-check
PYTEST_ARGS ?=
DIFFTEST_ARGS ?=
FUZZ_ARGS ?= --runs 10000
LAB_ARGS ?=
START_NOTEBOOK := notebooks/00_start_here.ipynb

# Stamps inside the venv: rebuilt when pyproject.toml changes.
VENV_OK := $(VENV)/.atlab-venv
STAMP_LAB := $(VENV)/.atlab-installed-notebooks
STAMP_DEV := $(VENV)/.atlab-installed-dev
STAMP_HUB := $(VENV)/.atlab-installed-hub

.DEFAULT_GOAL := help
.PHONY: help lab workshop hub test sysdeps bench difftest fuzz realsys clean distclean

help:
	@sed -n 's/^#   //p' Makefile

$(VENV_OK):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  || { echo "make: '$(PYTHON)' is missing or older than Python 3.11; run e.g. 'make PYTHON=python3.11 ...'" >&2; exit 1; }
	@echo "==> creating $(VENV) with $(PYTHON)"
	@rm -rf $(VENV)
	@$(PYTHON) -m venv $(VENV) \
	  || { rm -rf $(VENV); echo "make: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install the venv module: sudo apt-get install python3-venv" >&2; exit 1; }
	@touch $@

$(STAMP_LAB): pyproject.toml | $(VENV_OK)
	@echo "==> installing atlab with the notebooks extra into $(VENV)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[notebooks]'
	@touch $@

$(STAMP_DEV): pyproject.toml | $(VENV_OK)
	@echo "==> installing atlab with the dev, notebooks and hub extras into $(VENV)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev,notebooks,hub]'
	@touch $@ $(STAMP_LAB) $(STAMP_HUB)

$(STAMP_HUB): pyproject.toml | $(VENV_OK)
	@echo "==> installing atlab with the notebooks and hub extras into $(VENV)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[notebooks,hub]'
	@touch $@ $(STAMP_LAB)

# Jupyter refuses to run as root without --allow-root (containers, CI machines).
lab: $(STAMP_LAB)
	@root=""; [ "$$(id -u)" -ne 0 ] || root="--allow-root"; \
	if [ -f $(START_NOTEBOOK) ]; then \
	  exec $(BIN)/jupyter lab $$root --ServerApp.root_dir=. $(LAB_ARGS) $(START_NOTEBOOK); \
	else \
	  exec $(BIN)/jupyter lab $$root $(LAB_ARGS) notebooks/; \
	fi

# Workshop mode: Voila renders the notebooks as apps (code hidden, widgets live, one kernel per
# open page). Learners on the same network open http://<this machine>:$(WORKSHOP_PORT)/.
WORKSHOP_PORT ?= 8866
WORKSHOP_IP ?= 0.0.0.0
workshop: $(STAMP_LAB)
	exec $(BIN)/voila --no-browser --port=$(WORKSHOP_PORT) --Voila.ip=$(WORKSHOP_IP) \
	  --VoilaConfiguration.show_tracebacks=False --strip_sources=True notebooks/

# Workshop hub: JupyterHub, one server per learner with their own copy of the course, limits,
# idle culling (docs/workshop.md). Settings: HUB_LEARNERS, HUB_PORT, HUB_IP, HUB_MEM, HUB_CPU,
# HUB_CULL_TIMEOUT, HUB_PASSWORD, HUB_DIR, ... (python -m tools.hub --help). The proxy,
# configurable-http-proxy, comes from Debian (tools/install-system-deps.sh hub).
HUB_ARGS ?=
hub: $(STAMP_HUB)
	@command -v configurable-http-proxy >/dev/null 2>&1 || sh tools/install-system-deps.sh hub
	exec $(BIN)/python -m tools.hub $(HUB_ARGS)

# Every step runs even when an earlier one fails, so one run shows every problem; the
# target fails if any step failed. On success pytest's summary is the last line printed.
# QEMU 10, aarch64 binutils, Chromium, gcc and linux-source-6.12 (idempotent: does nothing
# when they are present).
sysdeps:
	@sh tools/install-system-deps.sh

test: $(STAMP_DEV) sysdeps
	@failed=""; \
	run() { echo "==> $$*"; "$$@" || failed="$$failed$$(printf '\n  %s' "$$*")"; }; \
	run $(BIN)/ruff check . ; \
	run $(BIN)/mypy --strict atlab tools/kvm ; \
	run $(BIN)/python tools/check_notebooks.py ; \
	run $(BIN)/pytest $(PYTEST_ARGS) ; \
	if [ -n "$$failed" ]; then echo "make test: FAILED steps:$$failed" >&2; exit 1; fi

bench: $(STAMP_DEV)
	$(BIN)/python -m benchmarks

difftest: $(STAMP_DEV) sysdeps
	$(BIN)/python -m tools.difftest $(DIFFTEST_ARGS)

# The long fuzz run of issue 19 (tests/test_fuzz.py is the short one in `make test`): prints
# runs, failure classes (inputs saved under artifacts/fuzz/) and figures; fails on a new class.
fuzz: $(STAMP_DEV)
	$(BIN)/python -m tools.fuzz $(FUZZ_ARGS)

# Issue 17: Debian's arm64 kernels (6.1 VHE, 6.1 at EL1, 6.12 with LPA2) from packages under
# QEMU; atlab's walks of their live tables against QEMU's gva2gpa, then a KVM guest's stage 2
# inside the VHE host; figures printed, exit 1 on any difference.  Snapshots land in build/realsys.  REALSYS_ARGS is passed to each run.
REALSYS_ARGS ?=
realsys: $(STAMP_DEV) sysdeps
	$(BIN)/python -m tools.realsys all $(REALSYS_ARGS)
	$(BIN)/python -m tools.realsys compare --no-virtualization $(REALSYS_ARGS)
	$(BIN)/python -m tools.realsys compare --kernel 6.12 $(REALSYS_ARGS)
	$(BIN)/python -m tools.realsys kvm

clean:
	rm -rf build dist artifacts .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage htmlcov
	find . -path ./$(VENV) -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} + \
	  -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
