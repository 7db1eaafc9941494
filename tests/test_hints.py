"""Every hint in the package follows one rule (docs/CONTRACTS.md, errors.py).

A hint tells the fix: it starts with an imperative verb ("Check the path.", "Use --jobs 1
or more."), capitalized, with no label of its own ("Fix:", "hint:"): `cli.main` prints it
as `hint: <hint>` under `error: <message>`. The walk reads the source (AST), so a hint on a
path no test reaches is checked too; hints made in tables of data (the benchmark options'
rules, the variant grammar's problems) are checked by making them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnv3bench.errors import MnvError
from tests.helpers import REPO

PACKAGE = REPO / "mnv3bench"

# The verbs hints start with. A new hint with a new verb adds it here: the list is the
# reviewable record that each hint is an instruction, not a description.
VERBS = {
    "Add", "Attach", "Build", "Charge", "Check", "Choose", "Connect", "Copy", "Correct", "Download", "Drop", "Fix",
    "Free", "Get", "Give", "Install", "Leave", "Let", "List", "Look", "Measure", "Name", "Pass", "Pick", "Pin", "Plug",
    "Point", "Put", "Raise", "Reboot", "Rebuild", "Recover", "Reinstall", "Remove", "Replug", "Report", "Run", "Set", "Start", "Turn",
    "Unlock", "Unplug", "Upgrade", "Use", "Wait", "Write",
}
# Error types whose second argument (or hint=) is the hint, and the doctor's Check (its fix).
HINTED_CALLS = {"MnvError": 1, "UsageError": 1, "SandboxError": 1, "DeviceLinkError": 1, "Check": 3}
HINT_KEYWORDS = {"hint", "fix"}
# Project files a message may name; anything else (docs, the source tree) is not on a user's disk.
OUTSIDE = re.compile(r"\.md\b|\bdocs/|\.\./|/work/|\bmnv3bench/\w+\.py\b|\btests/")

DYNAMIC = object()  # a hint made at run time from data: checked by the runtime tests below


class Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text())
        self.parents: dict[int, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node

    def enclosing_function(self, node: ast.AST) -> ast.AST:
        while id(node) in self.parents:
            node = self.parents[id(node)]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node
        return self.tree

    def assigned(self, scope: ast.AST, name: str) -> list[ast.expr]:
        body = scope.body if isinstance(scope, ast.Module) else list(ast.walk(scope))
        values = []
        for node in body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                values.append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                values.append(node.value)
        return [v for v in values if v is not None]

    def function(self, name: str) -> ast.FunctionDef | None:
        return next((n for n in self.tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)

    def imported_from(self, name: str) -> Module | None:
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mnv3bench"):
                if any((a.asname or a.name) == name for a in node.names):
                    path = REPO / Path(*node.module.split("."))
                    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
                    return Module(path)
        return None


def leading_texts(module: Module, expr: ast.expr, at: ast.AST, depth: int = 0) -> Iterator[object]:
    """The possible beginnings of the string `expr` makes (DYNAMIC where only running tells)."""
    if depth > 6:
        yield DYNAMIC
    elif isinstance(expr, ast.Constant):
        if isinstance(expr.value, str):
            yield expr.value
    elif isinstance(expr, ast.JoinedStr):
        first = expr.values[0] if expr.values else ast.Constant("")
        if isinstance(first, ast.FormattedValue):
            yield from leading_texts(module, first.value, at, depth + 1)
        else:
            yield from leading_texts(module, first, at, depth + 1)
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        yield from leading_texts(module, expr.left, at, depth + 1)
    elif isinstance(expr, ast.IfExp):
        yield from leading_texts(module, expr.body, at, depth + 1)
        yield from leading_texts(module, expr.orelse, at, depth + 1)
    elif isinstance(expr, ast.BoolOp):  # `a or "default"`
        for value in expr.values:
            yield from leading_texts(module, value, at, depth + 1)
    elif isinstance(expr, ast.Name):
        values = module.assigned(module.enclosing_function(at), expr.id) or module.assigned(module.tree, expr.id)
        if values:
            for value in values:
                yield from leading_texts(module, value, value, depth + 1)
        elif (source := module.imported_from(expr.id)) is not None:
            for value in source.assigned(source.tree, expr.id):
                yield from leading_texts(source, value, value, depth + 1)
        else:
            yield DYNAMIC  # a parameter: checked where the caller's string is made
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and (fn := module.function(expr.func.id)):
        for node in ast.walk(fn):
            if isinstance(node, ast.Return) and node.value is not None:
                yield from leading_texts(module, node.value, node, depth + 1)
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format":
        yield from leading_texts(module, expr.func.value, at, depth + 1)  # HINT.format(path=...)
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "get":
        owner = expr.func.value  # fixes.get(state, "default"): every value and the default
        if isinstance(owner, ast.Name):
            for table in module.assigned(module.enclosing_function(at), owner.id):
                if isinstance(table, ast.Dict):
                    for value in table.values:
                        yield from leading_texts(module, value, at, depth + 1)
        for arg in expr.args[1:]:
            yield from leading_texts(module, arg, at, depth + 1)
    else:
        yield DYNAMIC


def hints_in_source() -> list[tuple[str, object]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = Module(path)
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            is_super = (name == "__init__" and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", "") == "super")
            position = 1 if is_super else HINTED_CALLS.get(name or "")
            if position is None:
                continue
            hint = node.args[position] if len(node.args) > position else next(
                (k.value for k in node.keywords if k.arg in HINT_KEYWORDS), None)
            if hint is None:
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            found += [(where, text) for text in leading_texts(module, hint, node)]
    return found


def hint_problem(text: str) -> str | None:
    """What is wrong with a hint's beginning, or None."""
    if text == "":
        return None  # an optional part that may be empty (e.g. a Check without a fix)
    first = re.split(r"[\s,:;(]", text.strip(), maxsplit=1)[0]
    if re.match(r"(?i)(fix|hint|note|error)\b", text) and not text.startswith(("Fix the ", "Fix its ")):
        return "carries a label (the printer adds `hint:`)"
    if first not in VERBS:
        return f"does not start with an imperative verb (starts with {first!r})"
    return None


SOURCE_HINTS = hints_in_source()


def test_the_walk_finds_the_package_hints() -> None:
    # A guard on the walker itself: it must see the hints it is meant to check.
    assert len(SOURCE_HINTS) > 150
    assert any(where.startswith("mnv3bench/cli.py") for where, _ in SOURCE_HINTS)


@pytest.mark.parametrize(("where", "text"), [h for h in SOURCE_HINTS if h[1] is not DYNAMIC],
                         ids=lambda v: v if isinstance(v, str) and ".py:" in v else "")
def test_every_literal_hint_starts_with_an_imperative(where: str, text: str) -> None:
    assert hint_problem(text) is None, f"{where}: {text!r}: {hint_problem(text)}"


def test_hints_made_at_run_time_are_few_and_known() -> None:
    # Each is checked where its text is made: the options' rules and the variant grammar by
    # the tests below; the others pass on a hint an error (checked above) already carries.
    dynamic = sorted({where.split(":")[0] for where, text in SOURCE_HINTS if text is DYNAMIC})
    assert dynamic == [
        "mnv3bench/bench/options.py",      # rule.hint: the option table's rules
        "mnv3bench/commands/devices.py",   # a caught MnvError's hint shown as the doctor's fix
        "mnv3bench/commands/measure_options.py",  # several phones: a sentence, then each phone's own hint
        "mnv3bench/device/preflight.py",   # the failed checks' fixes joined; a caught MnvError's hint
        "mnv3bench/device/protocol.py",    # DeviceLinkError passes its caller's hint on
        "mnv3bench/variants.py",           # the grammar's problems: (what, fix)
    ]


def test_benchmark_option_hints_start_with_an_imperative() -> None:
    from mnv3bench.bench.options import OPTIONS

    hints = [rule.hint for option in OPTIONS for rule in option.rules]
    assert hints
    assert [h for h in hints if hint_problem(h)] == []


@pytest.mark.parametrize("name", [
    "medium", "large-0", "large-hswish@17", "large-fsued", "small-hswish-fused-original", "v2-1.0-relu",
    "large-relu-swish", "large-r8", "large-relu-naive", "large-@16", "large-foo", "large-relu-int4",
])
def test_variant_grammar_hints_start_with_an_imperative(name: str) -> None:
    from mnv3bench.variants import parse_variant

    with pytest.raises(MnvError) as err:
        parse_variant(name)
    assert hint_problem(err.value.hint or "") is None, err.value.hint


def test_doctor_joins_the_checks_fixes() -> None:
    from mnv3bench.device.preflight import FAIL, Check, require_ready

    with pytest.raises(MnvError) as err:
        require_ready([Check("abi", FAIL, "x86", "Use an arm64 phone."), Check("space", FAIL, "full", "Free space.")])
    assert err.value.hint == "Use an arm64 phone.\nFree space."


def test_no_message_or_hint_points_outside_the_project() -> None:
    # Literal text only: paths made at run time name the user's own files.
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in HINTED_CALLS:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    for part in ast.walk(arg):
                        if isinstance(part, ast.Constant) and isinstance(part.value, str) and OUTSIDE.search(part.value):
                            bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {part.value!r}")
    assert bad == []
