# Sourced by run.sh and test.sh: make .venv if missing and install l1jax with the given extras.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
# torch's CPU wheel ships on some machines in /opt/wheels; pip prefers it to a CUDA build there.
FIND_LINKS=()
[ -d /opt/wheels ] && FIND_LINKS=(--find-links /opt/wheels)
echo "Installing l1jax[$1] into .venv (log: .venv/install.log)"
if ! { .venv/bin/python -m pip install -q --upgrade pip \
       && .venv/bin/python -m pip install -q "${FIND_LINKS[@]}" -e ".[$1]"; } >.venv/install.log 2>&1; then
  cat .venv/install.log
  echo "pip install failed; the log is above and in .venv/install.log" >&2
  exit 1
fi
