#!/usr/bin/env bash
# The accelerator check: on a machine with a GPU, set l1jax up without a package registry and run,
# inside a time budget (default 480 s), the GPU test subset, the loss / solver / SR-step
# benchmarks at GPU sizes, the whole SR study (configs/super_resolution/study.yaml; it checkpoints,
# so a second call continues it) and, if time is left, the full phase transition. Everything goes
# into one folder (default runs/accelerator_check/): each part's log, the benchmarks' JSON, the
# studies' run directories, summary.json and summary.md. A part whose estimate does not fit in
# the time left is skipped with a line saying so.
#
#   scripts/accelerator_check.sh [--budget SECONDS] [--out DIR] [--archive FILE.tar.gz] [--only a,b]
#   scripts/accelerator_check.sh --dry-run      # the same parts on the CPU at toy sizes (< 3 min)
#
# On a GPU machine with no registry. The machine needs Python >= 3.11 with jax (with CUDA),
# optax, equinox, numpy, scipy, pandas, matplotlib, tqdm, pyyaml, pillow, scikit-image,
# scikit-learn, statsmodels and pytest; what l1jax needs beyond those is omegaconf and its
# dependency antlr4-python3-runtime. Download their wheels where pip works, into .whl/ in the
# repository's root (ignored by git), for the GPU machine's Python (3.12 here):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl \
#       omegaconf==2.3.0 antlr4-python3-runtime==4.9.3
#
# (antlr4-python3-runtime 4.9.3 is a source distribution: build its wheel with
# `python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3`). Copy the repository
# with .whl/ to the GPU machine and run this script there; it installs the wheels and then l1jax
# itself with `pip install --no-deps --no-index` into a folder of its own (/tmp/l1jax-site, put
# on PYTHONPATH), touching nothing else. With --dry-run nothing is installed: it runs in the
# current environment (.venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ $dry = 1 ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
if [ $dry = 0 ]; then
  SITE=${L1JAX_SITE:-/tmp/l1jax-site}
  if ! "$PY" -c "import omegaconf" 2>/dev/null; then
    ls .whl/*.whl >/dev/null 2>&1 || { echo "error: omegaconf is missing and .whl/ holds no wheels (see this script's header)" >&2; exit 2; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target "$SITE" .
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "$PY" scripts/accelerator_check.py "$@"
