"""Sphinx configuration of the rhocore documentation."""

project = "rhocore"
author = "the rhocore developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_member_order = "bysource"
html_theme = "alabaster"
# generated/ and benchmark_results.rst are pulled into other pages by ``.. include::``
exclude_patterns = ["_build", "examples", "generated", "benchmark_results.rst"]
