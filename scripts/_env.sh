# Sourced by run.sh and test.sh: make .venv if missing and install l1jax with the given extras.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch's CPU wheel ships on the machine; pip finds it here instead of pulling CUDA builds.
FIND_LINKS=()
[ -d /opt/wheels ] && FIND_LINKS=(--find-links /opt/wheels)
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q "${FIND_LINKS[@]}" -e ".[$1]"
