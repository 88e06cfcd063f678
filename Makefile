VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

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

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
