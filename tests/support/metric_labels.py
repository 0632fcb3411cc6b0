"""Which label values the code gives each metric, read from the source (no service runs), and
the metrics reference docs/METRICS.md read back, so a unit test can hold one to the other.

A `metrics.X.labels(k=...)` value is known when it is a string, an f-string (a template: its
`{...}` parts become `*`), a conditional of those, or a local name assigned only such values
(or looped over a tuple of them) in the same function; anything else (a status from a message,
a module-level tuple) is dynamic, and its label is then documented in prose.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mev_common import metrics

REPO = Path(__file__).resolve().parents[2]
SOURCES = (REPO / "services", REPO / "libs/common/mev_common")
METRICS_DOC = REPO / "docs/METRICS.md"


@dataclass
class LabelUse:
    """Every value one label of one metric is given in code; `dynamic` once any is unknown."""

    values: set[str] = field(default_factory=set)
    dynamic: bool = False
    where: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def exported_name(metric: object) -> str:
    """The family as a scrape shows it: a counter's `_total`, an info's `_info`."""
    name = str(metric._name)  # type: ignore[attr-defined]
    kind = metric._type  # type: ignore[attr-defined]
    return name + {"counter": "_total", "info": "_info"}.get(kind, "")


def label_uses() -> dict[tuple[str, str], LabelUse]:
    """(exported metric name, label) -> the values the code gives it."""
    uses: dict[tuple[str, str], LabelUse] = defaultdict(LabelUse)
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            text = path.read_text()
            if ".labels(" not in text:
                continue
            tree = ast.parse(text, str(path))
            parents = {
                child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
            }
            for node in ast.walk(tree):
                metric = _labelled_metric(node)
                if metric is None:
                    continue
                assert isinstance(node, ast.Call)
                for keyword in node.keywords:
                    use = uses[(exported_name(getattr(metrics, metric)), str(keyword.arg))]
                    values = _resolve(keyword.value, _scope(node, parents))
                    if values is None:
                        use.dynamic = True
                        continue
                    use.values |= values
                    for value in values:
                        use.where[value].add(f"{path.relative_to(REPO)}:{node.lineno}")
    return dict(uses)


def _labelled_metric(node: ast.AST) -> str | None:
    """`X` of a `metrics.X.labels(...)` call (or `X.labels(...)` inside metrics.py)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if node.func.attr != "labels":
        return None
    target = node.func.value
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if isinstance(target, ast.Attribute) and getattr(target.value, "id", None) != "metrics":
        return None
    if name is None or not hasattr(getattr(metrics, name, None), "_labelnames"):
        return None
    return name


def _scope(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    """The outermost function around `node` (a closure reads its parent's names), else the
    module."""
    scope = node
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            scope = node
    return scope


def _resolve(expr: ast.AST, scope: ast.AST, seen: frozenset[str] = frozenset()) -> set[str] | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.JoinedStr):
        parts = [v.value if isinstance(v, ast.Constant) else "*" for v in expr.values]
        return {"".join(str(p) for p in parts)}
    if isinstance(expr, ast.IfExp):
        body, orelse = _resolve(expr.body, scope, seen), _resolve(expr.orelse, scope, seen)
        return None if body is None or orelse is None else body | orelse
    if isinstance(expr, ast.Tuple):
        found: set[str] = set()
        for element in expr.elts:
            values = _resolve(element, scope, seen)
            if values is None:
                return None
            found |= values
        return found
    if isinstance(expr, ast.Name) and expr.id not in seen:
        return _resolve_name(expr.id, scope, seen | {expr.id})
    return None


def _resolve_name(name: str, scope: ast.AST, seen: frozenset[str]) -> set[str] | None:
    found: set[str] = set()
    sources: list[ast.AST] = []
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            sources.append(node.value)
        elif (
            isinstance(node, ast.comprehension | ast.For)
            and getattr(node.target, "id", None) == name
        ):
            sources.append(node.iter)
    if not sources:
        return None
    for source in sources:
        values = _resolve(source, scope, seen)
        if values is None:
            return None
        found |= values
    return found


@dataclass(frozen=True)
class DocRow:
    """One metric's row in docs/METRICS.md: its labels, each with the values it names."""

    name: str
    labels: dict[str, list[str]]


ROW = re.compile(r"^\| `(mev_bot_[a-z_]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|(.*)\|$")


def doc_rows() -> dict[str, DocRow]:
    """Metric name -> its row: `| name | type | exported by | labels | meaning |`, the labels
    cell `label`: `value`, `value`, ...; `label`: prose (a dynamic one)."""
    rows: dict[str, DocRow] = {}
    for line in METRICS_DOC.read_text().splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        labels: dict[str, list[str]] = {}
        for part in match.group(4).split(";"):
            head, _, rest = part.partition(":")
            label = head.strip().strip("`")
            if label and label != "-":
                labels[label] = re.findall(r"`([^`]+)`", rest)
        rows[match.group(1)] = DocRow(match.group(1), labels)
    return rows


def matches(value: str, token: str) -> bool:
    """A code value (a template's `*` is any text) against a documented token (a template
    there is written `<what>`)."""
    if "*" in value:
        pattern = ".+".join(re.escape(p) for p in value.split("*"))
        return re.fullmatch(pattern, token) is not None
    return value == token
