"""Every notebook and doc agrees with ``kvision/_install.py`` on where
kvision installs from, and nothing names a namespace the project does not
control. The fix for any failure here: ``python scripts/install_source.py``.
"""

import importlib.util
import pathlib

import pytest

from kvision import _install

# Files and text only: the same on every backend, so it runs on one.
pytestmark = pytest.mark.one_backend("torch")

REPO = pathlib.Path(__file__).resolve().parents[1]
FIX = "run: python scripts/install_source.py"
_spec = importlib.util.spec_from_file_location(
    "install_source", REPO / "scripts" / "install_source.py"
)
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

SKIPPED_DIRS = {
    ".git",
    ".venv",
    ".cache",
    ".ruff_cache",
    "build",
    "dist",
    "site",
    "outputs",
    "__pycache__",
}
TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".ipynb",
    ".toml",
    ".yml",
    ".yaml",
    ".txt",
    ".cfg",
    ".sh",
    ".cff",
    ".in",
}


def project_files():
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO)
        if any(
            part in SKIPPED_DIRS or part.endswith(".egg-info")
            for part in relative.parts
        ):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            yield path


@pytest.mark.parametrize("source", sync.NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_installs_from_the_canonical_place(source):
    problems = sync.notebook_problems(source)
    assert not problems, f"{source.name}: {', '.join(problems)} differ; {FIX}"


def test_docs_and_project_files_agree():
    stale = [
        str(path.relative_to(REPO))
        for path, fix in [
            *[(p, sync.fixed_text) for p in sync.TEXTS if p.exists()],
            (REPO / "pyproject.toml", sync.fixed_pyproject),
            (REPO / "mkdocs.yml", sync.fixed_mkdocs),
        ]
        if fix(path.read_text(encoding="utf-8"))
        != path.read_text(encoding="utf-8")
    ]
    assert not stale, f"{stale} differ from kvision/_install.py; {FIX}"


def test_readme_and_docs_show_how_to_install():
    for path in (REPO / "README.md", REPO / "docs" / "getting-started.md"):
        assert sync.PIP.search(path.read_text()), path


def test_no_file_names_a_namespace_the_project_does_not_control():
    found = [
        f"{path.relative_to(REPO)}: {placeholder}"
        for path in project_files()
        for placeholder in sync.PLACEHOLDERS
        if placeholder in path.read_text(encoding="utf-8", errors="ignore")
    ]
    assert not found, found


def test_repository_urls_are_only_the_real_repository():
    urls = sync.project_urls((REPO / "pyproject.toml").read_text())
    wanted = sync.wanted_repository_urls()
    assert {k: urls.get(k) for k in sync.REPOSITORY_URLS} == {
        k: wanted.get(k) for k in sync.REPOSITORY_URLS
    }, FIX
    for url in urls.values():
        assert "github.com" not in url or _install.REPOSITORY, url


def test_requirement_and_colab_address_follow_the_constants(monkeypatch):
    monkeypatch.setattr(_install, "SOURCE", "kvision")
    monkeypatch.setattr(_install, "REPOSITORY", None)
    assert _install.requirement(["jax", "examples"]) == "kvision[jax,examples]"
    assert _install.colab_url("01_x") is None
    assert "Upload notebook" in _install.colab_markdown("01_x")
    assert not any(
        line.startswith(">")  # a Markdown quote
        for line in _install.colab_markdown("01_x").splitlines()
    )
    # Moving to a repository is one line: these follow from it.
    monkeypatch.setattr(
        _install, "SOURCE", "kvision @ git+https://github.com/o/kv"
    )
    monkeypatch.setattr(_install, "REPOSITORY", "https://github.com/o/kv")
    assert (
        _install.requirement(["jax"])
        == "kvision[jax] @ git+https://github.com/o/kv"
    )
    assert _install.colab_url("01_x") == (
        "https://colab.research.google.com/github/o/kv/blob/main/"
        "notebooks/01_x.ipynb"
    )
    assert "[![Open In Colab]" in _install.colab_markdown("01_x")
    assert '"kvision[examples] @ git+https' in _install.install_cell()
    assert sync.fixed_text('pip install "kvision[jax]"') == (
        'pip install "kvision[jax] @ git+https://github.com/o/kv"'
    )
    pyproject = sync.fixed_pyproject('[project.urls]\nA = "b"\n')
    assert 'Source = "https://github.com/o/kv"' in pyproject


def test_install_cell_installs_an_uploaded_wheel_on_colab_only(
    tmp_path, monkeypatch
):
    calls = []

    class Done:
        returncode = 0

    def fake_run(command, **kwargs):
        calls.append(command)
        return Done()

    monkeypatch.chdir(tmp_path)
    (tmp_path / "kvision-0.1.0-py3-none-any.whl").write_bytes(b"")
    namespace = {}
    monkeypatch.setattr("subprocess.run", fake_run)
    exec(_install.install_cell(), namespace)
    assert calls == []  # not on Colab: nothing happens
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    exec(_install.install_cell(), namespace)
    assert calls[-1][-1] == "kvision-0.1.0-py3-none-any.whl[examples]"
    (tmp_path / "kvision-0.1.0-py3-none-any.whl").unlink()
    exec(_install.install_cell(), namespace)
    assert calls[-1][-1] == _install.requirement(["examples"])
