"""Book maintenance: the Colab set-up cell of every chapter and the paired ``.ipynb`` files.

Colab opens ``.ipynb`` files only, so every notebook chapter ``book/NAME.md`` (MyST, with
a jupytext header) has a generated twin ``book/NAME.ipynb``, without outputs, that the
book's Colab and Binder buttons open. Both start with a set-up cell that does nothing
outside Colab and, on Colab, clones the repository named in ``_config.yml``, installs
``breastlib`` from it without touching Colab's own torch, and moves into its ``book/``
folder. After changing ``repository.url`` or ``repository.branch`` in ``_config.yml``, or
any chapter, run from the repository root::

    python -m breastlib.booktools sync            # rewrite the cells and notebooks
    python -m breastlib.booktools sync --check    # only list what is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

# The first line of the set-up cell: how :func:`with_setup_cell` finds it again.
MARKER = "# Colab set-up (breastlib.booktools)"
# Where Colab keeps the clone; the variable exists so that tests can point it elsewhere.
CLONE_ENV = "BREASTLIB_COLAB_CLONE"
DEFAULT_CLONE = "/content/breastlib"
# Jupytext pairing written into every generated notebook.
PAIRING = "ipynb,md:myst"

_SETUP_TEMPLATE = '''\
{marker}: on Colab, clone the repository (the chapters
# read book/data/), install breastlib from it keeping Colab's own torch, and run from book/.
# Elsewhere it does nothing. Rendered from _config.yml by `python -m breastlib.booktools sync`.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess
    from importlib.metadata import version
    from importlib.util import find_spec
    from pathlib import Path

    REPOSITORY = {url}
    BRANCH = {branch}
    CLONE = Path(os.environ.get({clone_env}, {default_clone}))
    if not CLONE.is_dir():
        subprocess.run(["git", "clone", "--depth", "1", "--branch", BRANCH, REPOSITORY,
                        str(CLONE)], check=True)
    # Pin the torch Colab already has, so that pip can never replace it.
    constraints = CLONE.with_name("colab-constraints.txt")
    constraints.write_text("".join(f"{{pkg}}=={{version(pkg)}}\\n"
                                   for pkg in ("torch", "torchvision") if find_spec(pkg)))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints),
                    "-e", f"{{CLONE}}[book]"], check=True)
    if str(CLONE) not in sys.path:  # the running kernel does not see a new editable install
        sys.path.insert(0, str(CLONE))
    os.chdir(CLONE / "book")'''

_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.S)
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*\n", re.S | re.M)


def read_repository(root: str | Path = ".") -> tuple[str, str]:
    """Repository URL and branch of the book, from ``_config.yml``.

    Parameters
    ----------
    root
        Repository root (the folder holding ``_config.yml``).

    Returns
    -------
    tuple of str
        ``repository.url`` (without a trailing slash) and ``repository.branch``.

    Raises
    ------
    ValueError
        If either key is missing or empty.
    """
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8")) or {}
    repository = config.get("repository") or {}
    url, branch = repository.get("url"), repository.get("branch")
    if not url or not branch:
        raise ValueError("_config.yml needs repository.url and repository.branch")
    return str(url).rstrip("/"), str(branch)


def render_setup_cell(root: str | Path = ".") -> str:
    """Python source of the Colab set-up cell for the repository named in ``_config.yml``.

    Parameters
    ----------
    root
        Repository root (the folder holding ``_config.yml``).

    Returns
    -------
    str
        The cell's source, without a trailing newline; its first line is :data:`MARKER`.
    """
    url, branch = read_repository(root)
    # json.dumps: double-quoted Python string literals, like the rest of the cell.
    return _SETUP_TEMPLATE.format(marker=MARKER, url=json.dumps(url), branch=json.dumps(branch),
                                  clone_env=json.dumps(CLONE_ENV),
                                  default_clone=json.dumps(DEFAULT_CLONE))


def _front_matter(text: str) -> dict[str, Any] | None:
    import yaml

    match = _FRONT_MATTER.match(text)
    if match is None:
        return None
    loaded = yaml.safe_load(match.group(1))
    return loaded if isinstance(loaded, dict) else None


#: Notebooks made for Colab only (not chapters of the book): MyST sources under
#: ``book/colab/``, each with its ``.ipynb`` twin, set-up cell and GPU runtime metadata.
COLAB_FOLDER = Path("book") / "colab"


def colab_notebooks(root: str | Path = ".") -> list[Path]:
    """The MyST sources of the Colab-only notebooks (``book/colab/*.md``), sorted."""
    return sorted((Path(root) / COLAB_FOLDER).glob("*.md"))


def notebook_chapters(root: str | Path = ".") -> list[Path]:
    """The chapters of ``_toc.yml`` that are notebooks, in table-of-contents order.

    A notebook chapter is a ``.md`` file with a jupytext header and at least one
    ``{code-cell}``; plain markdown pages (such as the references) are left out.

    Parameters
    ----------
    root
        Repository root (the folder holding ``_toc.yml``).

    Returns
    -------
    list of pathlib.Path
        The chapters' ``.md`` files.
    """
    import yaml

    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]]

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    chapters = []
    for entry in entries:
        path = root / entry
        if path.suffix != ".md":
            path = path.with_name(path.name + ".md")
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        header = _front_matter(text)
        if header and "jupytext" in header and _CODE_CELL.search(text):
            chapters.append(path)
    return chapters


def setup_block(cell_source: str) -> str:
    """The MyST ``{code-cell}`` block of a set-up cell, tagged ``remove-cell``.

    Parameters
    ----------
    cell_source
        The cell's Python source, as from :func:`render_setup_cell`.

    Returns
    -------
    str
        The block, ending with a newline.
    """
    return f"```{{code-cell}} ipython3\n:tags: [remove-cell]\n{cell_source}\n```\n"


def with_setup_cell(text: str, cell_source: str) -> str:
    """A MyST notebook's text with its set-up cell replaced, or inserted first.

    An existing set-up cell is the ``{code-cell}`` containing :data:`MARKER`; it is
    replaced in place. Without one, the cell goes right after the front matter. Nothing
    else in the text changes, and applying this twice gives the same text.

    Parameters
    ----------
    text
        The chapter's MyST markdown, starting with its jupytext front matter.
    cell_source
        The cell's Python source, as from :func:`render_setup_cell`.

    Returns
    -------
    str
        The updated text.

    Raises
    ------
    ValueError
        If the text has no front matter.
    """
    front = _FRONT_MATTER.match(text)
    if front is None:
        raise ValueError("a MyST notebook starts with its front matter between --- lines")
    block = setup_block(cell_source)
    for cell in _CODE_CELL.finditer(text, front.end()):
        if MARKER in cell.group(1):
            return text[:cell.start()] + block + text[cell.end():]
    rest = text[front.end():].lstrip("\n")
    return f"{text[:front.end()]}\n{block}\n{rest}"


def notebook_text(md_text: str) -> str:
    """The ``.ipynb`` file that pairs with a MyST notebook, as text.

    Jupytext converts the markdown; the notebook carries no outputs, records its pairing
    (``ipynb,md:myst``) and gets cell ids derived from the cells' content, so the same
    markdown always gives the same file.

    Parameters
    ----------
    md_text
        The chapter's MyST markdown.

    Returns
    -------
    str
        The notebook's JSON, ending with a newline.
    """
    import jupytext

    notebook = jupytext.reads(md_text, fmt="md:myst")
    notebook.metadata.setdefault("jupytext", {})["formats"] = PAIRING
    seen: set[str] = set()
    for cell in notebook.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
        cell_id, n = digest[:8], 1
        while cell_id in seen:
            cell_id, n = f"{digest[:8]}-{n}", n + 1
        seen.add(cell_id)
        cell.id = cell_id
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    text = jupytext.writes(notebook, fmt="ipynb")
    return text if text.endswith("\n") else text + "\n"


def write_notebook(md_path: str | Path, ipynb_path: str | Path | None = None) -> Path:
    """Regenerate the ``.ipynb`` paired with a MyST notebook (with ``jupytext.write``).

    Parameters
    ----------
    md_path
        The chapter's ``.md`` file.
    ipynb_path
        Where to write; the ``.ipynb`` beside ``md_path`` by default.

    Returns
    -------
    pathlib.Path
        The notebook written.
    """
    import jupytext

    md_path = Path(md_path)
    ipynb_path = Path(ipynb_path) if ipynb_path is not None else md_path.with_suffix(".ipynb")
    notebook = jupytext.reads(notebook_text(md_path.read_text(encoding="utf-8")), fmt="ipynb")
    jupytext.write(notebook, ipynb_path, fmt="ipynb")
    return ipynb_path


def sync(root: str | Path = ".", *, check: bool = False) -> list[Path]:
    """Bring every notebook chapter's set-up cell and paired ``.ipynb`` up to date.

    Parameters
    ----------
    root
        Repository root (``_config.yml``, ``_toc.yml``).
    check
        Only report; write nothing.

    Returns
    -------
    list of pathlib.Path
        The files that were out of date (and, unless ``check``, are now rewritten).
    """
    cell_source = render_setup_cell(root)
    stale = []
    for md_path in [*notebook_chapters(root), *colab_notebooks(root)]:
        text = md_path.read_text(encoding="utf-8")
        updated = with_setup_cell(text, cell_source)
        if updated != text:
            stale.append(md_path)
            if not check:
                md_path.write_text(updated, encoding="utf-8")
        ipynb_path = md_path.with_suffix(".ipynb")
        current = ipynb_path.read_text(encoding="utf-8") if ipynb_path.is_file() else None
        if current != notebook_text(updated):
            stale.append(ipynb_path)
            if not check:
                write_notebook(md_path, ipynb_path)
    return stale


def main(argv: list[str] | None = None) -> int:
    """``python -m breastlib.booktools sync [--check] [--root DIR]``.

    Parameters
    ----------
    argv
        Command-line arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    int
        0 when everything is (now) up to date; 1 when ``--check`` found stale files.
    """
    parser = argparse.ArgumentParser(
        prog="python -m breastlib.booktools",
        description="Maintain the book's Colab set-up cells and paired .ipynb notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "sync", help="render the set-up cell from _config.yml into every notebook chapter "
        "and regenerate the paired book/*.ipynb")
    p.add_argument("--check", action="store_true",
                   help="write nothing; list the out-of-date files and exit 1 if any")
    p.add_argument("--root", type=Path, default=Path("."),
                   help="repository root holding _config.yml and _toc.yml (default: .)")
    args = parser.parse_args(argv)
    stale = sync(args.root, check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path}")
    if args.check and stale:
        print("run: python -m breastlib.booktools sync", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
