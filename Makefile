# fel: `make lab` to learn, `make test` to check. Both bootstrap .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.fel-installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test data notebooks lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[dev]"
	@touch $(STAMP)

## data: render the offline SynthFaces set into data/synthfaces (a no-op when it is complete)
data: $(STAMP)
	$(PY) -m fel data synth --out data/synthfaces

## lab: open JupyterLab on the notebooks (127.0.0.1, token auth)
lab: data
	$(PY) -m jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ROOT_FLAG)

## test: unit tests, then every notebook top to bottom (nbval)
test: data
	@$(PY) -m pytest tests notebooks $(NBVAL); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a broken checkout, not a pass" >&2; fi; \
	exit $$rc

## notebooks: sync each notebooks/NN_name.py into its .ipynb and execute it in place
notebooks: data
	$(PY) -m jupytext --sync notebooks/[0-9]*.py
	$(PY) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 notebooks/[0-9]*.ipynb

lint: $(STAMP)
	$(PY) -m ruff check fel tests notebooks
	$(PY) -m ruff format --check fel tests notebooks

format: $(STAMP)
	$(PY) -m ruff format fel tests notebooks
	$(PY) -m ruff check --fix fel tests notebooks

bench: data
	$(PY) -m fel bench data --root data/synthfaces

clean:
	rm -rf .pytest_cache .ruff_cache runs data/synthfaces/.fel_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
