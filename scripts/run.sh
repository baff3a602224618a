#!/usr/bin/env bash
# Install l1jax into .venv and run the default experiment.
source "$(dirname "$0")/_env.sh" studies
exec .venv/bin/python experiments/robustness.py --config configs/robustness/default.yaml "$@"
