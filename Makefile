# Two commands do all the set-up: `make lab` and `make test`.
# Both create .venv on first use and reinstall only when the dependency files change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEPS   := pyproject.toml requirements-lock.txt
LAB_ARGS ?=
# Jupyter refuses to start as root (as in many containers) unless told to.
ROOT_OK := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
# A stuck cell ends with a clear error instead of waiting forever: in fast mode (make test)
# no cell needs a minute; in full mode (make execute) the longest takes about 4 minutes.
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
          --nbval-cell-timeout=300
CELL_TIMEOUT ?= 600
NOTEBOOKS ?= $(wildcard solutions/*.ipynb)

.PHONY: lab workspace test test-slow lint book student check-student execute grade lock clean

$(STAMP): $(DEPS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# nbgrader is installed for teachers and the tests; its panels stay out of a learner's JupyterLab
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	@for e in formgrader validate_assignment assignment_list course_list; do \
	  $(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$e >/dev/null 2>&1 || exit 1; \
	done
	@touch $(STAMP)

## lab: start JupyterLab on your own copy of notebook 00 in work/ (make lab LAB_ARGS="--no-browser")
lab: workspace
	$(BIN)/jupyter lab $(ROOT_OK) --ServerApp.root_dir="$(CURDIR)" \
	  --LabApp.default_url=/lab/tree/work/00_start_here.ipynb $(LAB_ARGS) work/00_start_here.ipynb

## workspace: copy new notebooks into work/ (your copies); course updates go beside yours
workspace: $(STAMP)
	$(BIN)/python -m utils.workspace

## test: library tests, both editions under nbval in fast mode, lint
test: $(STAMP)
	$(BIN)/ruff check utils tests solutions grading book
	@# two worker processes, one notebook (or test module) each at a time, one thread each
	ACV_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadscope \
	  tests solutions notebooks $(NBVAL)

## test-slow: the full grading checks (nbgrader and utils.grade on notebooks 00 and 02)
test-slow: $(STAMP)
	ACV_FAST=1 $(BIN)/python -m pytest -q -m slow tests

lint: $(STAMP)
	$(BIN)/ruff check utils tests solutions grading book

## book: the reading edition, a static site of every notebook with its committed outputs, in build/book/
book: $(STAMP)
	$(BIN)/python book/build_book.py --out build/book

## student: regenerate notebooks/ (student edition) from solutions/
student: $(STAMP)
	$(BIN)/python -m utils.student

check-student: $(STAMP)
	$(BIN)/python -m utils.student --check

## execute: re-run every solution notebook in full mode, in place (Restart & Run All); a cell
## that runs past CELL_TIMEOUT seconds stops its notebook, which is left as it was
execute: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
	  echo "make execute: $$nb (full mode, at most $(CELL_TIMEOUT) s a cell)"; \
	  ACV_FAST=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=$(CELL_TIMEOUT) "$$nb" \
	  || { echo "make execute: $$nb stopped (the reason is above) and was left as it was"; exit 1; }; \
	done
	$(BIN)/python -m utils.student

## grade: grade submissions without nbgrader: make grade SUBMISSIONS="submitted/*/"
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo 'usage: make grade SUBMISSIONS="submitted/*/" [GRADE_ARGS="--timeout 600"]'; exit 2; }
	$(BIN)/python -m utils.grade $(SUBMISSIONS) $(GRADE_ARGS)

## lock: re-pin requirements-lock.txt from what is installed in .venv
lock: $(STAMP)
	{ sed -n '1,3p' requirements-lock.txt; $(BIN)/python -m pip freeze --all --exclude-editable \
	  | grep -v '^pip==\|^wheel==' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; } > requirements-lock.new
	mv requirements-lock.new requirements-lock.txt

clean:
	rm -rf $(VENV)
