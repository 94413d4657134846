"""Sphinx configuration of the reading edition (built by book/build_book.py)."""

import importlib.util
from pathlib import Path

# MathJax 3 served from the site: the files come with the sphinx-mathjax-offline package
# (used as an asset source only; its extension hook is not parallel-safe).
_mathjax = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax is None or _mathjax.origin is None:
    raise ImportError("the reading edition needs sphinx-mathjax-offline (pip install -e '.[test]')")
MATHJAX_STATIC = Path(_mathjax.origin).parent / "static"

project = "Attention in Computer Vision"
author = "the course authors"
copyright = "the course authors, MIT licence"

extensions = ["myst_nb"]
mathjax_path = "mathjax/tex-chtml.js"

# Render the committed outputs; never execute.
nb_execution_mode = "off"
nb_render_markdown_format = "myst"          # markdown printed by cells may hold $math$
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

html_theme = "sphinx_book_theme"
html_title = "Attention in Computer Vision"
html_static_path = ["_static", str(MATHJAX_STATIC)]
html_css_files = ["course.css"]
html_js_files = ["course.js"]
html_context = {"default_mode": "light"}
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navbar_persistent": [],            # the search box sits in the sidebar only
}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
