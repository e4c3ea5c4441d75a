"""The code's own imports follow the data flow (docs/architecture.md): each unit imports only units below it.

cli -> viewer / runtime / filters -> render -> cache / blueprint -> inr; ascent_filters (Ascent's entry point)
sits with the cli on top; simulations reach insitu only through the runtime and the filters.
"""
from __future__ import annotations

import ast
from pathlib import Path

from support.mpi import ROOT

#: units, from the top down: a unit may import its own modules and any unit of a lower rank
RANKS = {
    "insitu.cli": 5, "ascent_filters": 5,
    "insitu.runtime": 4,
    "insitu.viewer": 3, "insitu.filters": 3,
    "insitu.render": 2,
    "insitu.cache": 1, "insitu.blueprint": 1,
    "inr": 0,
}
#: what the proxy simulations may use of the project: they are users of the runtime (and of the filters), and
#: build the Blueprint domains they publish with insitu.blueprint
SIMS_MAY_IMPORT = ("insitu.runtime", "insitu.filters", "insitu.blueprint", "inr", "sims")


def unit_of(module: str) -> str | None:
    for unit in sorted(RANKS, key=len, reverse=True):
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, function-local ones included."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from insitu import x" names the submodule x when there is one
            out += [(node.lineno, f"{base}.{a.name}" if (ROOT / base.replace(".", "/") / a.name).exists()
                     or (ROOT / base.replace(".", "/") / f"{a.name}.py").exists() else base) for a in node.names]
    return out


def sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def test_every_unit_imports_only_units_below_it():
    wrong = []
    for path in sources("insitu", "inr", "ascent_filters"):
        me = unit_of(module_name(path))
        if me is None:  # insitu/__init__.py
            continue
        for line, mod in imports(path):
            other = unit_of(mod)
            if other is not None and other != me and RANKS[other] >= RANKS[me]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({me}) imports {mod} ({other})")
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_simulations_use_the_runtime_and_the_filters_only():
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in sources("sims") for line, mod in imports(p)
             if mod.split(".")[0] in ("insitu", "inr", "sims", "ascent_filters")
             and not any(mod == ok or mod.startswith(ok + ".") for ok in SIMS_MAY_IMPORT)]
    assert not wrong, "simulations reaching past the runtime and the filters:\n" + "\n".join(wrong)


def test_every_package_is_placed():
    """A new folder under insitu/ must be given a rank here (and a paragraph in docs/architecture.md)."""
    folders = {f"insitu.{p.name}" for p in (ROOT / "insitu").iterdir() if (p / "__init__.py").exists()}
    assert folders <= set(RANKS), folders - set(RANKS)


def test_the_architecture_page_names_every_package():
    page = (ROOT / "docs" / "architecture.md").read_text()
    units = [u.replace(".", "/") for u in RANKS] + ["cpp/inr_native", "cpp/raymarch", "sims", "benchmarks", "tests"]
    missing = [u for u in units if f"`{u}/`" not in page and f"`{u}.py`" not in page and f"`{u}`" not in page]
    assert not missing, f"docs/architecture.md does not name {missing}"
