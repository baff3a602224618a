#!/usr/bin/env bash
# Install l1jax into .venv and run the default experiment: the robustness study.
# With no arguments the run resumes (or just re-reports) runs/robustness/default; any arguments
# replace that, e.g. ./scripts/run.sh --overwrite or ./scripts/run.sh --set smoke=true.
source "$(dirname "$0")/_env.sh" studies
[ $# -eq 0 ] && set -- --resume
exec .venv/bin/python experiments/robustness.py --config configs/robustness/default.yaml "$@"
