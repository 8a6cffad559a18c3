# SPDX-License-Identifier: LGPL-2.1-or-later
"""Sphinx configuration: the helper reference, generated from the docstrings
as drgn's own documentation is.  Built in CI with warnings as errors:
``sphinx-build -W -b html docs DEST``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "luo-drgn"
copyright = "luo-drgn developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# No network here or in CI: references to drgn's API stay plain text.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
html_theme = "alabaster"
exclude_patterns = ["_build"]
