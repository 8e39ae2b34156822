"""MkDocs hook: the tutorial notebooks, one page each, with their outputs.

Every ``notebooks/NN_topic.py`` (the jupytext source) becomes the page
``tutorials/NN_topic/``, listed under "Tutorials" in the nav in ``NN``
order. The page is rendered by mkdocs-jupyter from, in order of preference:

1. ``$KVISION_DOCS_NOTEBOOKS/NN_topic.ipynb`` (default
   ``build/docs-notebooks/``): the notebook executed by ``scripts/docs.sh``,
   with its outputs and figures;
2. ``notebooks/NN_topic.ipynb``, the committed paired notebook (normally
   without outputs), so that a plain ``mkdocs serve`` still works while
   writing prose.

Executed notebooks are build products: they are never written into
``docs/`` or ``notebooks/``.
"""

import logging
import os
import pathlib
import re

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.tutorials")

NOTEBOOK_NAME = re.compile(r"^(\d\d)_([a-z0-9_]+)\.py$")
SECTION = "Tutorials"

_tutorials = []  # (src_uri, abs_src_path, title), filled by on_config


def _root(config):
    return pathlib.Path(config.config_file_path).resolve().parent


def executed_dir(config):
    """Where ``scripts/docs.sh`` writes the executed notebooks."""
    path = pathlib.Path(
        os.environ.get("KVISION_DOCS_NOTEBOOKS", "build/docs-notebooks")
    )
    return path if path.is_absolute() else _root(config) / path


def _title(source):
    """Short nav label: the notebook's first ``# `` heading up to a colon."""
    for line in source.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#\s+#\s+(.+)$", line)
        if match:
            return match.group(1).split(":")[0].strip()
    return NOTEBOOK_NAME.match(source.name).group(2).replace("_", " ")


def find_tutorials(config):
    """``(src_uri, notebook path, title)`` for every notebook source."""
    found = []
    executed = executed_dir(config)
    for source in sorted((_root(config) / "notebooks").glob("*.py")):
        if not NOTEBOOK_NAME.match(source.name):
            continue
        stem = source.stem
        candidates = [executed / f"{stem}.ipynb", source.with_suffix(".ipynb")]
        notebook = next((c for c in candidates if c.is_file()), None)
        if notebook is None:
            log.info("No .ipynb for %s yet: not in the site", source.name)
            continue
        if notebook != candidates[0]:
            log.info(
                "%s: no executed notebook in %s, rendering %s without "
                "outputs (run scripts/docs.sh)",
                stem,
                executed,
                notebook,
            )
        found.append((f"tutorials/{stem}.ipynb", notebook, _title(source)))
    return found


def on_config(config):
    _tutorials[:] = find_tutorials(config)
    for item in config.nav or []:
        if isinstance(item, dict) and SECTION in item:
            entries = item[SECTION]
            listed = {
                next(iter(e.values())) if isinstance(e, dict) else e
                for e in entries
            }
            entries.extend(
                {title: uri}
                for uri, _, title in _tutorials
                if uri not in listed
            )
    return config


class NotebookPage(File):
    """A notebook outside ``docs/``, published as a documentation page.

    mkdocs-jupyter's own wrapper loses the source path of generated files,
    so this hook adds its notebooks after that plugin's ``on_files`` and
    marks them as pages itself; the plugin still renders them (it picks
    pages by their source path).
    """

    def is_documentation_page(self):
        return True


@event_priority(-50)
def on_files(files, config):
    for uri, notebook, _ in _tutorials:
        page = NotebookPage.generated(config, uri, abs_src_path=str(notebook))
        files.append(page)
    return files


def on_page_markdown(markdown, page, config, files):
    """Lists the tutorials on ``tutorials/index.md`` (the marker line)."""
    marker = "<!-- kvision:tutorial-list -->"
    if marker not in markdown:
        return markdown
    lines = [
        f"- [{title}]({pathlib.PurePosixPath(uri).name})"
        for uri, _, title in _tutorials
    ] or ["*No tutorial notebooks are in the repository yet.*"]
    return markdown.replace(marker, "\n".join(lines))
