#!/usr/bin/env bash
# Install l1jax with its test extras into .venv, lint (ruff check, ruff format --check) and run
# the whole suite.
# Two pytest-xdist workers by default (CI has 2 cores; JAX compiles are mostly single-threaded);
# L1JAX_TEST_WORKERS=0 runs in one process. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh" test
echo "ruff check and ruff format --check"
.venv/bin/python -m ruff check --quiet .
.venv/bin/python -m ruff format --check --quiet .
exec .venv/bin/python -m pytest -n "${L1JAX_TEST_WORKERS:-2}" --dist loadfile "$@"
