"""docs/operations.md lists every dead-letter reason and every score-change cause the code can
give, and nothing else; the JSON Schemas of dead letters and score events agree."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
SCHEMAS = REPO / "schemas"
SOURCES = sorted([*(REPO / "pipeline").rglob("*.py"), *(REPO / "scoring").rglob("*.py")])


def _strings(node: ast.expr, assigned: dict[str, ast.expr]) -> Iterator[str]:
    """The string constants an argument can be: a literal, either branch of `a if c else b`,
    or a local name assigned one of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body, assigned)
        yield from _strings(node.orelse, assigned)
    elif isinstance(node, ast.Name) and node.id in assigned:
        yield from _strings(assigned[node.id], assigned)
    else:
        raise AssertionError(f"cannot tell the value of {ast.unparse(node)}")


def _calls(name: str) -> Iterator[tuple[ast.Call, dict[str, ast.expr]]]:
    """Every call of `name` in pipeline/ and scoring/, with its function's local assignments."""
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for scope in ast.walk(tree):
            if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assigned = {
                target.id: node.value
                for node in ast.walk(scope)
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(scope):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                    if called == name:
                        yield node, assigned


def reasons_in_code() -> set[str]:
    found: set[str] = set()
    for name in ("Invalid", "OutsideWindow"):
        for call, assigned in _calls(name):
            found.update(_strings(call.args[0], assigned))
    return found


def causes_in_code() -> set[str]:
    """Causes given to `detect_change` as literals (`scoring.changes`, `scoring.watch`), and
    the ones `ActionResult.actor_score_cause` names (the variable the others pass on)."""
    found: set[str] = set()
    for call, _ in _calls("detect_change"):
        found.update(_literal(call.args[-1]))
    acting = ast.parse((REPO / "scoring" / "acting.py").read_text())
    for node in ast.walk(acting):
        if isinstance(node, ast.FunctionDef) and node.name == "actor_score_cause":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    found.update(_literal(ret.value))
    return found


def _literal(node: ast.expr) -> set[str]:
    """{the string} for a string literal, else nothing (a variable passed on)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    return set()


def documented(heading: str) -> set[str]:
    """First-column codes of the table under `heading` in docs/operations.md."""
    section = OPERATIONS.split(heading + "\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M))


def test_every_dead_letter_reason_is_documented() -> None:
    in_code = reasons_in_code()
    assert {"bad_value", "bad_utf8", "ts_in_future", "bad_engagement"} <= in_code
    assert documented("### Dead-letter reasons") == in_code


def test_the_dead_letter_schema_names_every_reason() -> None:
    schema = json.loads((SCHEMAS / "influence.dead_letter.v1.json").read_text())
    description = schema["properties"]["reason"]["description"]
    assert set(re.findall(r"[a-z][a-z0-9_]*", description)) >= reasons_in_code()


def test_every_score_change_cause_is_documented() -> None:
    in_code = causes_in_code()
    assert in_code == {"engagement", "reciprocity", "topics", "audience", "decay"}
    assert documented("## Score-change events") == in_code
    schema = json.loads((SCHEMAS / "influence.score.changed.v1.json").read_text())
    assert set(schema["properties"]["cause"]["enum"]) == in_code


def test_dead_letter_fields_are_documented_as_the_code_writes_them() -> None:
    schema = json.loads((SCHEMAS / "influence.dead_letter.v1.json").read_text())
    assert documented("## Dead letters") == set(schema["properties"]) == set(schema["required"])
