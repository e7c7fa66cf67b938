"""Every example in the README runs as written: Python blocks, and each hybridtrt command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)


def commands() -> list[str]:
    """The README's example commands (install and test commands are run by CI itself)."""
    return [line.strip() for block in blocks("bash") for line in block.splitlines()
            if line.strip().startswith(("hybridtrt ", "python -c "))]


def test_readme_has_the_examples_it_promises() -> None:
    assert len(blocks("python")) >= 2
    assert "hybridtrt demo" in commands()
    assert "python -m pytest -q" in [line.strip() for b in blocks("bash") for line in b.splitlines()]


def test_python_examples_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # later examples use files the earlier ones wrote, as a reader would
    for index, block in enumerate(blocks("python")):
        exec(compile(block, f"README.md python block {index}", "exec"), {})


def test_cli_examples_run_in_order(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands():
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr


def user_install_line() -> str:
    """The install line the README gives users (in the comment of its install block)."""
    found = re.search(r"users: (pip install '[^']+')", "\n".join(blocks("bash")))
    assert found, "the README's install block names no user install line"
    return found.group(1)


@pytest.mark.slow
def test_examples_run_in_a_fresh_venv_with_the_users_install_line(tmp_path: Path) -> None:
    """A new user's path: a fresh venv, the README's user install line, then every example."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    reach = subprocess.run([str(python), "-m", "pip", "index", "versions", "onnxruntime"],
                           capture_output=True, text=True, timeout=60)
    if reach.returncode != 0:
        pytest.skip(f"no package index reachable: {reach.stderr.strip()[-200:]}")
    line = user_install_line()
    done = subprocess.run(["bash", "-c", f"{venv}/bin/{line.replace('pip ', 'pip -q ', 1)}"],
                          cwd=README.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)  # the installed package, not this checkout
    for index, block in enumerate(blocks("python")):
        ran = subprocess.run([str(python), "-c", block], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0, f"README python block {index}\n{ran.stderr[-2000:]}"
    for command in commands():
        ran = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0, f"{command}\n{ran.stderr[-2000:]}"
        assert "Traceback" not in ran.stderr
