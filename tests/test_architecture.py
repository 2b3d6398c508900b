"""The package's floor plan stays true: folders by stage, each importing only the stages below it,
no import cycle, no private name used outside its file, no file or function grown past its size."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audit"

# Bottom to top: a module may import its own stage and the stages below it, never one above.
LAYERS = [
    {"errors", "version", "images", "result", "schema"},   # plain values every stage shares
    {"config"},      # YAML -> typed, validated settings
    {"inputs"},      # folders of images loaded and checked once
    {"model"},       # a Keras model -> logits and feature maps
    {"visualize"},   # objectives, parameterizations, the one optimization loop
    {"execution"},   # where the per-class work runs (local, Ray)
    {"evidence"},    # statistics on concepts, pastes and discovered patterns
    {"gate"},        # checks, baseline and the one verdict
    {"report"},      # writes files from the audit record; computes nothing
    {"flows"},       # the stages in order, and the records built from them
    {"cli", "api", "__init__", "__main__", "demo"},  # the face
]
RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported audit module, names taken from it, line) for every import in the file, lazy ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "audit"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] == "audit":
            names = [a.name for a in node.names]
            # `from audit.pkg import module` imports the module itself
            subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]
            found += [(s, [], node.lineno) for s in subs]
            rest = [n for n in names if f"{node.module}.{n}" not in MODULES]
            if rest or not subs:
                found.append((node.module, rest, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {mod: {target for target, _, _ in _imports(path) if target != mod} for mod, path in MODULES.items()}


def test_every_top_level_module_and_folder_has_a_stage():
    assert {_stage(m) for m in MODULES} <= set(RANK), sorted({_stage(m) for m in MODULES} - set(RANK))


def test_no_import_runs_back_up_the_stages():
    back = [f"{path.relative_to(PACKAGE.parent)}:{line} {mod} -> {target}"
            for mod, path in MODULES.items() for target, _, line in _imports(path)
            if target in MODULES and RANK[_stage(target)] > RANK[_stage(mod)]]
    assert back == []


# The report writes files from values the earlier stages computed (evidence/examples.py computes the
# pastes it shows): it runs no model and computes no evidence. The plain types it reads live below it
# (images.py, inputs/bank.py).
REPORT_MAY_NOT_IMPORT = ("audit.evidence", "audit.model", "audit.visualize.optimize", "audit.execution",
                         "tensorflow", "keras")


def test_the_report_only_writes():
    found = []
    for mod, path in MODULES.items():
        if _stage(mod) != "report":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}" for name in names
                      if any(name == banned or name.startswith(banned + ".") for banned in REPORT_MAY_NOT_IMPORT)]
    assert found == []


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    # a package's __init__ importing its own modules is how Python packages work, not a loop
    cycles = [c for c in cycles if not all(p.startswith(c.split(" -> ")[0]) for p in c.split(" -> "))]
    assert cycles == []


def test_no_private_name_is_used_outside_its_file():
    used = [f"{path.relative_to(PACKAGE.parent)}:{line} {name} from {target}"
            for mod, path in MODULES.items() for target, names, line in _imports(path)
            for name in names if name.startswith("_") and not name.startswith("__")]
    assert used == []


def test_no_file_over_its_size():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert long == {}


def _functions():
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node


def test_no_function_over_its_size():
    long = {f"{p.relative_to(PACKAGE.parent)}:{f.lineno} {f.name}": f.end_lineno - f.lineno + 1
            for p, f in _functions() if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES}
    assert long == {}


def test_the_checker_sees_a_back_import(tmp_path):
    """The rules above can fail: a config module that imported the gate would be caught."""
    assert RANK[_stage("audit.config.core")] < RANK[_stage("audit.gate.findings")]
    assert _stage("audit.cli") == "cli" and _stage("audit") == "__init__"
