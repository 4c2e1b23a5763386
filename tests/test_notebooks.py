"""Colab and Binder: paired notebooks in sync, and the Colab set-up cell, offline.

Nothing here reaches the network: ``subprocess.run`` is replaced by a recorder, and the
clone, the constraints file and the working directory all live under ``tmp_path``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from breastlib.booktools import notebooks as booktools

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = booktools.notebook_chapters(ROOT)


def first_code_cell(ipynb: Path) -> dict:
    notebook = json.loads(ipynb.read_text())
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")


def setup_source() -> str:
    return "".join(first_code_cell(CHAPTERS[0].with_suffix(".ipynb"))["source"])


def test_notebook_chapters_are_the_toc_chapters_with_code():
    names = [path.stem for path in CHAPTERS]
    assert names[0] == "intro" and "method" in names and "reproducibility" in names
    assert "references" not in names  # plain markdown, no kernel: no notebook
    for path in CHAPTERS:
        assert path.parent == ROOT / "book"
    # No leftover notebook of a chapter that is gone or no longer a notebook.
    assert sorted((ROOT / "book").glob("*.ipynb")) == sorted(p.with_suffix(".ipynb")
                                                             for p in CHAPTERS)


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda path: path.stem)
def test_paired_notebook_matches_the_markdown(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run python -m breastlib.booktools sync"
    assert ipynb.read_text() == booktools.notebook_text(md.read_text()), (
        f"{ipynb.name} is out of date: run python -m breastlib.booktools sync")
    notebook = json.loads(ipynb.read_text())
    assert notebook["metadata"]["jupytext"]["formats"] == "ipynb,md:myst"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda path: path.stem)
def test_first_code_cell_is_the_setup_cell_from_config(md):
    cell = first_code_cell(md.with_suffix(".ipynb"))
    source = "".join(cell["source"])
    assert source == booktools.render_setup_cell(ROOT)
    assert source.startswith(booktools.MARKER)
    assert cell["metadata"]["tags"] == ["remove-cell"]
    assert not any(line.lstrip().startswith(("!", "%")) for line in source.splitlines())
    # In the markdown too it is the first code cell, between the front matter and the title.
    text, block = md.read_text(), booktools.setup_block(source)
    assert text.index("```{code-cell}") == text.index(block) == text.index("\n---\n", 4) + 6
    assert text[text.index(block) + len(block):].startswith("\n# ")


def test_setup_cell_names_the_configured_repository_and_branch():
    constants = {}
    for node in ast.walk(ast.parse(setup_source())):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            constants[node.targets[0].id] = node.value.value
    assert constants["REPOSITORY"] == CONFIG["repository"]["url"]
    assert constants["BRANCH"] == CONFIG["repository"]["branch"]


def test_sync_check_passes_on_the_repository():
    assert booktools.sync(ROOT, check=True) == []
    assert booktools.main(["sync", "--check", "--root", str(ROOT)]) == 0


@pytest.fixture
def book_copy(tmp_path):
    """The book's configuration, chapters and notebooks, copied under tmp_path."""
    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    for path in (ROOT / "book").glob("*.md"):
        shutil.copy(path, root / "book" / path.name)
    for path in (ROOT / "book").glob("*.ipynb"):
        shutil.copy(path, root / "book" / path.name)
    return root


def test_check_fails_on_an_edited_chapter_and_sync_repairs_it(book_copy, capsys):
    method = book_copy / "book" / "method.md"
    method.write_text(method.read_text().replace("# The method on one pair",
                                                 "# The method on one pair, edited"))
    before = {path: path.read_bytes() for path in (book_copy / "book").iterdir()}
    assert booktools.main(["sync", "--check", "--root", str(book_copy)]) == 1
    assert "method.ipynb" in capsys.readouterr().out
    assert before == {path: path.read_bytes() for path in (book_copy / "book").iterdir()}
    assert booktools.main(["sync", "--root", str(book_copy)]) == 0
    assert booktools.sync(book_copy, check=True) == []
    assert "# The method on one pair, edited" in "".join(
        json.loads(method.with_suffix(".ipynb").read_text())["cells"][1]["source"])


def test_a_fork_changes_the_config_and_sync_rerenders_every_cell(book_copy):
    config = book_copy / "_config.yml"
    config.write_text(config.read_text()
                      .replace(CONFIG["repository"]["url"], "https://github.com/someone/fork")
                      .replace("branch: main", "branch: colab"))
    stale = booktools.sync(book_copy, check=True)
    assert len(stale) == 2 * len(CHAPTERS)  # every .md and every .ipynb
    booktools.sync(book_copy)
    for md in booktools.notebook_chapters(book_copy):
        text = md.read_text()
        assert text.count(booktools.MARKER) == 1  # replaced in place, not added again
        source = "".join(first_code_cell(md.with_suffix(".ipynb"))["source"])
        assert 'REPOSITORY = "https://github.com/someone/fork"' in source
        assert 'BRANCH = "colab"' in source
    assert booktools.sync(book_copy, check=True) == []


def test_with_setup_cell_inserts_after_front_matter_and_is_idempotent():
    text = "---\njupytext: {}\n---\n\n# Title\n\n```{code-cell} ipython3\nx = 1\n```\n"
    once = booktools.with_setup_cell(text, f"{booktools.MARKER}\nimport sys")
    assert once.startswith(
        "---\njupytext: {}\n---\n\n```{code-cell} ipython3\n:tags: [remove-cell]\n")
    assert once.endswith("\n# Title\n\n```{code-cell} ipython3\nx = 1\n```\n")
    assert booktools.with_setup_cell(once, f"{booktools.MARKER}\nimport sys") == once
    changed = booktools.with_setup_cell(once, f"{booktools.MARKER}\nimport os")
    assert changed == once.replace("import sys", "import os")


# --- the set-up cell itself, executed offline ------------------------------------------

class Recorder:
    """Stands in for ``subprocess.run``: records each command, fakes ``git clone``."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.constraints: list[str] = []

    def __call__(self, command, *args, **kwargs):
        command = [str(part) for part in command]
        self.calls.append(command)
        assert kwargs.get("check") is True
        if command[:2] == ["git", "clone"]:
            (Path(command[-1]) / "book").mkdir(parents=True)
        if "pip" in command:
            constraints = Path(command[command.index("-c") + 1])
            self.constraints = constraints.read_text().splitlines()
        return subprocess.CompletedProcess(command, 0)


def run_cell(source: str) -> None:
    exec(compile(source, "<colab set-up cell>", "exec"), {"__name__": "__main__"})


@pytest.fixture
def recorder(monkeypatch, tmp_path):
    record = Recorder()
    monkeypatch.setattr(subprocess, "run", record)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)  # restored after the test, whatever the cell does
    monkeypatch.setenv(booktools.CLONE_ENV, str(tmp_path / "content" / "breastlib"))
    return record


def test_setup_cell_does_nothing_outside_colab(recorder, monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    path = list(sys.path)
    run_cell(setup_source())
    assert recorder.calls == []
    assert Path.cwd() == tmp_path
    assert sys.path == path
    assert not (tmp_path / "content").exists()


def torch_pin() -> str:
    """The pin the cell must write: the installed torch distribution's exact version.

    pip compares a constraint with the installed distribution's metadata version, which
    can lack the local label of ``torch.__version__`` (PyPI's CUDA wheels: metadata
    ``2.14.1``, ``__version__`` ``2.14.1+cu130``); on Colab, whose torch comes from the
    PyTorch index, the two are equal.
    """
    torch = pytest.importorskip("torch")
    installed = metadata.version("torch")
    assert installed.split("+")[0] == torch.__version__.split("+")[0]
    return f"torch=={installed}"


def test_setup_cell_on_colab_clones_installs_and_moves_into_book(recorder, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    clone = tmp_path / "content" / "breastlib"
    url, branch = CONFIG["repository"]["url"], CONFIG["repository"]["branch"]

    run_cell(setup_source())
    clone_call, pip_call = recorder.calls
    assert clone_call == ["git", "clone", "--depth", "1", "--branch", branch, url, str(clone)]
    assert pip_call[:4] == [sys.executable, "-m", "pip", "install"]
    assert pip_call[pip_call.index("-e") + 1] == f"{clone}[book]"
    assert torch_pin() in recorder.constraints
    assert all(line.startswith(("torch==", "torchvision==")) for line in recorder.constraints)
    assert Path.cwd() == clone / "book"
    assert sys.path[0] == str(clone)

    # Run again (the clone is there now): no second clone, pip only, same place.
    recorder.calls.clear()
    run_cell(setup_source())
    assert [call[:4] for call in recorder.calls] == [[sys.executable, "-m", "pip", "install"]]
    assert torch_pin() in recorder.constraints
    assert Path.cwd() == clone / "book"
    assert sys.path.count(str(clone)) == 1


@pytest.mark.parametrize("has_torchvision", [True, False])
def test_setup_cell_pins_colabs_versions_exactly(recorder, monkeypatch, has_torchvision):
    """Colab-like versions with local labels are pinned as they are; a missing torchvision
    is not pinned at all."""
    import importlib.util

    versions = {"torch": "2.5.1+cu121", "torchvision": "0.20.1+cu121"}
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(metadata, "version", versions.__getitem__)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: (
        None if name == "torchvision" and not has_torchvision else find_spec(name)))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    run_cell(setup_source())
    expected = ["torch==2.5.1+cu121"] + ["torchvision==0.20.1+cu121"] * has_torchvision
    assert recorder.constraints == expected


def test_the_colab_pretrained_study_notebook_asks_for_a_gpu_and_runs_the_command():
    """book/colab/pretrained-study: kept in sync like a chapter, left out of the book, with
    Colab's GPU runtime in its metadata, the set-up cell first, and the documented command
    called as the book's appendix names it."""
    sources = booktools.colab_notebooks(ROOT)
    assert [p.name for p in sources] == ["pretrained-study.md"]
    ipynb = sources[0].with_suffix(".ipynb")
    assert ipynb.read_text() == booktools.notebook_text(sources[0].read_text())
    notebook = json.loads(ipynb.read_text())
    assert notebook["metadata"]["accelerator"] == "GPU"
    assert "gpuType" in notebook["metadata"]["colab"]
    assert "".join(first_code_cell(ipynb)["source"]) == setup_source()
    code = "\n".join("".join(c["source"]) for c in notebook["cells"]
                     if c["cell_type"] == "code")
    assert "run_pretrained_study(\"..\", build=BUILD)" in code
    assert "book/colab" in CONFIG["exclude_patterns"]
    appendix = (ROOT / "book" / "reproducibility.md").read_text()
    assert "colab/pretrained-study.ipynb" in appendix
    assert "python -m breastlib.booktools pretrained-study" in appendix
