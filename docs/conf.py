"""Sphinx configuration of the l1jax documentation site (built by ``./scripts/docs.sh``).

The docstrings are Google style with Sphinx cross-references (``:func:``, ``:class:``), so the
site is Sphinx: autodoc and napoleon read them as written; myst-parser reads the Markdown pages
(the runner guide, the studies' and benchmarks' results).
"""

import os
import sys
import typing

sys.path.insert(0, os.path.abspath(".."))
# jaxtyping's documentation mode (read when it is first imported, so before l1jax and equinox):
# ``Array`` and ``ArrayLike`` are plain names, and the signatures show ``Real[ArrayLike, 'n d']``
# instead of the union that jax.typing.ArrayLike expands to.
typing.GENERATING_DOCUMENTATION = "l1jax"

import l1jax  # noqa: E402

project = "l1jax"
author = "the l1jax developers"
copyright = "2026, the l1jax developers"
release = l1jax.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: autodoc documents NamedTuple fields itself
# Links to other projects resolve offline: no inventories are fetched (the build runs without a
# network); such references render as code.
intersphinx_mapping: dict = {}
suppress_warnings = ["myst.xref_missing"]

html_theme = "furo"
html_title = f"l1jax {release}"
