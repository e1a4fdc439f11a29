"""The Binder set-up gives the notebooks what they need: their imports, Graphviz, this package."""

from __future__ import annotations

import ast
import json
import re
import stat
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PACKAGE = "notebook_workflows"  # installed by binder/postBuild, not by requirements.txt


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def required() -> set[str]:
    """The distributions binder/requirements.txt names."""
    names = set()
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalized(re.split(r"[\s<>=!~\[;]", line, maxsplit=1)[0]))
    return names


def imported_modules(notebook: Path) -> set[str]:
    """The top-level modules a notebook's code cells import."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    modules = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython's own syntax is not Python: leave out magics and shell escapes
        source = "\n".join(
            line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # cells may `await`
        tree = compile(source, str(notebook), "exec", flags=flags)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return modules


def test_there_are_notebooks_and_they_use_the_package() -> None:
    assert len(NOTEBOOKS) >= 7
    for notebook in NOTEBOOKS:
        assert PACKAGE in imported_modules(notebook), notebook.name


def test_requirements_name_every_third_party_module_the_notebooks_import() -> None:
    provided_by = packages_distributions()
    wanted = required()
    missing = []
    for notebook in NOTEBOOKS:
        for module in sorted(imported_modules(notebook)):
            if module in sys.stdlib_module_names or module == PACKAGE:
                continue
            if (notebook.parent / f"{module}.py").exists():
                continue  # a module next to the notebooks (09 writes scoring.py itself)
            distributions = {normalized(d) for d in provided_by.get(module, [])}
            assert distributions, f"{notebook.name} imports {module}, which is not installed here"
            if not distributions & wanted:
                missing.append(f"{notebook.name}: {module} ({' or '.join(sorted(distributions))})")
    assert not missing, "binder/requirements.txt does not name: " + "; ".join(missing)


def test_requirements_name_the_monitors_front_end() -> None:
    assert {"ipywidgets", "ipykernel", "jupyterlab"} <= required()


def test_apt_installs_graphviz_for_the_graphs() -> None:
    packages = (BINDER / "apt.txt").read_text().split()
    assert "graphviz" in packages


def test_post_build_is_an_executable_script_that_installs_this_package() -> None:
    script = BINDER / "postBuild"
    assert script.stat().st_mode & stat.S_IXUSR, "binder/postBuild must be executable (chmod +x)"
    text = script.read_text()
    assert text.startswith("#!"), "binder/postBuild needs a shebang line"
    assert "set -e" in text, "a failing install must fail the Binder build"
    # it installs the repository's root (pyproject.toml), wherever it is started from
    assert re.search(r'^cd "\$\(dirname "\$0"\)/\.\."$', text, re.MULTILINE)
    assert re.search(r"^python -m pip install\b[^\n]*\s\.$", text, re.MULTILINE)
    assert (ROOT / "pyproject.toml").exists()
    subprocess.run(["bash", "-n", str(script)], check=True)  # parses as a bash script
