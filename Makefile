# The two commands of the course (see README.md):
#   make lab    set up .venv if needed, then open the notebooks in JupyterLab
#   make test   set up .venv if needed, then run everything CI runs (unit tests + every notebook at smoke)
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root unless told to (containers, CI); a laptop user never needs it.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: install browser-deps lab test run site student reference gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lab: install
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

# Debian's Chromium for the browser tests (apt-get, when missing and we are root, as CI is); see the script.
browser-deps:
	@bash scripts/browser_deps.sh

# Every unit test and every notebook (nbval, lax) at GANLIB_SCALE=smoke, two workers, one notebook per worker,
# one thread each (two workers on two cores: more threads only fight over the cores); -rs lists every skipped
# test with its reason (no Chromium, no CUDA device). nbval's kernels draw inline, as a learner's do (no
# MPLBACKEND here; the unit tests pick Agg in tests/conftest.py), and tests/keep_executed.py keeps each executed
# notebook in build/executed/, from which the site test then builds the course's pages without running any
# chapter again. Beside the main run, in a pytest process of its own, the browser tests (tests/browser/:
# JupyterLab in Chromium): run in one process with the Trainer's Ctrl-C tests, those tests twice stopped
# receiving their own SIGINT (cause not found yet). Their log is printed at the end; make test fails if any fails.
PYTEST := GANLIB_SCALE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider -rs
KEPT := build/executed
test: install browser-deps
	@mkdir -p build && rm -rf $(KEPT)
	@$(PYTEST) tests/browser > build/side-tests.log 2>&1 & side=$$!; \
	GANLIB_KEEP_EXECUTED=$(KEPT) PYTHONPATH=tests $(PYTEST) -p keep_executed -n 2 --dist loadfile --nbval-lax \
	    --ignore=tests/browser --ignore=tests/test_site.py tests notebooks; main=$$?; \
	GANLIB_KEEP_EXECUTED=$(KEPT) $(PYTEST) tests/test_site.py; site=$$?; \
	wait $$side; side_rc=$$?; \
	echo "== browser tests (tests/browser), run beside the above:"; cat build/side-tests.log; \
	exit $$(( main != 0 || site != 0 || side_rc != 0 ))

# Execute every notebook headless at the current GANLIB_SCALE (default: small on CPU, full on GPU);
# executed copies land in build/ and the stored notebooks stay stripped.
run: install
	@mkdir -p build
	for nb in notebooks/*.ipynb; do \
	  $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=3600 --output-dir build "$$nb" || exit 1; \
	done

# The course as a static HTML site (Jupyter Book 1) in build/site/, from notebooks executed at GANLIB_SCALE
# (default small; `make site GANLIB_SCALE=smoke` in seconds per chapter), widgets as their static figures.
site: install
	$(BIN)/python scripts/site.py --scale $(or $(GANLIB_SCALE),small)

# The student version: notebooks/ copied to build/student/ with every cell tagged `solution` replaced by a stub that
# keeps the function's signature and raises NotImplementedError("exercise N.M: ..."). Standard library only.
student:
	$(PYTHON) scripts/student.py

# Re-create every shipped reference model (data/reference/) from scratch on one CPU core each, two side by
# side (about an hour a pair on a 2-core machine); interrupted runs resume from build/reference/NAME/.
REFERENCE_MODELS ?= dcgan cgan lapgan pggan stylegan
reference: install
	printf '%s\n' $(REFERENCE_MODELS) | OMP_NUM_THREADS=1 xargs -P 2 -I NAME $(BIN)/python scripts/reference.py NAME --quiet

gpu-check: install
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build .pytest_cache
