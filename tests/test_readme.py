"""Every example in the README and docs/ runs as written: Python blocks, and each hybridtrt command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)


def commands(page: Path) -> list[str]:
    """A page's example commands (install and test commands are run by CI itself)."""
    return [line.strip() for block in blocks(page, "bash") for line in block.splitlines()
            if line.strip().startswith(("hybridtrt ", "python -c "))]


def name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


WITH_PYTHON = [page for page in PAGES if blocks(page, "python")]
WITH_COMMANDS = [page for page in PAGES if commands(page)]


def test_readme_has_the_examples_it_promises() -> None:
    assert len(blocks(README, "python")) >= 2
    assert "hybridtrt demo" in commands(README)
    assert [c for c in commands(README) if c.startswith("hybridtrt convert ")]
    assert "python -m pytest -q" in [line.strip() for b in blocks(README, "bash") for line in b.splitlines()]
    assert len(README.read_text().splitlines()) <= 250
    assert ROOT / "docs" / "USAGE.md" in WITH_PYTHON and ROOT / "docs" / "CLI.md" in WITH_COMMANDS


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_reach_their_file_and_heading() -> None:
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]*\.md)(?:#([^)]*))?\)", page.read_text()):
            path, anchor = page.parent / target[0], target[1]
            if not path.is_file():
                broken.append(f"{name(page)} -> {target[0]}: no such file")
            elif anchor:
                headings = re.findall(r"^#+ (.*)$", path.read_text(), re.MULTILINE)
                if anchor not in [slug(h) for h in headings]:
                    broken.append(f"{name(page)} -> {target[0]}#{anchor}: no such heading")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", WITH_PYTHON, ids=name)
def test_python_examples_run_in_order(page: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # later examples use files the earlier ones wrote, as a reader would
    for index, block in enumerate(blocks(page, "python")):
        exec(compile(block, f"{name(page)} python block {index}", "exec"), {})


@pytest.mark.parametrize("page", WITH_COMMANDS, ids=name)
def test_cli_examples_run_in_order(page: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands(page):
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{name(page)}: {command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr


def user_install_line() -> str:
    """The install line the README gives users (in the comment of its install block)."""
    found = re.search(r"users: (pip install '[^']+')", "\n".join(blocks(README, "bash")))
    assert found, "the README's install block names no user install line"
    return found.group(1)


def run_page_in(page: Path, work: Path, python: Path, env: dict[str, str]) -> None:
    """Run one page's Python blocks, then its commands, in a folder of its own."""
    work.mkdir()
    for index, block in enumerate(blocks(page, "python")):
        ran = subprocess.run([str(python), "-c", block], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0, f"{name(page)} python block {index}\n{ran.stderr[-2000:]}"
    for command in commands(page):
        ran = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0, f"{name(page)}: {command}\n{ran.stderr[-2000:]}"
        assert "Traceback" not in ran.stderr


@pytest.mark.slow
def test_examples_run_in_a_fresh_venv_with_the_users_install_line(tmp_path: Path) -> None:
    """A new user's path: a fresh venv, the README's user install line, then every page's examples."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    reach = subprocess.run([str(python), "-m", "pip", "index", "versions", "onnxruntime"],
                           capture_output=True, text=True, timeout=60)
    if reach.returncode != 0:
        pytest.skip(f"no package index reachable: {reach.stderr.strip()[-200:]}")
    line = user_install_line()
    done = subprocess.run(["bash", "-c", f"{venv}/bin/{line.replace('pip ', 'pip -q ', 1)}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)  # the installed package, not this checkout
    pages = [page for page in PAGES if page in WITH_PYTHON or page in WITH_COMMANDS]
    assert README in pages and ROOT / "docs" / "USAGE.md" in pages
    for page in pages:
        run_page_in(page, tmp_path / f"work-{page.stem}", python, env)


def regen_samples():
    """``tools/regen_samples.py`` as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("regen_samples", ROOT / "tools" / "regen_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What the sample commands print now."""
    return regen_samples().run_samples(tmp_path_factory.mktemp("samples"))


def test_every_sample_output_in_the_docs_is_what_the_commands_print_now(
    samples: dict[str, str],
) -> None:
    tool = regen_samples()
    shown = {name for page in PAGES for name in tool.marked_blocks(page.read_text())}
    assert shown == set(tool.SAMPLES) and "compare" in shown  # each sample shown, none unknown
    assert tool.stale(PAGES, samples) == [], "run python tools/regen_samples.py"


def test_the_sample_check_notices_a_stale_block_but_not_new_timings(
    samples: dict[str, str], tmp_path: Path,
) -> None:
    tool = regen_samples()
    page = tmp_path / "page.md"
    retimed = {n: re.sub(r"\d+\.\d{3}", lambda m: f"{float(m.group()) * 3:.3f}", text)
               for n, text in samples.items()}
    for name in samples:
        page.write_text(tool.rewrite(f"<!-- sample:{name} -->\n```\nold\n```\n"
                                     f"<!-- /sample:{name} -->\n", retimed))
        assert tool.stale([page], samples) == []
    compare = samples["compare"]
    without_a_row = re.sub(r"^ort_segment_1 .*\n", "", compare, flags=re.M)
    for stale in (compare.replace("max rel", "max relative"), without_a_row,
                  compare.replace("PASSED", "FAILED"), compare.split("\n\n")[0] + "\n"):
        page.write_text(f"<!-- sample:compare -->\n```\n{stale}```\n<!-- /sample:compare -->\n")
        assert tool.stale([page], samples) == ["page.md: compare"]
