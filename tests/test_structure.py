"""The package's shape, read from the source with ast, nothing imported: every import between mnbench modules runs
down LAYERS (or stays in its layer), with no cycle; onnxruntime and openvino only in backends/, devices/ and
host/; no module over 400 lines; no function over 80 lines. An import counts wherever it stands (a
function-level import is a dependency too), and so does a module named in a string (`importlib` dispatch). A
package's `__init__` that only re-exports its submodules is a face, seen through to what it re-exports; one that
defines anything (`backends.open_session` dispatches) is a module like any other. A change that breaks one of these
should say why in the limits below, not slip in."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mnbench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
RUNTIME_MODULES = ("onnxruntime", "openvino")
MAY_IMPORT_RUNTIMES = ("backends", "devices", "host")  # host: the runtimes' versions for the result file

# Today's layers, bottom first. A module may import modules of its own layer and of the layers below it, never above.
# `x.*` is package x and everything in it; a plain name is that module only, and wins over a package.
LAYERS = [
    ("floor", ["mnbench", "mnbench.errors", "mnbench.config", "mnbench.paths", "mnbench.atomic", "mnbench.hashing",
               "mnbench.manifest", "mnbench.host.facts"]),
    ("nets", ["mnbench.archs.*"]),
    # What a graph costs, what its inputs are fed, and which of its nodes a runtime's kernel computed.
    ("graph", ["mnbench.graph.*"]),
    ("devices", ["mnbench.devices.*"]),
    ("backends", ["mnbench.backends.*"]),
    ("host", ["mnbench.host.*"]),
    # export validates its file through a cpu session and quantize calls ONNX Runtime's quantizer: above backends.
    ("artifacts", ["mnbench.artifacts.*", "mnbench.int8.*"]),
    ("statistics", ["mnbench.stats.*", "mnbench.results"]),
    ("measure", ["mnbench.measure.*"]),
    ("analyses", ["mnbench.roofline.*", "mnbench.ablate.claims", "mnbench.profiling.*"]),
    ("commands", ["mnbench.run.*", "mnbench.ablate.*", "mnbench.doctor.*", "mnbench.gate.*"]),
    ("report", ["mnbench.report.*"]),
    ("cli", ["mnbench.cli.*", "mnbench.__main__"]),
]




def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The mnbench modules `name` imports, anywhere in the file: `from pkg import sub` is the submodule, `from pkg
    import attribute` the package; a string that is a module's full name counts too (`importlib` dispatch)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            targets = [node.value]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _is_face(path: Path) -> bool:
    """An `__init__` that only re-exports: a docstring, imports and `__all__`, nothing it defines or runs."""
    if path.name != "__init__.py":
        return False
    for node in ast.parse(path.read_text()).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        exports = isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
        if not (docstring or exports or isinstance(node, (ast.Import, ast.ImportFrom))):
            return False
    return True


def _graph() -> dict[str, set[str]]:
    """module -> the modules it imports; a face is seen through: importing it is importing what it re-exports."""
    modules = _modules()
    raw = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    faces = {name for name, path in modules.items() if _is_face(path)}

    def through(deps: set[str], seen: frozenset[str] = frozenset()) -> set[str]:
        out = set()
        for dep in deps:
            out |= through(raw[dep], seen | {dep}) if dep in faces and dep not in seen else {dep} - faces
        return out

    return {name: through(deps) - {name} for name, deps in raw.items() if name not in faces}


def _layer_of(name: str) -> int | None:
    exact = [i for i, (_, members) in enumerate(LAYERS) if name in members]
    if exact:
        return exact[0]
    packages = [(len(m), i) for i, (_, members) in enumerate(LAYERS) for m in members
                if m.endswith(".*") and (name == m[:-2] or name.startswith(m[:-1]))]
    return max(packages)[1] if packages else None


def test_every_module_has_a_layer():
    assert not [name for name in _graph() if _layer_of(name) is None], "place these modules in LAYERS"


def test_imports_run_down_the_layers():
    upward = sorted((name, dep) for name, deps in _graph().items() for dep in deps
                    if None not in (_layer_of(name), _layer_of(dep)) and _layer_of(dep) > _layer_of(name))
    unexpected = [f"{name} ({LAYERS[_layer_of(name)][0]}) -> {dep} ({LAYERS[_layer_of(dep)][0]})"
                  for name, dep in upward]
    assert not unexpected, "imports up the layers: " + "; ".join(unexpected)


def test_no_import_cycle_among_mnbench_modules():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_lazy_imports_dispatching_inits_and_faces(tmp_path):
    init = tmp_path / "__init__.py"
    init.write_text('"""A dispatcher."""\n\ndef open_session():\n    from pkg.impl import Session\n')
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from pkg import helper, CONSTANT\n    return __import__('importlib')"
                    ".import_module('pkg.other')\n")
    known = {"pkg", "pkg.impl", "pkg.helper", "pkg.other"}
    assert _imports("pkg", init, known) == {"pkg.impl"} and not _is_face(init)
    assert _imports("pkg.lazy", lazy, known) == {"pkg.helper", "pkg", "pkg.other"}
    init.write_text('"""A face."""\nfrom pkg.impl import Session\n\n__all__ = ["Session"]\n')
    assert _is_face(init)


def test_runtimes_are_imported_only_by_the_backends_and_the_probes():
    offenders = {}
    for name, path in _modules().items():
        inside = name.split(".")[1] if "." in name else ""
        if inside in MAY_IMPORT_RUNTIMES:
            continue
        if found := _runtime_imports(path):
            offenders[name] = sorted(found)
    assert not offenders


def _runtime_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in RUNTIME_MODULES}
    return found


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_and_functions_stay_small(name):
    path = _modules()[name]
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path} has {len(source.splitlines())} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path}: {', '.join(long)}"
