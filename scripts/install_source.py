"""Rewrites every place that says where kvision installs from.

    python scripts/install_source.py          # rewrite
    python scripts/install_source.py --check  # only list what differs

The values come from ``kvision/_install.py`` (the one place to edit); this
brings the rest in line with it:

- each ``notebooks/NN_topic.py``: the Colab lines of its header (a badge, or
  how to upload it) and its install cell, then the paired ``.ipynb``
  (``jupytext --sync``);
- ``pip install "kvision…"`` commands in the README, ``docs/`` and
  ``notebooks/README.md``;
- the repository addresses in ``pyproject.toml``'s ``[project.urls]`` and
  ``repo_url`` in ``mkdocs.yml``.

``tests/test_install_source.py`` runs the same checks.
"""

import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kvision import _install  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
TEXTS = [
    REPO / "README.md",
    REPO / "CONTRIBUTING.md",
    REPO / "notebooks" / "README.md",
    *sorted((REPO / "docs").rglob("*.md")),
]
# pip install "kvision[extras]" or "kvision[extras] @ reference"
PIP = re.compile(r'pip install "kvision(?:\[([\w,-]*)\])?(?: @ [^"]*)?"')
COLAB_PARAGRAPH = re.compile(
    r"^(\[!\[Open In Colab\]|\*\*On Colab:\*\*|\[(badge|colab)\]: )"
)
# Links in the README and docs to a repository that does not exist.
PLACEHOLDERS = ("<this " + "repository>", "github.com/" + "kvision/kvision")
REPOSITORY_URLS = {
    "Source": "{repository}",
    "Issues": "{repository}/issues",
    "Changelog": "{repository}/blob/{branch}/CHANGELOG.md",
}


def is_install_cell(cell):
    return cell.cell_type == "code" and "google.colab" in cell.source


def header_with_colab(source, stem):
    """The header cell's text with its Colab paragraph(s) replaced."""
    paragraphs = source.split("\n\n")
    kept = [p for p in paragraphs if not COLAB_PARAGRAPH.match(p)]
    return "\n\n".join([kept[0], _install.colab_markdown(stem), *kept[1:]])


def notebook_problems(path):
    import jupytext

    notebook = jupytext.read(path)
    problems = []
    header = notebook.cells[0].source
    if " ".join(_install.colab_markdown(path.stem).split()) not in " ".join(
        header.split()
    ):
        problems.append("the header's Colab lines")
    installs = [c for c in notebook.cells if is_install_cell(c)]
    if len(installs) != 1 or installs[0].source != _install.install_cell():
        problems.append("the install cell")
    return problems


def fix_notebook(path):
    import jupytext

    notebook = jupytext.read(path)
    notebook.cells[0].source = header_with_colab(
        notebook.cells[0].source, path.stem
    )
    for cell in notebook.cells:
        if is_install_cell(cell):
            cell.source = _install.install_cell()
    jupytext.write(notebook, path, fmt="py:percent")
    subprocess.run(
        [sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)],
        check=True,
    )


def fixed_text(text):
    def requirement(match):
        extras = [e for e in (match.group(1) or "").split(",") if e]
        return f'pip install "{_install.requirement(extras)}"'

    return PIP.sub(requirement, text)


def project_urls(pyproject_text):
    """``{name: url}`` of ``pyproject.toml``'s ``[project.urls]``."""
    import tomllib

    return tomllib.loads(pyproject_text)["project"].get("urls", {})


def wanted_repository_urls():
    if _install.REPOSITORY is None:
        return {}
    return {
        name: url.format(
            repository=_install.REPOSITORY.rstrip("/"),
            branch=_install.BRANCH,
        )
        for name, url in REPOSITORY_URLS.items()
    }


def fixed_pyproject(text):
    lines = [
        line
        for line in text.split("\n")
        if not re.match(rf"^({'|'.join(REPOSITORY_URLS)}) = ", line)
    ]
    at = lines.index("[project.urls]") + 1
    added = [f'{k} = "{v}"' for k, v in wanted_repository_urls().items()]
    return "\n".join(lines[:at] + added + lines[at:])


def fixed_mkdocs(text):
    text = re.sub(r"^repo_url: .*\n", "", text, flags=re.MULTILINE)
    if _install.REPOSITORY is not None:
        text = text.replace(
            "\nsite_description:",
            f"\nrepo_url: {_install.REPOSITORY}\nsite_description:",
            1,
        )
    return text


def main(check_only):
    stale = []
    for path in NOTEBOOKS:
        problems = notebook_problems(path)
        if problems:
            stale.append(f"{path.relative_to(REPO)}: {', '.join(problems)}")
            if not check_only:
                fix_notebook(path)
    for path, fix in [
        *[(p, fixed_text) for p in TEXTS if p.exists()],
        (REPO / "pyproject.toml", fixed_pyproject),
        (REPO / "mkdocs.yml", fixed_mkdocs),
    ]:
        text = path.read_text(encoding="utf-8")
        if fix(text) != text:
            stale.append(str(path.relative_to(REPO)))
            if not check_only:
                path.write_text(fix(text), encoding="utf-8")
    for line in stale:
        print(("differs: " if check_only else "rewrote: ") + line)
    return 1 if check_only and stale else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
