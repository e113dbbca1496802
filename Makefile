# Two commands on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test lint typecheck docs pytest bench clean lock java-check

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall only when the project metadata or the lock changes. Every dependency comes from
# requirements.lock, pinned and hashed, installed by uv (the same pins as pip, in about a
# third of pip's 3 min from a cold cache). --compile-bytecode because uv skips it by default
# and the bytecode is then never cached where PYTHONDONTWRITEBYTECODE is set (as on CI):
# every test process recompiled numpy, pandas and sklearn, which cost 3 min of `make test`.
# upshot itself is installed on top without resolving.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve the newest versions that pyproject.toml allows into requirements.lock (needs
# the package index); then run `make test` and raise pyproject's floors to what it pins.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra ray --extra spark --generate-hashes \
		--python-version 3.11.7 --python-platform x86_64-manylinux_2_28 -o requirements.lock

demo: $(STAMP)
	$(BIN)/upshot demo
	@echo "upshot is installed in $(BIN); to put it on PATH: source $(BIN)/activate"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# the pages in docs/, built strictly: a broken link or a page missing from the nav fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# the Spark engine's tests (tests/engines) start a JVM: Java 17 or later must be installed
java-check:
	@java -version >/dev/null 2>&1 || { \
		echo "java not found: the Spark engine tests need Java 17+."; \
		echo "Install it with: sudo apt-get install openjdk-17-jre-headless"; \
		echo "(or set JAVA_HOME to a JDK 17+; see docs/engines.md)"; exit 1; }
	@java -version 2>&1 | head -1

# two workers: the suite is mostly DuckDB and numpy, which release the GIL. One test at a
# time, long ones first, and the Spark tests as one group on one JVM (tests/conftest.py)
# compileall: upshot's own bytecode, written once here, since with PYTHONDONTWRITEBYTECODE
# each of the suite's subprocesses (CLI runs, --jobs workers, Ray and Spark workers) would
# compile the package again. The type check (43 s of one core from a cold cache) runs beside
# the suite, whose two workers leave a core idle while they wait on JVMs, Ray and
# subprocesses; its output is printed after the tests and either failure fails the target.
test: lint docs java-check
	$(BIN)/python -m compileall -q -j 0 upshot
	@$(BIN)/mypy > $(VENV)/mypy.out 2>&1 & types=$$!; \
	echo "$(BIN)/mypy (beside the tests)"; \
	echo "$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)"; \
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS); tests=$$?; \
	wait $$types; typed=$$?; cat $(VENV)/mypy.out; \
	test $$tests -eq 0 && test $$typed -eq 0

# each benchmark times upshot and its baseline in the same run and prints the ratio
bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) upshot.duckdb upshot.duckdb.wal demo_out reports weights site
