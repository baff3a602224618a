#!/usr/bin/env bash
# Install l1jax with its test extras into .venv and run the whole suite.
source "$(dirname "$0")/_env.sh" test
exec .venv/bin/python -m pytest "$@"
