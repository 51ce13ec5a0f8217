"""Rule SQL AST (`sql.py`) -> Python closures, evaluated as EMQX's emqx_rule_runtime does.

Every expression compiles once into a closure taking an evaluation context `_Ctx`; evaluating a
rule walks no tree. Names are read as EMQX reads them:

- in SELECT/DO/FOREACH fields ("layered"): first from what the statement selected so far,
  then, when that gives nothing (None), from the columns;
- in WHERE/INCASE ("merged"): from the columns overlaid with what was selected.

A path into ``payload`` decodes the payload's JSON once per evaluation (the decoded value is
cached, as EMQX's process-dictionary ``rule_payload``); a payload that is not JSON then raises,
as it does in EMQX. Comparisons follow emqx_rule_runtime:compare/3 (a number against a string
converts the string; ``undefined`` compares false except to itself) and Erlang's term order.
Errors EMQX raises at run time (a function's bad argument, ``NOT`` over a non-comparison, a WHERE
that is not a condition) raise `RuleEvalError` or the function's own exception.
"""
from __future__ import annotations

import operator
import re
import time

import orjson

from emqpy.mqtt.topic import matches as topic_matches
from emqpy.rule_engine import funcs, maps
from emqpy.rule_engine.funcs_base import exact_eq, loose_eq, term_key
from emqpy.rule_engine.sql import Statement

__all__ = ["CompiledRule", "RuleEvalError", "compile_statement", "compare", "error_clause"]

_UNSET = object()
_LAYERED, _MERGED = "layered", "merged"


class RuleEvalError(Exception):
    """A rule SQL that EMQX accepts failing on a message (EMQX's runtime exceptions)."""


class _Ctx:
    """One evaluation: `a` the selected map (or overlay), `c` the columns, `pl` the decoded
    payload cache, `pflav` where the selected map's ``payload`` key came from (see _put)."""
    __slots__ = ("a", "c", "pl", "pflav")

    def __init__(self, a, c, pl=_UNSET):
        self.a = a
        self.c = c
        self.pl = pl
        self.pflav = None


def _decode_payload(ctx: _Ctx, value):
    if not isinstance(value, str):
        return value
    if ctx.pl is _UNSET:
        try:
            ctx.pl = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise RuleEvalError(f"decode_json_failed: {value[:200]!r}") from None
    return ctx.pl


# --------------------------------------------------------------------------- comparisons

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]+(?:[eE][-+]?[0-9]+)?")


def _number(s: str):
    """binary_to_integer/1, else binary_to_float/1 (strict: "1.0", not "1" or "1e3")."""
    if _INT.fullmatch(s):
        return int(s)
    if _FLOAT.fullmatch(s):
        return float(s)
    raise RuleEvalError(f"badarg: {s[:100]!r} is not a number")


_NUMBER_OPS = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "=": operator.eq,
    "<>": operator.ne, "!=": operator.ne,
}
_EQUALITY_OPS = {"=": True, "<>": False, "!=": False}
_ORDER_OPS = {
    ">": lambda a, b: term_key(a) > term_key(b), "<": lambda a, b: term_key(a) < term_key(b),
    ">=": lambda a, b: term_key(a) >= term_key(b), "<=": lambda a, b: term_key(a) <= term_key(b),
    "=": loose_eq, "<>": lambda a, b: not loose_eq(a, b), "!=": lambda a, b: not loose_eq(a, b),
}


def compare(op: str, left, right) -> bool:
    """emqx_rule_runtime:compare/3."""
    if left is None or right is None:
        if left is not right:
            return False
        if op == "=~":
            raise RuleEvalError("=~ needs a topic and a filter, got undefined")
        return op in ("=", "<=", ">=")
    cl, cr = left.__class__, right.__class__
    if op == "=~":
        if cl is not str or cr is not str:
            raise RuleEvalError(f"=~ needs a topic and a filter, got {left!r} and {right!r}")
        return topic_matches(right, left)
    if cl is cr and (cl is int or cl is float):
        return _NUMBER_OPS[op](left, right)
    if cl is str and cr is str and op in _EQUALITY_OPS:
        return (left == right) is _EQUALITY_OPS[op]
    if (cl is int or cl is float) and cr is str:
        right = _number(right)
    elif cl is str and (cr is int or cr is float):
        left = _number(left)
    elif cl is bool and cr is str:
        left = "true" if left else "false"
    elif cl is str and cr is bool:
        right = "true" if right else "false"
    return _ORDER_OPS[op](left, right)


# --------------------------------------------------------------------------- functions

_PROVIDER_PREFIXES = ("emqx_rule_funcs", "EmqxRuleFuncs")


def _raiser(message: str):
    def fail(*_args):
        raise RuleEvalError(message)
    return fail


def _resolve_function(ref):
    """(fn, needs_columns) for a call's reference; unknown functions fail when called, as in
    EMQX (it resolves names at run time)."""
    if ref[0] == "var":
        name = ref[1]
        found = funcs.lookup(name)
        if found is None:
            return _raiser(f"sql_function_not_supported: {name}"), False
        return found
    steps = ref[1]
    if ref[0] != "path" or len(steps) != 2 or steps[0][0] != "key" or steps[1][0] != "key":
        return _raiser(f"bad_sql_function_reference: {_erl_repr(ref)}"), False
    module, name = steps[0][1], steps[1][1]
    if not module.startswith(_PROVIDER_PREFIXES):
        return _raiser(f"sql_function_provider_module_not_allowed: {module}"), False
    if module != "emqx_rule_funcs":
        return _raiser(f"sql_function_provider_module_not_loaded: {module}"), False
    found = funcs.lookup(name)
    if found is None:
        return _raiser(f"sql_function_not_supported: {module}.{name}"), False
    return found


def _arith_function(op: str):
    found = funcs.lookup(op)
    if found is None:
        return _raiser(f"arithmetic operator {op!r} is not available")
    return found[0]


# --------------------------------------------------------------------------- values

def _compile_value(node, mode: str):
    kind = node[0] if isinstance(node, tuple) else node
    if kind == "const":
        value = node[1]
        return lambda ctx: value
    if kind == "var":
        return _compile_var(node[1], mode)
    if kind == "path":
        return _compile_path(node[1], mode)
    if kind == "range":
        begin, end = node[1], node[2]
        return lambda ctx: maps.range_gen(begin, end)
    if kind == "get_range":
        begin, end, data = node[1], node[2], _compile_value(node[3], mode)
        return lambda ctx: maps.range_get(begin, end, data(ctx))
    if kind == "list":
        items = [_compile_value(item, mode) for item in node[1]]
        return lambda ctx: [item(ctx) for item in items]
    if kind == "arith":
        fn = _arith_function(node[1])
        left, right = _compile_value(node[2], mode), _compile_value(node[3], mode)
        return lambda ctx: fn(left(ctx), right(ctx))
    if kind == "pos":
        return _compile_value(node[1], mode)
    if kind == "neg":
        operand = _compile_value(node[1], mode)

        def negate(ctx):
            v = operand(ctx)
            if v.__class__ is int or v.__class__ is float:
                return -v
            raise RuleEvalError(f"badarith: -({v!r})")
        return negate
    if kind == "cmp":
        return _compile_compare(node, mode)
    if kind == "case":
        return _compile_case(node, mode)
    if kind == "call":
        return _compile_call(node, mode)
    # and/or/not/in/as are conditions, not values: EMQX's eval/2 has no clause for them
    what = {"and": "AND", "or": "OR", "not": "NOT", "in": "IN", "as": "AS"}.get(kind, kind)
    return _raiser(f"function_clause: {what} cannot be evaluated as a value")


def _compile_var(name: str, mode: str):
    if mode == _LAYERED:
        def layered(ctx):
            v = ctx.a.get(name)
            if v is None:
                v = ctx.c.get(name)
            return v
        return layered

    def merged(ctx):
        a = ctx.a
        if name in a:
            return a[name]
        return ctx.c.get(name)
    return merged


def _has_dynamic_index(steps) -> bool:
    return any(kind == "index" and arg[0] != "const" for kind, arg in steps)


def _compile_walk(steps):
    """A function (data, org) -> the value at `steps` below `data` (None if missing)."""
    steps = tuple(steps)
    if len(steps) == 1 and steps[0][0] == "key":
        key = steps[0][1]

        def one_key(data, org):
            if data.__class__ is dict:
                return data.get(key)
            return maps.get_step(("key", key), data, org)
        return one_key
    if all(kind == "key" for kind, _ in steps):
        keys = tuple(arg for _, arg in steps)

        def keys_walk(data, org):
            for key in keys:
                if data.__class__ is dict:
                    data = data.get(key)
                else:
                    data = maps.get_step(("key", key), data, org)
                if data is None:
                    return None
            return data
        return keys_walk

    def walk(data, org):
        for step in steps:
            data = maps.get_step(step, data, org)
            if data is None:
                return None
        return data
    return walk


def _compile_path(steps, mode: str):
    head = steps[0][1]
    rest = steps[1:]
    if head == "payload":
        walk_rest = _compile_walk(rest)

        def in_layer(ctx, layer):
            if "payload" not in layer:
                return None
            payload = _decode_payload(ctx, layer["payload"])
            return walk_rest(payload, payload)
    else:
        walk_all = _compile_walk(steps)

        def in_layer(ctx, layer):
            return walk_all(layer, layer)

    if mode == _LAYERED:
        def layered(ctx):
            v = in_layer(ctx, ctx.a)
            if v is None:
                v = in_layer(ctx, ctx.c)
            return v
        return layered

    if _has_dynamic_index(steps) and head != "payload":
        # an index read from elsewhere in the map needs the whole merged map
        def merged_full(ctx):
            return in_layer(ctx, {**ctx.c, **ctx.a})
        return merged_full

    def merged(ctx):
        return in_layer(ctx, ctx.a if head in ctx.a else ctx.c)
    return merged


def _compile_compare(node, mode: str):
    op = node[1]
    left, right = _compile_value(node[2], mode), _compile_value(node[3], mode)
    if op not in _ORDER_OPS and op != "=~":
        return _raiser(f"function_clause: unknown comparison {op}")
    if node[3][0] == "const" and node[3][1].__class__ in (int, float) and op in _ORDER_OPS:
        # the common `x > 30`: numbers compare directly, anything else takes the full path
        const = node[3][1]
        fast = {">": lambda v: v > const, "<": lambda v: v < const,
                ">=": lambda v: v >= const, "<=": lambda v: v <= const,
                "=": lambda v: v == const, "<>": lambda v: v != const,
                "!=": lambda v: v != const}[op]

        def compare_const(ctx):
            v = left(ctx)
            if v.__class__ is int or v.__class__ is float:
                return fast(v)
            return compare(op, v, const)
        return compare_const
    return lambda ctx: compare(op, left(ctx), right(ctx))


def _compile_case(node, mode: str):
    _, on, whens, other = node
    other_fn = _compile_value(other, mode) if other is not None else (lambda ctx: None)
    if on is None:
        clauses = [(_compile_condition(cond, mode), _compile_value(value, mode))
                   for cond, value in whens]

        def searched(ctx):
            for cond, value in clauses:
                if cond(ctx) is True:
                    return value(ctx)
            return other_fn(ctx)
        return searched
    on_fn = _compile_value(on, mode)
    clauses = [(_compile_value(cond, mode), _compile_value(value, mode)) for cond, value in whens]

    def switch(ctx):
        for cond, value in clauses:
            if exact_eq(on_fn(ctx), cond(ctx)):
                return value(ctx)
        return other_fn(ctx)
    return switch


def _compile_call(node, mode: str):
    fn, needs_columns = _resolve_function(node[1])
    args = [_compile_value(arg, mode) for arg in node[2]]
    if needs_columns:
        if mode == _LAYERED:
            # EMQX hands such a function its [Selected, Columns] list, not a map: the column
            # functions (topic(), clientid(), ...) give what they give without columns
            def call_layered(ctx):
                return fn([ctx.a, ctx.c], *[arg(ctx) for arg in args])
            return call_layered

        def call_merged(ctx):
            return fn({**ctx.c, **ctx.a}, *[arg(ctx) for arg in args])
        return call_merged
    if len(args) == 1:
        (only,) = args
        return lambda ctx: fn(only(ctx))
    if len(args) == 2:
        first, second = args
        return lambda ctx: fn(first(ctx), second(ctx))
    return lambda ctx: fn(*[arg(ctx) for arg in args])


# --------------------------------------------------------------------------- conditions

def _compile_condition(node, mode: str):
    """EMQX's match_conditions/2: returns what the condition gives (True/False normally)."""
    if node is None:
        return lambda ctx: True
    kind = node[0]
    if kind == "and":
        left, right = _compile_condition(node[1], mode), _compile_condition(node[2], mode)

        def both(ctx):
            x = left(ctx)
            if x is True:
                return right(ctx)
            if x is False:
                return False
            raise RuleEvalError(f"badarg: {x!r} AND ...")
        return both
    if kind == "or":
        left, right = _compile_condition(node[1], mode), _compile_condition(node[2], mode)

        def either(ctx):
            x = left(ctx)
            if x is False:
                return right(ctx)
            if x is True:
                return True
            raise RuleEvalError(f"badarg: {x!r} OR ...")
        return either
    if kind == "not":
        operand = _compile_value(node[1], mode)

        def negation(ctx):
            v = operand(ctx)
            return (not v) if v.__class__ is bool else False
        return negation
    if kind == "in":
        value = _compile_value(node[1], mode)
        if all(item[0] == "const" for item in node[2]):
            consts = tuple(item[1] for item in node[2])

            def member_of_consts(ctx):
                v = value(ctx)
                cls = v.__class__
                return any(c.__class__ is cls and c == v for c in consts)
            return member_of_consts
        items = [_compile_value(item, mode) for item in node[2]]

        def member(ctx):
            v = value(ctx)
            candidates = [item(ctx) for item in items]
            return any(exact_eq(v, c) for c in candidates)
        return member
    if kind == "call":
        return _compile_call(node, mode)
    if kind == "cmp":
        return _compile_compare(node, mode)
    if kind == "const" and node[1].__class__ is bool:
        value = node[1]
        return lambda ctx: value
    return _raiser(f"function_clause: {_erl_repr(node)} is not a condition")


def _require_bool(cond, clause: str):
    def checked(ctx):
        v = cond(ctx)
        if v is True or v is False:
            return v
        raise RuleEvalError(f"case_clause: {clause} gave {v!r}, not a boolean")
    return checked


# --------------------------------------------------------------------------- fields

def _erl_repr(node) -> str:
    """Erlang's ~p of a value or AST node, for EMQX's generated field names."""
    if node is None:
        return "undefined"
    if node is True or node is False:
        return "true" if node else "false"
    if isinstance(node, (int, float)):
        return repr(node)
    if isinstance(node, str):
        return "<<" + orjson.dumps(node).decode() + ">>"
    if isinstance(node, tuple) and node and node[0] == "var":
        return "{var," + _erl_repr(node[1]) + "}"
    if isinstance(node, tuple) and node and node[0] == "path":
        steps = ",".join("{key," + _erl_repr(arg) + "}" if kind == "key"
                         else "{index," + _erl_repr(arg) + "}" for kind, arg in node[1])
        return "{path,[" + steps + "]}"
    if isinstance(node, tuple) and node and node[0] == "const":
        return "{const," + _erl_repr(node[1]) + "}"
    if isinstance(node, tuple):
        return "{" + ",".join(_erl_repr(x) for x in node) + "}"
    return str(node)


_OP_NAMES = {"+": "'+'", "-": "'-'", "*": "'*'", "/": "'/'", "div": "'div'", "mod": "'mod'",
             "=": "'='", "=~": "'=~'", ">": "'>'", "<": "'<'", "<=": "'<='", ">=": "'>='",
             "<>": "'<>'", "!=": "'!='", "~=": "'~='"}


def _ephemeral_name(node):
    """EMQX's name for an unaliased field that is not a name or path: ``_v_<type>_<x>_<time>``
    (None when EMQX has none and fails to store the value)."""
    kind = node[0]
    if kind == "list":
        part = f"list_{len(node[1])}"
    elif kind == "range":
        part = f"range_{{{node[1]},{node[2]}}}"
    elif kind == "const":
        part = "const_" + _erl_repr(node[1])
    elif kind in ("arith", "cmp"):
        part = "op_" + _OP_NAMES.get(node[1], node[1])
    elif kind == "case":
        part = "case_" + ("<<>>" if node[1] is None else _erl_repr(node[1]))
    elif kind == "call":
        part = "fun_" + _erl_repr(node[1])
    else:
        return None
    return lambda: f"_v_{part}_{time.time_ns()}"


def _put(ctx: _Ctx, target: dict, tflav, ref, value, aflav):
    """nested_put of `value` at `ref` into `target` (changed in place, its nested containers
    copied); returns the new flavor of target's "payload" key.

    EMQX keeps columns' keys as atoms and selected names as binaries; before a put below
    "payload" it decodes a JSON payload string only when both use the same form. `aflav` and
    `tflav` ("atom"/"bin") carry that so the same puts keep or replace the payload's keys."""
    if ref[0] == "var":
        key = ref[1]
        if key == "payload" and "payload" not in target:
            tflav = aflav
        target[key] = value
        return tflav
    steps = ref[1]
    key = steps[0][1]
    if key == "payload":
        if "payload" in target:
            if tflav == aflav:
                target["payload"] = _decode_payload(ctx, target["payload"])
        else:
            tflav = aflav
    sub = target.get(key)
    target[key] = maps.put_path(steps[1:], value, sub, target)
    return tflav


class _Field:
    __slots__ = ("star", "value", "alias", "explicit", "name_fn", "unnamed", "payload_alias")

    def __init__(self, node, mode=_LAYERED):
        self.star = node == "*"
        self.unnamed = False
        self.name_fn = None
        self.payload_alias = False
        self.explicit = not self.star and node[0] == "as"
        self.alias = None
        if self.star:
            return
        if self.explicit:
            self.value = _compile_value(node[1], mode)
            self.alias = node[2]
            if self.alias[0] == "const":
                # `AS true`: EMQX fails storing the value
                self.unnamed = True
            return
        self.value = _compile_value(node, mode)
        kind = node[0]
        if kind == "var":
            self.alias = node
        elif kind == "const" and isinstance(node[1], str):
            self.alias = ("var", node[1])
        elif kind in ("path", "get_range"):
            self.alias = node if kind == "path" else node[3]
            self.payload_alias = self.alias[0] == "path" and self.alias[1][0][1] == "payload"
            if self.alias[0] == "const":
                self.unnamed = True
        else:
            self.alias = None
            self.name_fn = _ephemeral_name(node)
            self.unnamed = self.name_fn is None

    def key(self, columns):
        """The alias to store under, and its flavor (see _put)."""
        if self.name_fn is not None:
            return ("var", self.name_fn()), "bin"
        if self.payload_alias and "payload" in columns:
            return self.alias, "atom"
        return self.alias, "bin"


def _select(fields, ctx: _Ctx, columns: dict) -> dict:
    """select_and_transform/2: the selected map, built field by field."""
    action = ctx.a
    for field in fields:
        if field.star:
            action.update(columns)
            if "payload" in columns:
                ctx.pflav = "atom"
            continue
        value = field.value(ctx)
        if field.unnamed:
            raise RuleEvalError("function_clause: a field without a usable name")
        ref, aflav = field.key(columns)
        ctx.pflav = _put(ctx, action, ctx.pflav, ref, value, aflav)
    return action


class CompiledRule:
    """A compiled rule SQL. `evaluate(columns)` -> list of outputs, or None for no result."""

    def __init__(self, sql: str, stmt: Statement):
        self.sql = sql
        self.statement = stmt
        self.froms = tuple(stmt.froms)
        self.is_foreach = stmt.is_foreach
        self._where = _require_bool(_compile_condition(stmt.where, _MERGED), "WHERE")
        self._has_where = stmt.where is not None
        if not stmt.is_foreach:
            self._fields = [_Field(f) for f in stmt.fields]
            self._simple = all(not f.star and f.alias is not None and f.alias[0] == "var"
                               and f.alias[1] != "payload" for f in self._fields)
            if self._simple:
                self._plain = [(f.value, f.alias[1]) for f in self._fields]
            return
        # FOREACH: all fields but the last are evaluated for their side effects (aliases)
        self._collect = [_Field(f) for f in stmt.fields]
        last = stmt.fields[-1]
        if last != "*" and last[0] == "as":
            alias = last[2]
            self._coll_key = alias[1] if alias[0] != "path" else ".".join(
                str(arg) for _, arg in alias[1])
        else:
            self._coll_key = "item"
        self._doeach = [_Field(f) for f in stmt.doeach]
        self._incase = _require_bool(_compile_condition(stmt.incase, _MERGED), "INCASE")

    def __repr__(self):
        return f"<CompiledRule {self.sql!r}>"

    def evaluate(self, columns: dict):
        """The outputs EMQX hands to the actions: SELECT -> [selected]; FOREACH -> one per kept
        element; None when nothing comes out (WHERE false, nothing left after INCASE)."""
        if self.is_foreach:
            out = self._foreach(columns)
            return out or None
        return self._select_one(columns)

    def test(self, columns: dict):
        """EMQX's sqltester result: the selected map (SELECT) or the list of outputs (FOREACH,
        possibly empty); None when the WHERE clause is false (EMQX's ``nomatch``)."""
        if self.is_foreach:
            return self._foreach(columns)
        out = self._select_one(columns)
        return None if out is None else out[0]

    def _select_one(self, columns):
        action = {}
        ctx = _Ctx(action, columns)
        stage = "select_and_transform_error"
        try:
            if self._simple:
                for value, key in self._plain:
                    action[key] = value(ctx)
            else:
                _select(self._fields, ctx, columns)
            stage = "match_conditions_error"
            if self._has_where and not self._where(ctx):
                return None
        except Exception as exc:
            exc.rule_sql_clause = stage
            raise
        return [action]

    def _foreach(self, columns):
        stage = "select_and_collect_error"
        try:
            action, collection, pl = self._collect_items(columns)
            merged = {**columns, **action}
            where_ctx = _Ctx({}, merged, pl)
            stage = "match_conditions_error"
            if self._has_where and not self._where(where_ctx):
                return None
            out = []
            key = self._coll_key
            for item in collection:
                with_item = dict(merged)
                with_item[key] = item
                where_ctx.c = with_item
                stage = "match_incase_error"
                if not self._incase(where_ctx):
                    continue
                if not self._doeach:
                    out.append(with_item)
                    continue
                stage = "doeach_error"
                do_ctx = _Ctx({}, with_item, where_ctx.pl)
                out.append(_select(self._doeach, do_ctx, with_item))
                where_ctx.pl = do_ctx.pl
        except Exception as exc:
            exc.rule_sql_clause = stage
            raise
        return out

    def _collect_items(self, columns):
        """select_and_collect/2: the selected map, the list to iterate, the payload cache."""
        action = {}
        ctx = _Ctx(action, columns)
        fields = self._collect
        cols, cols_flav = columns, "atom"
        value = None
        for i, field in enumerate(fields):
            if field.star:
                raise RuleEvalError("function_clause: FOREACH over *")
            ctx.c = cols
            value = field.value(ctx)
            if field.unnamed:
                raise RuleEvalError("function_clause: a field without a usable name")
            ref, aflav = field.key(cols)
            if field.explicit and i < len(fields) - 1:
                # an alias is also visible to the next fields as a column
                if cols is columns:
                    cols = dict(columns)
                cols_flav = _put(ctx, cols, cols_flav, ref, value, aflav)
            ctx.pflav = _put(ctx, action, ctx.pflav, ref, value, aflav)
        return action, (value if isinstance(value, list) else []), ctx.pl


def error_clause(exc: BaseException) -> str | None:
    """Which part of the rule an evaluation error came from, by EMQX's names:
    ``select_and_transform_error`` (SELECT fields), ``match_conditions_error`` (WHERE),
    ``select_and_collect_error`` (FOREACH fields), ``match_incase_error`` (INCASE),
    ``doeach_error`` (DO); None for an exception that did not come from `evaluate`."""
    return getattr(exc, "rule_sql_clause", None)


def compile_statement(sql: str, stmt: Statement) -> CompiledRule:
    return CompiledRule(sql, stmt)
