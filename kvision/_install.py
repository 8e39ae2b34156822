"""Where kvision is installed from: the one place that says so.

The notebooks' install cells and Colab links, the README and the docs quote
what this module returns. ``tests/test_install_source.py`` fails when one of
them disagrees, and ``python scripts/install_source.py`` rewrites them all
after a change here, so moving to a real repository is a one-line edit of
:data:`REPOSITORY` (or :data:`SOURCE`) followed by that command.

Nothing here may name an account, organisation or domain the project does
not control: whoever registered it would run code in every reader's session.
"""

import re
import textwrap

# The pip requirement of the package, without extras: the PyPI name, or a
# direct reference such as "kvision @ git+https://github.com/OWNER/kvision".
SOURCE = "kvision"

# The public repository (e.g. "https://github.com/OWNER/kvision"), or None
# while the project has none. It gives each notebook its "Open in Colab"
# badge (GitHub repositories only) and the docs their source links.
REPOSITORY = None

# The branch that Colab links open.
BRANCH = "main"

COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

_GITHUB = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


def requirement(extras=()):
    """The pip requirement for kvision with ``extras``.

    >>> requirement(["jax"])
    'kvision[jax]'
    """
    name, separator, reference = SOURCE.partition(" @ ")
    extras = ",".join(extras)
    name = f"{name.strip()}[{extras}]" if extras else name.strip()
    return f"{name} @ {reference.strip()}" if separator else name


def colab_url(notebook):
    """The Colab address of ``notebooks/<notebook>.ipynb``, or ``None``.

    Colab opens notebooks straight from public GitHub repositories only, so
    without a GitHub :data:`REPOSITORY` there is no address to link to.

    >>> colab_url("01_vit_small_datasets") is None or "colab" in colab_url("x")
    True
    """
    match = _GITHUB.match(REPOSITORY or "")
    if match is None:
        return None
    owner, name = match.groups()
    return (
        f"https://colab.research.google.com/github/{owner}/{name}/blob/"
        f"{BRANCH}/notebooks/{notebook}.ipynb"
    )


def colab_markdown(notebook):
    """The header lines a notebook shows about running it on Colab."""
    url = colab_url(notebook)
    if url is not None:
        # Reference-style, so that no line of the .py source is too long.
        return (
            "[![Open In Colab][badge]][colab]\n\n"
            f"[badge]: {COLAB_BADGE_IMAGE}\n[colab]: {url}"
        )
    return textwrap.fill(
        "**On Colab:** download this notebook's `.ipynb` and open it with "
        "Colab's *File, Upload notebook* (there is no public repository to "
        "link an *Open in Colab* badge to yet). It asks Colab for a GPU; if "
        "it opens on a CPU, choose one in *Runtime, Change runtime type*.",
        width=74,
    )


def install_cell():
    """The source of every notebook's install cell.

    On Colab it installs, in order of preference, a ``kvision-*.whl``
    uploaded into the session's working folder (what to do while kvision is
    not published) or :func:`requirement` with the ``examples`` extra;
    Keras and all three backends are already there. Elsewhere it does
    nothing. It stays plain Python: kvision is not importable before it runs.
    """
    return f'''\
import glob
import subprocess
import sys

# Where kvision comes from on Colab (kept in sync by a test; see
# kvision/_install.py). A kvision-*.whl uploaded to the session wins.
KVISION_REQUIREMENT = "{requirement(["examples"])}"
if "google.colab" in sys.modules:
    wheels = sorted(glob.glob("kvision-*.whl"))
    target = f"{{wheels[-1]}}[examples]" if wheels else KVISION_REQUIREMENT
    pip = [sys.executable, "-m", "pip", "install", "-q", target]
    if subprocess.run(pip).returncode != 0:
        raise RuntimeError(
            f"Could not install {{target}}. If kvision is not published "
            "yet, build a wheel (python -m build) and upload it here."
        )'''
