"""Whether a new schema version still accepts what the previous one accepted (``BACKWARD``).

Two checks, and every finding of both is listed:

* JSON Schema, structurally: the two definitions are walked side by side (properties,
  items, ``$defs`` through local ``$ref``s, ``allOf``/``anyOf``/``oneOf`` branches) and every
  narrowing found is reported with its JSON pointer in the new definition. What cannot be
  compared this way (``if``/``then``/``else``, ``dependentSchemas``, a changed ``not``,
  remote or anchor ``$ref``s) is not reported: that is what examples are for.
* Examples, for both formats: documents the previous version accepted must still be
  accepted. For XSD this is the only check.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from integrationos.schemas.payloads import check_document
from integrationos.schemas.registry import ResolvedSchema

Finding = dict[str, Any]


def incompatibilities(previous: ResolvedSchema, new: ResolvedSchema, examples: list[Any]
                      ) -> list[Finding]:
    """Every way ``new`` rejects what ``previous`` accepted: ``{pointer, rule, message}``."""
    found = []
    if previous.format == new.format == "JSON_SCHEMA":
        found = structural(json.loads(previous.definition), json.loads(new.definition))
    return found + example_rejections(new, examples)


def example_rejections(schema: ResolvedSchema, examples: list[Any]) -> list[Finding]:
    """One finding per violation of each example, pointed at the example."""
    return [
        {"pointer": f"/examples/{i}", "rule": "EXAMPLE_REJECTED",
         "message": f"at {violation['pointer']}: {violation['message']}"}
        for i, example in enumerate(examples)
        for violation in check_document(schema, example)[1]
    ]


def structural(previous: Any, new: Any) -> list[Finding]:
    """The narrowings from one JSON Schema to the next that can be seen in their text."""
    walk = _Walk(previous, new)
    walk.compare(previous, new, "")
    return walk.found


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _allowed(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return schema.get("enum")


def _types(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types the schema can accept, as far as ``type``/``enum`` say (None: any)."""
    declared = schema.get("type")
    if declared is not None:
        return {declared} if isinstance(declared, str) else set(declared)
    allowed = _allowed(schema)
    if allowed is not None:
        return {_json_type(v) for v in allowed}
    branches = schema.get("anyOf") or schema.get("oneOf") or []
    found = [_types(b) if isinstance(b, dict) else None for b in branches]
    if not found or None in found:
        return None
    return set().union(*found)


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, pick: Any
           ) -> tuple[float, bool] | None:
    """The tighter of ``minimum``/``exclusiveMinimum`` (or the maxima) as (value, exclusive)."""
    found = [(schema[key], key == exclusive) for key in (inclusive, exclusive)
             if isinstance(schema.get(key), int | float) and not isinstance(schema[key], bool)]
    return pick(found) if found else None


def _lower(schema: dict[str, Any]) -> tuple[float, bool] | None:
    return _bound(schema, "minimum", "exclusiveMinimum", max)


def _upper(schema: dict[str, Any]) -> tuple[float, bool] | None:
    return _bound(schema, "maximum", "exclusiveMaximum", lambda f: min(f, key=lambda b: (
        b[0], not b[1])))


def _items(schema: dict[str, Any]) -> tuple[list[Any], Any]:
    """(positional item schemas, the schema of the items after them), for 2020-12 and 07."""
    if isinstance(schema.get("items"), list):
        return schema["items"], schema.get("additionalItems", True)
    return schema.get("prefixItems", []), schema.get("items", True)


class _Walk:
    """Compares two schemas node by node, collecting findings; roots resolve ``$ref``s."""

    def __init__(self, old_root: Any, new_root: Any) -> None:
        self.roots = (old_root, new_root)
        self.found: list[Finding] = []
        self.followed: set[tuple[Any, Any]] = set()

    def add(self, pointer: str, rule: str, message: str) -> None:
        self.found.append({"pointer": pointer or "/", "rule": rule, "message": message})

    def accepts_all_of(self, old: Any, new: Any) -> bool:
        """Whether ``new`` is (as far as can be seen) at least as accepting as ``old``."""
        probe = _Walk(*self.roots)
        probe.followed = set(self.followed)
        probe.compare(old, new, "")
        return not probe.found

    def _deref(self, root: Any, node: Any) -> Any:
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not (isinstance(ref, str) and ref.startswith("#") and ref[1:2] in ("", "/")):
            return node
        target = root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            elif isinstance(target, dict) and key in target:
                target = target[key]
            else:
                return node
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return target | rest if isinstance(target, dict) else target

    def compare(self, old: Any, new: Any, at: str) -> None:
        refs = (old.get("$ref") if isinstance(old, dict) else None,
                new.get("$ref") if isinstance(new, dict) else None)
        if any(isinstance(r, str) for r in refs):
            if refs in self.followed:  # walked already (or a cycle): report it once
                return
            self.followed.add(refs)
        followed = self._deref(self.roots[1], new)
        if followed is not new and isinstance(refs[1], str):
            at = refs[1][1:]  # findings point into the shared definition
        old, new = self._deref(self.roots[0], old), followed
        if old is False or new is True or new == {}:
            return
        if new is False:
            self.add(at, "NOW_REJECTED", "nothing is accepted here any more")
            return
        if not isinstance(new, dict):
            return
        old = {} if old is True or not isinstance(old, dict) else old
        self._values(old, new, at)
        self._bounds(old, new, at)
        self._objects(old, new, at)
        self._arrays(old, new, at)
        self._compositions(old, new, at)

    def _values(self, old: dict[str, Any], new: dict[str, Any], at: str) -> None:
        new_types, old_types = _types(new), _types(old)
        if "type" in new and new_types is not None:
            lost = ["any type"] if old_types is None else sorted(
                t for t in old_types
                if t not in new_types and not (t == "integer" and "number" in new_types))
            if lost:
                self.add(f"{at}/type", "TYPE_NARROWED", f"no longer accepts {', '.join(lost)}")
        new_allowed, old_allowed = _allowed(new), _allowed(old)
        if new_allowed is not None:
            key = "const" if "const" in new else "enum"
            if old_allowed is None:
                self.add(f"{at}/{key}", "ENUM_NARROWED", f"{key} added: any value was accepted")
            else:
                lost = [v for v in old_allowed if not any(_same(v, w) for w in new_allowed)]
                if lost:
                    shown = ", ".join(json.dumps(v)[:40] for v in lost[:10])
                    self.add(f"{at}/{key}", "ENUM_NARROWED", f"no longer accepts {shown}")
        if "pattern" in new and new["pattern"] != old.get("pattern"):
            self.add(f"{at}/pattern", "PATTERN_CHANGED",
                     f"pattern changed from {old.get('pattern')!r} to {new['pattern']!r}; "
                     "strings the old one accepted may be refused")

    def _bounds(self, old: dict[str, Any], new: dict[str, Any], at: str) -> None:
        for name, get, tighter in (
            ("minimum", _lower, lambda o, n: n[0] > o[0] or (n[0] == o[0] and n[1] > o[1])),
            ("maximum", _upper, lambda o, n: n[0] < o[0] or (n[0] == o[0] and n[1] > o[1])),
        ):
            o, n = get(old), get(new)
            if n is not None and (o is None or tighter(o, n)):
                now = f"{n[0]}{' (exclusive)' if n[1] else ''}"
                change = f"{now} added" if o is None else (
                    f"tightened from {o[0]}{' (exclusive)' if o[1] else ''} to {now}")
                self.add(f"{at}/{'exclusiveM' + name[1:] if n[1] else name}", "BOUND_TIGHTENED",
                         f"{name} {change}")
        for key in ("minLength", "minItems", "minProperties"):
            if key in new and new[key] > old.get(key, 0):
                self.add(f"{at}/{key}", "BOUND_TIGHTENED",
                         f"{key} raised from {old.get(key, 0)} to {new[key]}")
        for key in ("maxLength", "maxItems", "maxProperties"):
            if key in new and (key not in old or new[key] < old[key]):
                change = f"lowered from {old[key]} to" if key in old else "added:"
                self.add(f"{at}/{key}", "BOUND_TIGHTENED", f"{key} {change} {new[key]}")
        if "multipleOf" in new and ("multipleOf" not in old or (
                Fraction(str(old["multipleOf"])) / Fraction(str(new["multipleOf"]))
        ).denominator != 1):
            self.add(f"{at}/multipleOf", "BOUND_TIGHTENED",
                     f"multipleOf {new['multipleOf']} does not divide the previous "
                     f"{old.get('multipleOf', 'none')}")
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self.add(f"{at}/uniqueItems", "BOUND_TIGHTENED", "items must now be unique")

    def _objects(self, old: dict[str, Any], new: dict[str, Any], at: str) -> None:
        for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
            self.add(f"{at}/required", "REQUIRED_ADDED", f"{name!r} is now required")
        for key, names in new.get("dependentRequired", {}).items():
            extra = sorted(set(names) - set(old.get("dependentRequired", {}).get(key, [])))
            if extra:
                self.add(f"{at}/dependentRequired/{_escape(key)}", "REQUIRED_ADDED",
                         f"with {key!r} present, {', '.join(map(repr, extra))} now required")
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        for group in ("properties", "patternProperties"):
            old_group, new_group = old.get(group, {}), new.get(group, {})
            for name in sorted(set(old_group) | set(new_group)):
                pointer = f"{at}/{group}/{_escape(name)}"
                previous = old_group.get(name, old_extra)
                current = new_group.get(name, new_extra)
                if name not in old_group and previous in (True, {}):
                    if not self.accepts_all_of(True, current):
                        self.add(pointer, "PROPERTY_ADDED_TO_OPEN_MODEL",
                                 f"{name!r} is new and constrained, but the previous version "
                                 "accepted any value under that name (its additionalProperties "
                                 "was open)")
                elif name not in new_group and current is False and previous is not False:
                    self.add(pointer, "PROPERTY_REMOVED", f"{name!r} was removed and "
                             "additionalProperties is false, so it is now refused")
                else:
                    self.compare(previous, current, pointer)
        if new_extra is False and old_extra is not False:
            self.add(f"{at}/additionalProperties", "ADDITIONAL_PROPERTIES_CLOSED",
                     "properties not listed were accepted and now are refused")
        else:
            self.compare(old_extra, new_extra, f"{at}/additionalProperties")
        for key in ("propertyNames", "unevaluatedProperties"):
            self.compare(old.get(key, True), new.get(key, True), f"{at}/{key}")

    def _arrays(self, old: dict[str, Any], new: dict[str, Any], at: str) -> None:
        (old_prefix, old_rest), (new_prefix, new_rest) = _items(old), _items(new)
        positional = "items" if isinstance(new.get("items"), list) else "prefixItems"
        for i in range(max(len(old_prefix), len(new_prefix))):
            self.compare(old_prefix[i] if i < len(old_prefix) else old_rest,
                         new_prefix[i] if i < len(new_prefix) else new_rest,
                         f"{at}/{positional}/{i}")
        rest = "additionalItems" if positional == "items" else "items"
        self.compare(old_rest, new_rest, f"{at}/{rest}")
        self.compare(old.get("unevaluatedItems", True), new.get("unevaluatedItems", True),
                     f"{at}/unevaluatedItems")
        if "contains" in new:
            if "contains" not in old:
                self.add(f"{at}/contains", "CONTAINS_ADDED", "arrays must now contain a match")
            else:
                self.compare(old["contains"], new["contains"], f"{at}/contains")

    def _compositions(self, old: dict[str, Any], new: dict[str, Any], at: str) -> None:
        old_all = old.get("allOf", [])
        for i, branch in enumerate(new.get("allOf", [])):
            if not any(self.accepts_all_of(o, branch) for o in (*old_all, old)):
                self.compare(old_all[i] if i < len(old_all) else old, branch, f"{at}/allOf/{i}")
        for key in ("anyOf", "oneOf"):
            if key not in new:
                continue
            for i, branch in enumerate(old.get(key, [old])):
                if not any(self.accepts_all_of(branch, option) for option in new[key]):
                    what = f"branch {i} of the previous {key}" if key in old else "any value"
                    self.add(f"{at}/{key}", "BRANCHES_NARROWED",
                             f"{what} is not accepted by any branch of the new {key}")
        if "not" in new and "not" not in old:
            self.add(f"{at}/not", "NOT_ADDED", "a new 'not' refuses what it matches")
