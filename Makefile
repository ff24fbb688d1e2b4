# Entry points; those using .venv build it first if it is missing or out of date:
#   make demo   run the main job on sample_tiles/ and write results/sample/
#   make lint   ruff over the code (pyproject's [tool.ruff]); CI runs it before make test
#   make test   run the test suite
#   make env    only build .venv; make wheel: dist/farmcredit-*.whl; make clean: results and build outputs
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo lint test env wheel clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/farmcredit assess sample_tiles/parcels.geojson --imagery sample_tiles/imagery --out results/sample
	$(VENV)/bin/python scripts/evaluate_sample.py results/sample/results.parquet sample_tiles/truth.csv

lint: $(STAMP)
	$(VENV)/bin/ruff check farmcredit tests scripts benchmarks

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# setuptools copies the package into build/lib/ and reuses it: a module deleted since the last build would ship.
wheel:
	rm -rf build
	$(PYTHON) -m pip wheel --no-deps -w dist .

clean:
	rm -rf results .pytest_cache build dist *.egg-info
