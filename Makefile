VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-lowest install clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[train,test,zeroshot]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/laps demo

# lint and import order (ruff, configured in pyproject.toml), then the whole suite, one test file per
# worker process, as many workers as cores (at most 4)
test: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile

# the quick suite on the lowest versions pyproject.toml allows, in a second venv: every direct dependency
# at its lower bound (uv's lowest-direct resolution), except torch and torchvision, which pip takes as
# `make install` does (on a machine with a local build, from disk rather than a download of a CUDA build);
# --upgrade: what pip installed beside torch (numpy, pillow) goes down to its bound too
LOWEST ?= .venv-lowest
UV ?= $(LOWEST)/bin/uv

$(LOWEST)/.installed: pyproject.toml
	python3 -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet torch torchvision uv
	$(LOWEST)/bin/python -c "from importlib.metadata import version as v; print(*(f'{p}=={v(p)}' for p in ('torch', 'torchvision')))" \
	    | tr ' ' '\n' > $(LOWEST)/torch-constraint.txt
	$(UV) pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct --upgrade \
	    --constraint $(LOWEST)/torch-constraint.txt -e ".[train,test]"
	touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pip list --format freeze
	$(LOWEST)/bin/python -m pytest -m "not slow" -n auto --maxprocesses 4 --dist loadfile

clean:
	rm -rf $(VENV) $(LOWEST) runs build *.egg-info src/*.egg-info
