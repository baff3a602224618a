#!/usr/bin/env bash
# Build the documentation site into site/ (ignored by git) with warnings as errors: a docstring
# Sphinx cannot parse, a page missing from the table of contents or a broken cross-reference
# fails the build. Installs l1jax with the docs extra into .venv first. Open site/index.html.
source "$(dirname "$0")/_env.sh" docs
exec .venv/bin/python -m sphinx -E -W --keep-going -q -b html docs site "$@"
