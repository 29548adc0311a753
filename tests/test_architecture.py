"""The import graph shows the architecture: utils -> layers -> zoo -> the `deepblocks` command.

Read from the source with `ast` (nothing is imported), counting imports
inside functions too. `python tests/test_architecture.py graph.dot` writes the
graph for Graphviz.
"""

import ast
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Source folder -> the package name it installs as.
PACKAGES = {
    "keras_deepblocks": "keras_deepblocks",
    "zoo": "keras_deepblocks.zoo",
    "deepblocks": "deepblocks",
}
# Lower layers never import higher ones. A module's layer is that of its
# longest matching prefix.
LAYERS = [
    ("keras_deepblocks.utils", 0),
    ("keras_deepblocks.initializers", 1),
    ("keras_deepblocks.layers", 2),
    ("keras_deepblocks.metrics", 2),
    ("keras_deepblocks.callbacks", 2),
    ("keras_deepblocks", 3),  # datasets, text, training: use layers, know no model
    ("keras_deepblocks.zoo", 4),
    ("keras_deepblocks.tuning", 5),
    ("keras_deepblocks.experiments", 5),  # runs zoo models, writes figures
    ("deepblocks", 6),
]


def module_files():
    for folder, package in PACKAGES.items():
        root = REPO / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join([package, *parts]), path


def imports_of(name, path):
    """Project modules that module `name` imports (absolute and relative imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph():
    modules = dict(module_files())
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(name, path):
            # `from a.b import c` names a module a.b.c or a name in a.b.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def layer_of(name):
    matches = [
        (len(prefix), layer)
        for prefix, layer in LAYERS
        if name == prefix or name.startswith(prefix + ".")
    ]
    return max(matches)[1]


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_is_read(graph):
    assert "keras_deepblocks.zoo.resnet_cifar" in graph
    assert "keras_deepblocks.layers" in graph["keras_deepblocks.zoo.resnet_cifar"]
    assert "keras_deepblocks.utils.validation" in graph["keras_deepblocks.zoo.resnet_cifar"]


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_no_arrow_from_a_lower_layer_up(graph):
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source) and target != "keras_deepblocks"
    )
    assert upward == []


def test_the_package_never_imports_the_command(graph):
    assert not [
        s
        for s, t in graph.items()
        if s.startswith("keras_deepblocks") and any(x.startswith("deepblocks") for x in t)
    ]


def write_dot(graph, path):
    lines = ["digraph imports {", "  rankdir=LR; node [shape=box, fontsize=10];"]
    for source in sorted(graph):
        for target in sorted(graph[source]):
            lines.append(f'  "{source}" -> "{target}";')
    lines.append("}")
    pathlib.Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_dot(import_graph(), sys.argv[1] if len(sys.argv) > 1 else "imports.dot")
