"""Training and the command line work without matplotlib: only drawing a
figure needs it."""

import os
import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent(
    """
    import sys

    class NoMatplotlib:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "matplotlib":
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, NoMatplotlib())
    """
)


def run(code, tmp_path):
    env = dict(os.environ, KERAS_HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_training_and_viz_import_without_matplotlib(tmp_path):
    result = run(
        """
        import kvision.training, kvision.viz, kvision.train
        from kvision.training import fit_model
        assert "matplotlib" not in sys.modules
        try:
            kvision.viz.plot_history({"loss": [1.0]})
        except ImportError as error:
            assert "pip install matplotlib" in str(error)
        else:
            raise AssertionError("a figure without matplotlib")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_command_line_help_without_matplotlib(tmp_path):
    result = run(
        """
        import runpy
        sys.argv = ["python -m kvision.train", "--help"]
        try:
            runpy.run_module("kvision.train", run_name="__main__")
        except SystemExit as exit:
            assert exit.code == 0
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--dataset" in result.stdout
