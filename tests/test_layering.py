"""The dependency order of asrkit's packages (the table in asrkit/__init__.py's docstring) holds.

Every module of every package is parsed (not imported: fast, and no optional dependency is needed), and
every import it makes is collected: ``import asrkit.x``, ``from asrkit.x import y``, relative imports,
imports inside functions, and ``importlib.import_module("asrkit.x")`` / ``pytest.importorskip`` with a
literal name. An edge from a package to one of its own layer or above, or a cycle between packages, fails
the test naming the file, line and edge.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple


ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "asrkit"
ROOT_UNIT = ""  # asrkit/__init__.py itself
_ROW = re.compile(r"^\s*(\d+)\s+([a-z_]+)\s+\S")

Edge = Tuple[str, str]  # (importing unit, imported unit)


def documented_layers(init: Path = PKG / "__init__.py") -> Dict[str, int]:
    """{unit: layer} from the table of the package docstring (the rows after the ``layer`` header)."""
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.split()[:2] == ["layer", "package"]), None)
    if start is None:
        raise AssertionError(f"{init}: no 'layer  package' table in the docstring")
    layers: Dict[str, int] = {}
    for line in lines[start + 1:]:
        m = _ROW.match(line)
        if not m:
            break
        layers[m.group(2)] = int(m.group(1))
    return layers


def _module_name(path: Path, root: Path) -> Tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def _unit(module: str) -> str:
    """``asrkit.gmm.model`` -> ``gmm``; ``asrkit.fst`` -> ``fst``; ``asrkit`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_UNIT


def _literal_import(node: ast.Call) -> str:
    """The module name of ``importlib.import_module("x")`` / ``__import__("x")`` / ``importorskip("x")``."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name in ("import_module", "__import__", "importorskip") and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return ""


def imports_of(path: Path, root: Path) -> List[Tuple[int, str]]:
    """(line, absolute module name) of every import in a file (functions included)."""
    module, is_pkg = _module_name(path, root)
    out: List[Tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "asrkit":  # from asrkit import gmm: the subpackage; from asrkit import __version__: the root
                out += [(node.lineno, f"asrkit.{a.name}" if not a.name.startswith("__") else "asrkit")
                        for a in node.names]
            else:
                out.append((node.lineno, target))
        elif isinstance(node, ast.Call):
            name = _literal_import(node)
            if name:
                out.append((node.lineno, name))
    return out


def package_edges(root: Path) -> Dict[Edge, List[str]]:
    """{(from unit, to unit): ["file:line module", ...]} over every module under ``root/asrkit``."""
    edges: Dict[Edge, List[str]] = defaultdict(list)
    for path in sorted((root / "asrkit").rglob("*.py")):
        src = _unit(_module_name(path, root)[0])
        for line, target in imports_of(path, root):
            if target != "asrkit" and not target.startswith("asrkit."):
                continue
            dst = _unit(target)
            if dst != src:
                edges[(src, dst)].append(f"{path.relative_to(root)}:{line} imports {target}")
    return edges


def units(root: Path) -> Set[str]:
    pkg = root / "asrkit"
    found = {p.parent.name for p in pkg.glob("*/__init__.py")}
    found |= {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
    return found


def layering_problems(root: Path, layers: Dict[str, int]) -> List[str]:
    """Every breach of ``layers`` under ``root``: undocumented packages, edges to the same layer or
    above, cycles between packages."""
    problems = [f"asrkit/{u} is not in the dependency order of asrkit/__init__.py (add it to the table)"
                for u in sorted(units(root) - set(layers))]
    edges = package_edges(root)
    for (src, dst), where in sorted(edges.items()):
        if src == ROOT_UNIT:
            problems.append(f"asrkit/__init__.py must import no package, but {where[0]}")
        elif dst == ROOT_UNIT or src not in layers or dst not in layers:
            continue  # the root (asrkit.__version__) is below everything; undocumented units reported above
        elif layers[dst] >= layers[src]:
            problems.append(f"{src} (layer {layers[src]}) -> {dst} (layer {layers[dst]}): "
                            f"{'; '.join(where[:3])}{' ...' if len(where) > 3 else ''}")
    problems += [f"cycle between packages: {' -> '.join(c + [c[0]])}" for c in package_cycles(edges)]
    return problems


def package_cycles(edges: Dict[Edge, List[str]]) -> List[List[str]]:
    """The strongly connected components with more than one package (Tarjan, iterative)."""
    graph: Dict[str, Set[str]] = defaultdict(set)
    for src, dst in edges:
        if ROOT_UNIT not in (src, dst):
            graph[src].add(dst)
            graph.setdefault(dst, set())
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    cycles: List[List[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
    return cycles


# ----------------------------------------------------------------------------- the checks


def test_documented_order_is_complete():
    layers = documented_layers()
    for top in ("testing", "bin"):  # fixtures and programs may import anything: they are on top
        assert top in layers, f"{top} is missing from the table"
        assert layers[top] > max(v for k, v in layers.items() if k not in ("testing", "bin"))
    assert layers["bin"] > layers["testing"]
    assert layers["utils"] == min(layers.values())


def test_imports_follow_the_documented_order():
    """Every package of asrkit (asrkit/testing too, once it exists) imports only lower layers."""
    problems = layering_problems(ROOT, documented_layers())
    assert not problems, "imports against the dependency order of asrkit/__init__.py:\n" + "\n".join(problems)


def test_edges_are_found_where_they_hide(tmp_path):
    """The checker sees function-level, relative and importlib imports, and reports an upward edge and a cycle."""
    pkg = tmp_path / "asrkit"
    files = {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from ..high import b  # upward, inside a function\n",
        "high/__init__.py": "",
        "high/b.py": "import importlib\nfrom asrkit.low import a\nimportlib.import_module('asrkit.mid.c')\n",
        "mid/__init__.py": "from . import c\n",
        "mid/c.py": "from asrkit import __version__\n",
        "extra.py": "import asrkit.low.a\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    edges = package_edges(tmp_path)
    assert set(edges) == {("low", "high"), ("high", "low"), ("high", "mid"), ("mid", ROOT_UNIT),
                          ("extra", "low")}
    assert edges[("low", "high")] == ["asrkit/low/a.py:2 imports asrkit.high"]
    problems = layering_problems(tmp_path, {"low": 0, "mid": 1, "high": 2, "testing": 3})
    assert any(p.startswith("low (layer 0) -> high (layer 2): asrkit/low/a.py:2") for p in problems), problems
    assert "cycle between packages: high -> low -> high" in problems
    assert any("asrkit/extra is not in the dependency order" in p for p in problems)
    assert not any("mid" in p for p in problems)  # mid -> the root is fine; testing (absent) is fine
    assert len(problems) == 3, problems


def test_table_rows_parse(tmp_path):
    init = tmp_path / "__init__.py"
    init.write_text('"""Doc.\n\n    layer  package      what\n    0      utils        helpers (nothing)\n'
                    '    3      gmm          GMMs (tree)\n\n    9      not_a_row    after the blank line\n"""\n')
    assert documented_layers(init) == {"utils": 0, "gmm": 3}
