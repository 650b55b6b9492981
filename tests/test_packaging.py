"""The distribution: every package declared, the license it claims, type markers, and a non-editable install
that finds the shipped MNIST from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest
from cli_helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_in_the_tree_is_declared():
    declared = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {str(p.parent.relative_to(REPO)).replace(os.sep, ".") for p in REPO.glob("*/**/__init__.py")
             if not {".venv", "tests", "build"} & set(p.parts)}
    assert found == declared - {"mnist_data"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"]["mnist_data"] == "data/mnist"
    for top in {name.split(".")[0] for name in found}:
        assert (REPO / top / "py.typed").is_file(), top


def test_the_license_is_the_one_declared():
    assert PYPROJECT["project"]["license"] == "Apache-2.0 AND CC-BY-SA-3.0"
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    assert "Attribution-Share Alike 3.0" in (REPO / "data" / "mnist" / "README.md").read_text()


def test_optional_data_source_is_an_extra():
    assert not any(d.startswith("tensorflow-datasets") for d in PYPROJECT["project"]["dependencies"])
    assert any(d.startswith("tensorflow-datasets") for d in PYPROJECT["project"]["optional-dependencies"]["tfds"])


@pytest.mark.slow
def test_a_non_editable_install_runs_from_another_folder(tmp_path):
    """The built wheel (pip install --no-deps --target: the frameworks come from this environment) run from an
    unrelated folder: the code and the shipped MNIST come from the install, not from this checkout."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(REPO)],
                   check=True, cwd=tmp_path, timeout=600)
    assert (target / "mnist_data" / "SHA256SUMS").is_file() and (target / "benchmarks" / "py.typed").is_file()
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DATA_DIR"} | {"PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--framework", "jax", "--model", "cnn", "--preset",
                           "smoke", "--epochs", "1", "--quiet", "--out", str(tmp_path / "D")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"data idx ({target / 'mnist_data'})" in proc.stderr  # the installed copy, not the checkout's
    assert (tmp_path / "D" / "results.json").is_file()
