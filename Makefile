# Set-up and checks. `make demo` and `make test` each create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rhocore-installed
PLUGINS := plugins/pyscf_adapter plugins/targets plugins/aims
# test files run side by side in this many processes (a file's fixtures stay in one)
TEST_WORKERS ?= 2

.PHONY: install demo test lint docs benchmarks-report clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]' $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rhocore demo water-homo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[docs]'
	$(BIN)/sphinx-build -b html docs docs/_build/html

# the docs' benchmark tables (docs/generated/*.rst) from benchmarks/results/*.json
benchmarks-report: $(STAMP)
	$(BIN)/python -m benchmarks.report

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs docs/_build
