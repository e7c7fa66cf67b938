"""What pyproject.toml promises: one ONNX Runtime per extra, one CUDA major per GPU stack, and a
clear line (not a traceback) when an extra is missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _names(requirements: list[str]) -> list[str]:
    return [re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements]


def test_build_and_metadata() -> None:
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"][0]  # the SPDX license string
    assert "Programming Language :: Python :: 3.10" in PYPROJECT["project"]["classifiers"]


def test_each_extra_brings_at_most_one_onnx_runtime_and_one_cuda_major() -> None:
    assert not {"onnxruntime", "onnxruntime-gpu"} & set(_names(EXTRAS["test"]))
    assert "onnxruntime" in _names(EXTRAS["cpu"]) and "rapidocr-onnxruntime" in _names(EXTRAS["cpu"])
    for major in ("12", "13"):
        stack = EXTRAS[f"gpu-cu{major}"]
        assert sorted(_names(stack)) == sorted(["onnxruntime-gpu", f"tensorrt-cu{major}",
                                                "cuda-python", f"cupy-cuda{major}x"])
        cuda_python = next(r for r in stack if r.startswith("cuda-python"))
        assert f"<{int(major) + 1}" in cuda_python  # one major of cuda-python too
    assert "cuda-python>=12.6.2" in " ".join(EXTRAS["gpu-cu12"])  # has cuda.bindings
    assert _names(EXTRAS["rtx"]) == ["tensorrt-rtx-cu13"]


def test_ci_installs_the_tensorrt_rtx_its_tests_were_written_against() -> None:
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "pip install -q 'tensorrt-rtx-cu13==1.7.1.116'" in ci


_WITHOUT_ORT = """
import sys
class _Gone:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Gone())
from hybridtrt.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_onnx_runtime_the_demo_says_which_extra_to_install(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_ORT, "demo", "--model", "squeezenet"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip() == ("hybridtrt demo: error: ONNX Runtime is not installed: pip "
                                   "install 'hybridtrt[cpu]' (or, on a GPU host, "
                                   "'hybridtrt[gpu-cu12]' or 'hybridtrt[gpu-cu13]')")
    assert not list(tmp_path.glob("hybridtrt-demo-*"))


def test_the_demo_removes_its_temporary_folder(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hybridtrt", "demo", "--model", "squeezenet", "-q"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "removed now (--output-dir DIR keeps it)" in done.stdout
    assert not list(tmp_path.glob("hybridtrt-demo-*"))


PACKAGE = Path(__file__).resolve().parents[1] / "hybridtrt"


def _data_files() -> set[str]:
    """The files of the package that are not Python, as ``package.name/file``."""
    return {f"{'.'.join(p.parent.relative_to(PACKAGE.parent).parts)}/{p.name}"
            for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.suffix not in (".py", ".pyc")}


def test_every_file_the_package_reads_is_declared_as_package_data() -> None:
    declared = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert {f"{package}/{name}" for package, names in declared.items() for name in names} \
        == _data_files() >= {"hybridtrt.tools.picture/viewer.js"}


def test_the_html_picture_embeds_the_shipped_viewer_script_and_style() -> None:
    from importlib import resources

    from hybridtrt.tools.picture import render_html, view_of_model
    from tests.models import split_chain

    page = render_html(view_of_model(split_chain()))
    shipped = resources.files("hybridtrt.tools.picture")
    script, style = (shipped.joinpath(n).read_text(encoding="utf-8")
                     for n in ("viewer.js", "viewer.css"))
    assert "document.getElementById('engine-count')" in script and "#viewport" in style
    assert f"<script>\n{script}</script>" in page and f"<style>\n{style}</style>" in page


@pytest.mark.slow
def test_the_wheel_ships_the_picture_viewer(tmp_path: Path) -> None:
    """Build the wheel from a copy of the sources (setuptools from the index, as pip does)."""
    import shutil
    import zipfile

    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source / "hybridtrt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PACKAGE.parent / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "etuptools" in built.stderr and "No matching" in built.stderr:
        pytest.skip(f"setuptools>=77 is not reachable: {built.stderr.strip()[-200:]}")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("hybridtrt-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        script = archive.read("hybridtrt/tools/picture/viewer.js").decode("utf-8")
    assert {f"{p.split('/')[0].replace('.', '/')}/{p.split('/')[1]}" for p in _data_files()} <= names
    assert script == (PACKAGE / "tools" / "picture" / "viewer.js").read_text(encoding="utf-8")
