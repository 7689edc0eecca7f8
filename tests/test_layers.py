"""The package's layers point one way (see `tint`'s docstring): a module imports only from its
own layer and the layers before it, at the top of the file or inside a function alike."""

import ast
from pathlib import Path

import tint

SOURCE = Path(tint.__file__).resolve().parent
# In order: each may import the ones before it.
LAYERS = [
    {"tint.errors", "tint.config", "tint.io"},
    {"tint.data"},
    {"tint.diffusion"},
    {"tint.models"},
    {"tint.train"},
    {"tint.sources"},
    {"tint.pipeline"},
    {"tint.eval"},
    {"tint.commands"},
    {"tint.cli", "tint.api", "tint"},
]


def _layer(module: str) -> int:
    for rank, names in enumerate(LAYERS):
        if any(module == n or module.startswith(f"{n}.") for n in names - {"tint"}):
            return rank
    if module == "tint":  # the package's own face re-exports from the layers below
        return len(LAYERS) - 1
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to tint's docstring")


def _modules():
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for name, path in _modules():
        own = _layer(name)
        for imported in _imports(path):
            if imported.split(".")[0] != "tint" or imported == "tint":
                continue
            try:
                theirs = _layer(imported)
            except AssertionError:  # `from tint.x import name`: the module is tint.x
                continue
            if theirs > own:
                upward.append(f"{name} (layer {own}) imports {imported} (layer {theirs})")
    assert not upward, "\n".join(upward)


def test_every_module_is_in_a_layer():
    for name, _ in _modules():
        _layer(name)
