# Two commands for a newcomer: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast install bench airflow airflow-celery clean mutants

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv

# Reinstall whenever the project's dependencies change.
# The editable install leaves akool_flows.egg-info in the checkout; with the checkout on
# sys.path (python -m ...) entry points would then register twice (Airflow: "Plugin 'akool'
# already registered"). The installed metadata lives in site-packages, so drop the copy.
$(STAMP): pyproject.toml | $(PY)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -e '.[test]'
	rm -rf akool_flows.egg-info
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/akool-flows demo

test: $(STAMP)
	bash scripts/ensure-chromium.sh || true
	bash scripts/services.sh ensure || true  # postgres + redis for the distributed-Airflow tests
	$(PY) -m pytest $(PYTEST_ARGS)

# The same suite without the slow real-component tests (Airflow CLI, browser).
test-fast: $(STAMP)
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

# Mutation testing of the money code (long: not part of `make test`); tests/README.md has the score.
MUTANTS_ARGS ?= --jobs 2
mutants: $(STAMP)
	$(PY) scripts/mutants.py $(MUTANTS_ARGS)

# Local Airflow 3 + the Akool sandbox + example DAGs: http://127.0.0.1:8080 (Ctrl-C stops it).
airflow: $(STAMP)
	bash scripts/airflow-dev.sh

# The distributed setup: Postgres + Redis (installed with apt if missing), API server, scheduler,
# triggerer, two Celery workers, DAG processor and the sandbox. See dags/README.md.
airflow-celery: $(STAMP)
	bash scripts/airflow-celery.sh

# Benchmarks print their figures; bench/README.md records them with the commands.
bench: $(STAMP)
	$(PY) bench/bench_transport.py
	$(PY) bench/bench_sandbox.py
	$(PY) bench/bench_batch.py

clean:
	rm -rf $(VENV) results .pytest_cache
