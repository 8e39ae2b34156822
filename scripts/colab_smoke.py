"""Runs a notebook the way Colab would, for scripts/package.sh.

    python scripts/colab_smoke.py NOTEBOOK.ipynb KVISION.whl WORK_DIR

Runs with the Python of an environment that has Keras, a backend and a
Jupyter kernel but no kvision. In ``WORK_DIR`` (outside the source tree,
like Colab's ``/content``) it puts the wheel, as a user would upload it, and
a stub ``google.colab`` that a ``sitecustomize`` imports when the kernel
starts, as Colab's kernel does. The notebook's install cell then sees
"Colab" and installs kvision from the wheel; the notebook runs in smoke mode
on offline data, and a last cell checks that kvision came from the
environment's site-packages, not from the source tree.
"""

import json
import os
import pathlib
import shutil
import sys
import time

import nbclient
import nbformat

CHECK = """\
import json, pathlib, sys, kvision
print(json.dumps({"kvision": kvision.__file__, "prefix": sys.prefix,
                  "colab": "google.colab" in sys.modules}))
"""


def main(notebook_path, wheel, work):
    work = pathlib.Path(work)
    stub = work / "colab_stub"
    (stub / "google" / "colab").mkdir(parents=True)
    (stub / "google" / "colab" / "__init__.py").write_text(
        '"""A stand-in for Colab\'s module: only its presence matters."""\n'
    )
    # JAX imports google.colab.output when it sees Colab.
    (stub / "google" / "colab" / "output.py").write_text(
        '"""A stand-in for Colab\'s output module."""\n'
    )
    (stub / "sitecustomize.py").write_text("import google.colab  # noqa\n")
    content = work / "content"
    content.mkdir()
    shutil.copy(wheel, content)
    out = content / "outputs"

    os.environ.update(
        PYTHONPATH=str(stub),
        KVISION_SMOKE="1",
        KVISION_DATASET="digits",
        KVISION_OUTPUT_DIR=str(out),
        # The kernel must be this environment's Python.
        JUPYTER_PREFER_ENV_PATH="1",
    )
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CHECK))
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=900,
        resources={"metadata": {"path": str(content)}},
    )
    try:
        client.execute()
    finally:
        nbformat.write(notebook, work / "executed.ipynb")
    print(f"   notebook ran in {time.perf_counter() - start:.0f} s")

    found = json.loads(notebook.cells[-1].outputs[0].text)
    origin = pathlib.Path(found["kvision"]).resolve()
    prefix = pathlib.Path(sys.prefix).resolve()
    assert found["colab"], "the stub google.colab was not imported"
    assert prefix in origin.parents, f"kvision imported from {origin}"
    assert "site-packages" in origin.parts, f"kvision imported from {origin}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["smoke"] is True, metrics
    print(f"   kvision imported from {origin.parent}")


if __name__ == "__main__":
    main(*sys.argv[1:])
