"""Which `data.*` paths the policies read, and on which line, from regorus's own AST.

A small abstract interpretation: every expression's value is the set of data paths it
may stand for (`zones := object.get(data.inventory, "zones", {})` makes `zones` stand
for data.inventory.zones, so `zones[name].cidrs` reads data.inventory.zones[_].cidrs).
Variables, value rules, imports and function parameters carry paths, `some x in c` and
`c[i]` step into `c[_]`, and `object.get` with literal keys steps into those keys. The
policy input carries inventory records too (orchestrator.policy.input), so reading
`input.assets[_].zone` reads data.inventory.assets[_].zone.

A read is `whole` when its value is used (compared, printed, put in a step): then all of
it counts as read. Navigating through a value, or only testing its type or size, reads
that key and nothing under it. That tells an unread key from one a policy really uses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import regorus

from orchestrator.policy.regoast import Module, Node, dotted, is_node, kind_of, line_of, modules_of

DataPath = tuple[str, ...]  # ("data", "inventory", "zones", "*", "cidrs"); "*" is any key
WILDCARD = "*"
MAX_PASSES = 10  # values flow through rules and parameters; a few passes reach a fixpoint

# What the policy input holds of the inventory: one record per asset or identity, with its
# inventory key added as `id`, and for an asset how the findings named it (`matched_by`);
# neither is a key of the record in the data (orchestrator/policy/input.py adds them).
ENRICHED: dict[DataPath, DataPath] = {
    ("input", "assets"): ("data", "inventory", "assets", WILDCARD),
    ("input", "identities"): ("data", "inventory", "identities", WILDCARD),
}
ENRICHMENT_KEYS = frozenset({"id", "matched_by"})
# Builtins that look at a value's type or size, not at what it holds.
SHALLOW_BUILTINS = frozenset(
    {
        "count",
        "is_array",
        "is_boolean",
        "is_null",
        "is_number",
        "is_object",
        "is_set",
        "is_string",
        "type_name",
    }
)

Values = set[DataPath]


@dataclass(frozen=True)
class Read:
    """One data path a policy reads: `path` without the leading "data"."""

    path: DataPath
    file: str
    line: int
    whole: bool


@dataclass
class _Scope:
    module: Module
    env: dict[str, Values] = field(default_factory=dict)

    def child(self) -> _Scope:
        return _Scope(self.module, dict(self.env))


def policy_reads(engine: regorus.Engine) -> list[Read]:
    """Every data path the compiled policy modules read (tests excluded: they bring their
    own data with `with`), each with its file and line."""
    return _Analysis(modules_of(engine)).run()


class _Analysis:
    def __init__(self, modules: list[Module]) -> None:
        self.modules = modules
        self.packages = [m.package.split(".") for m in modules]
        self.value_rules: set[tuple[str, str]] = set()
        self.functions: set[tuple[str, str]] = set()
        self.rule_values: dict[tuple[str, str], Values] = defaultdict(set)
        self.params: dict[tuple[str, str], list[Values]] = defaultdict(list)
        self.reads: dict[tuple[DataPath, str, int], bool] = {}
        for module in modules:
            for rule in module.rules:
                self._declare(module, rule)

    def _declare(self, module: Module, rule: Node) -> None:
        kind, payload = kind_of(rule)
        head = payload.get("head") if kind == "Spec" else None
        if kind == "Default":
            name = dotted(payload["refr"])
            if name and len(name) == 1:
                self.value_rules.add((module.package, name[0]))
            return
        if head is None:
            return
        head_kind, head_payload = kind_of(head)
        name = dotted(head_payload["refr"])
        if name is None or len(name) != 1:
            return
        if head_kind == "Func":
            self.functions.add((module.package, name[0]))
        elif head_kind == "Compr":
            self.value_rules.add((module.package, name[0]))

    def run(self) -> list[Read]:
        for _ in range(MAX_PASSES):
            before = self._state()
            for module in self.modules:
                for rule in module.rules:
                    self._rule(module, rule)
            if self._state() == before:
                break
        return [
            Read(path[1:], file, line, whole) for (path, file, line), whole in self.reads.items()
        ]

    def _state(self) -> tuple[Any, ...]:
        return (
            sorted((k, sorted(v)) for k, v in self.rule_values.items()),
            sorted((k, [sorted(s) for s in v]) for k, v in self.params.items()),
        )

    # --- paths ------------------------------------------------------------------------

    def _namespace(self, rest: DataPath) -> bool:
        """data.bulkhead…: on the way to the policies' own packages, not a data document."""
        return any(package[: len(rest)] == list(rest) for package in self.packages)

    def _package_of(self, rest: DataPath) -> list[str] | None:
        """The package `rest` lies inside (data.bulkhead.lib.approval: bulkhead.lib)."""
        inside = [p for p in self.packages if len(rest) > len(p) and list(rest[: len(p)]) == p]
        return max(inside, key=len) if inside else None

    def _document(self, path: DataPath) -> bool:
        rest = path[1:]
        return (
            path[0] == "data"
            and bool(rest)
            and not self._namespace(rest)
            and self._package_of(rest) is None
        )

    def _record(self, path: DataPath, scope: _Scope, line: int, *, whole: bool) -> None:
        if self._document(path):
            key = (path, scope.module.file, line)
            self.reads[key] = self.reads.get(key, False) or whole

    def _step(self, path: DataPath, segment: str, scope: _Scope, line: int) -> Values:
        new = (*path, segment)
        if path[0] == "input":
            if len(new) <= 2:
                return {new}
            enriched = ENRICHED.get(new[:2])
            return {enriched} if enriched is not None and len(new) == 3 else set()
        if path[0] != "data":
            return set()
        if segment in ENRICHMENT_KEYS and path in ENRICHED.values():
            return set()  # added to the record by the enrichment, not in the data
        package = self._package_of(new[1:])
        if package is not None:
            # A rule: a value rule stands for what its value may be; a function or a
            # partial set is no data path.
            rule = (".".join(package), new[len(package) + 1])
            return set(self.rule_values[rule]) if rule in self.value_rules else set()
        if self._namespace(new[1:]):
            return {new}
        self._record(new, scope, line, whole=False)
        return {new}

    def _extend(self, values: Values, segment: str, scope: _Scope, line: int) -> Values:
        out: Values = set()
        for path in values:
            out |= self._step(path, segment, scope, line)
        return out

    # --- expressions --------------------------------------------------------------------

    def _lookup(self, name: str, scope: _Scope) -> Values:
        if name in scope.env:
            return scope.env[name]
        if name in ("data", "input"):
            return {(name,)}
        if name in scope.module.imports:
            return {scope.module.imports[name]}
        rule = (scope.module.package, name)
        return set(self.rule_values[rule]) if rule in self.value_rules else set()

    def _value(self, node: Node, scope: _Scope) -> Values:
        """The data paths `node` may stand for, recording what it navigates on the way."""
        kind, payload = kind_of(node)
        line = line_of(payload)
        if kind == "Var":
            return self._lookup(str(payload["value"]), scope)
        if kind == "RefDot":
            base = self._value(payload["refr"], scope)
            return self._extend(base, str(payload["field"][1]), scope, line)
        if kind == "RefBrack":
            base = self._value(payload["refr"], scope)
            index_kind, index = kind_of(payload["index"])
            if index_kind == "String":
                return self._extend(base, str(index["value"]), scope, line)
            self._use(payload["index"], scope)
            return self._extend(base, WILDCARD, scope, line)
        if kind == "Call":
            return self._call(payload, scope, line)
        if kind in ("ArrayCompr", "SetCompr", "ObjectCompr"):
            inner = scope.child()
            self._query(payload["query"], inner)
            for part in ("term", "key", "value"):
                if isinstance(payload.get(part), dict):
                    self._use(payload[part], inner)
            return set()
        if kind == "AssignExpr":
            self._assign(payload, scope)
            return set()
        self._use_children(payload, scope)
        return set()

    def _use(self, node: Node, scope: _Scope) -> None:
        """`node`'s value is used (compared, printed, built into a step): all of it is read."""
        line = line_of(kind_of(node)[1])
        for path in self._value(node, scope):
            self._record(path, scope, line, whole=True)

    def _use_children(self, payload: Any, scope: _Scope) -> None:
        """Literals, operators and anything else: each sub-expression is used."""
        if isinstance(payload, dict):
            children: list[Any] = list(payload.values())
        else:
            children = payload if isinstance(payload, list) else []
        for child in children:
            if is_node(child):
                self._use(child, scope)
            elif isinstance(child, dict | list):
                self._use_children(child, scope)

    def _call(self, payload: Node, scope: _Scope, line: int) -> Values:
        name = dotted(payload["fcn"])
        params: list[Node] = payload["params"]
        function = self._function(name, scope)
        if function is not None:
            slots = self.params[function]
            while len(slots) < len(params):
                slots.append(set())
            for index, param in enumerate(params):
                slots[index] |= self._value(param, scope)
            return set()
        builtin = ".".join(name or [])
        if builtin == "object.get" and len(params) >= 2:
            return self._object_get(params, scope, line)
        for param in params:
            if builtin in SHALLOW_BUILTINS:
                self._value(param, scope)
            else:
                self._use(param, scope)
        return set()

    def _object_get(self, params: list[Node], scope: _Scope, line: int) -> Values:
        values = self._value(params[0], scope)
        for default in params[2:]:
            self._use(default, scope)
        key_kind, key = kind_of(params[1])
        if key_kind == "String":
            segments = [str(key["value"])]
        elif key_kind == "Array" and all(kind_of(i)[0] == "String" for i in key["items"]):
            segments = [str(kind_of(i)[1]["value"]) for i in key["items"]]
        else:
            self._use(params[1], scope)
            segments = [WILDCARD]
        for segment in segments:
            values = self._extend(values, segment, scope, line)
        return values

    def _function(self, name: list[str] | None, scope: _Scope) -> tuple[str, str] | None:
        if not name:
            return None
        package = scope.module.package
        if len(name) == 1 and (package, name[0]) in self.functions:
            return (package, name[0])
        base = scope.module.imports.get(name[0])
        full = [*base[1:], *name[1:]] if base else (name[1:] if name[0] == "data" else [])
        candidate = (".".join(full[:-1]), full[-1]) if len(full) > 1 else None
        return candidate if candidate in self.functions else None

    # --- statements and rules -----------------------------------------------------------

    def _assign(self, payload: Node, scope: _Scope) -> None:
        """`x := e` and `x = e`: x stands for what e does; other unifications use both sides."""
        lhs, rhs = payload["lhs"], payload["rhs"]
        for target, source in ((lhs, rhs), (rhs, lhs)):
            kind, var = kind_of(target)
            name = str(var["value"]) if kind == "Var" else ""
            if name and (payload["op"] == "ColEq" or name not in scope.env):
                scope.env[name] = self._value(source, scope)
                return
            if payload["op"] == "ColEq":
                break  # `:=` binds its left side only (a pattern on it: both are used)
        self._use(lhs, scope)
        self._use(rhs, scope)

    def _bind(self, node: Node | None, values: Values, scope: _Scope) -> None:
        if node is not None and kind_of(node)[0] == "Var":
            scope.env[str(kind_of(node)[1]["value"])] = values

    def _span_name(self, span: Any, scope: _Scope) -> str:
        """regorus gives `every` variables as spans of the source, not as nodes."""
        if not isinstance(span, dict):
            return ""
        return scope.module.source[span["start"] : span["end"]].decode()

    def _statement(self, statement: Node, scope: _Scope) -> None:
        kind, payload = kind_of(statement["literal"])
        line = line_of(payload)
        if kind == "SomeIn":
            collection = self._value(payload["collection"], scope)
            self._bind(payload.get("value"), self._extend(collection, WILDCARD, scope, line), scope)
            self._bind(payload.get("key"), set(), scope)
        elif kind == "Every":
            domain = self._value(payload["domain"], scope)
            inner = scope.child()
            if name := self._span_name(payload.get("value"), scope):
                inner.env[name] = self._extend(domain, WILDCARD, scope, line)
            self._query(payload["query"], inner)
        elif kind == "Expr" and kind_of(payload["expr"])[0] == "AssignExpr":
            self._assign(kind_of(payload["expr"])[1], scope)
        elif kind in ("Expr", "NotExpr"):
            # A bare reference is a test (defined, not false): it reads that key, not
            # what lies under it; an operator or a call in it uses its operands.
            self._value(payload["expr"], scope)
        elif kind != "SomeVars":
            self._use_children(payload, scope)

    def _query(self, query: Node, scope: _Scope) -> None:
        for statement in query.get("stmts", []):
            self._statement(statement, scope)

    def _rule(self, module: Module, rule: Node) -> None:
        kind, payload = kind_of(rule)
        scope = _Scope(module)
        if kind == "Default":
            self._head_value(module, payload["refr"], payload.get("value"), scope)
            return
        if kind != "Spec":
            return
        head_kind, head = kind_of(payload["head"])
        name = dotted(head["refr"])
        if head_kind == "Func" and name is not None:
            slots = self.params[(module.package, name[-1])]
            for index, arg in enumerate(head.get("args", [])):
                self._bind(arg, slots[index] if index < len(slots) else set(), scope)
        head_scope = scope
        for index, body in enumerate(payload.get("bodies", [])):
            inner = scope.child()
            self._query(body["query"], inner)
            head_scope = inner if index == 0 else head_scope
            if isinstance(body.get("assign"), dict):  # an `else := value`
                self._head_value(module, head["refr"], body["assign"]["value"], inner)
        assign = head.get("assign")
        value = assign["value"] if isinstance(assign, dict) else head.get("key")
        self._head_value(module, head["refr"], value, head_scope, function=head_kind == "Func")

    def _head_value(
        self,
        module: Module,
        refr: Node,
        value: Node | None,
        scope: _Scope,
        *,
        function: bool = False,
    ) -> None:
        """A value rule stands for its value's paths; anything else built is used."""
        name = dotted(refr)
        if not function and name is not None and (module.package, name[-1]) in self.value_rules:
            if value is not None and len(name) == 1:
                self.rule_values[(module.package, name[0])] |= self._value(value, scope)
            return
        if kind_of(refr)[0] == "RefBrack":
            self._use(kind_of(refr)[1]["index"], scope)
        if value is not None:
            self._use(value, scope)
