"""Rule SQL parser: EMQX 5.8.1's rule language (the ``rulesql`` 0.2.1 grammar) into an AST.

The lexer follows rulesql's leex rules (longest match, the first rule wins a tie), so the same
quirks hold: ``'..'`` is a string and ``".."`` a name (a variable, or a topic in FROM), quotes
are trimmed rather than unescaped, ``div``/``mod`` are operators only in lower case, a float
needs a ``.``, ``true``/``false`` are constants, a ``--`` comment runs to a newline. The parser
is lark's LALR with rulesql's precedence written as grammar levels; shift/reduce conflicts
resolve as shift, as yecc does. Trees become plain tuples (`compiler.py` compiles them):

    ('const', v)  ('var', name)  ('path', (('key', k) | ('index', idx), ...))
    ('range', b, e)  ('get_range', b, e, ref)  ('list', items)
    ('arith', op, l, r)  ('neg', x)  ('pos', x)  ('cmp', op, l, r)
    ('case', on | None, ((cond, value), ...), else | None)  ('call', ref, args)
    ('as', expr, alias)  ('and', l, r)  ('or', l, r)  ('not', x)  ('in', x, items)  '*'

an index ``idx`` being ('const', int | 'head' | 'tail' | bool) or a ('var'|'path') reference.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import lark
from lark.lexer import Lexer, Token

__all__ = ["SqlError", "Statement", "parse", "compile_sql"]


class SqlError(ValueError):
    """A rule SQL EMQX refuses: ``str(e)`` says what and where (line and column)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 expected: tuple[str, ...] = ()):
        super().__init__(message)
        self.line = line
        self.column = column
        self.expected = expected


@dataclass(frozen=True)
class Statement:
    """A parsed rule SQL (EMQX's ``#select{}``)."""
    is_foreach: bool
    fields: tuple
    doeach: tuple
    incase: object          # None: no INCASE
    froms: tuple[str, ...]
    where: object           # None: no WHERE


# ---------------------------------------------------------------------------------- lexer

KEYWORDS = ("AND", "AS", "CASE", "IF", "ELSE", "ELSIF", "FROM", "IN", "NOT", "OR", "SELECT",
            "WHEN", "THEN", "FOREACH", "INCASE", "END", "DO", "WHERE")
_PUNCT = {"-": "_MINUS", "+": "_PLUS", "*": "STAR", "/": "_SLASH", "(": "_LPAR", ")": "_RPAR",
          "[": "_LSQB", "]": "_RSQB", ",": "_COMMA", ".": "_DOT", "div": "_DIV", "mod": "_MOD"}
# (token kind, pattern) in rulesql's rule order: the longest match wins, then the first rule.
_RULES = [
    ("STRING", re.compile(r"'(?:[^']|'')*'")),
    ("NAME_Q", re.compile(r'"(?:[^"]|"")*"')),
    ("COMPARISON", re.compile(r"=~|~=|!=|<>|<=|>=|=|<|>")),
    ("PUNCT", re.compile(r"[-+*/()\[\],.]|div|mod")),
    ("RANGE", re.compile(r"\[([-+]?[0-9]+)\.\.([-+]?[0-9]+)\]")),
    ("WORD", re.compile(r"[A-Za-z][A-Za-z0-9_$@~]*")),
    ("INTNUM", re.compile(r"[0-9]+")),
    ("APPROXNUM", re.compile(r"([0-9]+\.?[0-9]+)([eE][-+]?[0-9]+)?[fFdD]?")),
    ("WS", re.compile(r"[ \t\r\n]+")),
    ("COMMENT", re.compile(r"--.*\n")),
]
_ERLANG_FLOAT = re.compile(r"[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?")
_DISPLAY = {"_LPAR": "'('", "_RPAR": "')'", "_LSQB": "'['", "_RSQB": "']'", "_COMMA": "','",
            "_DOT": "'.'", "_MINUS": "'-'", "_PLUS": "'+'", "STAR": "'*'", "_SLASH": "'/'",
            "_DIV": "'div'", "_MOD": "'mod'", "NAME": "a name", "STRING": "a string",
            "INTNUM": "an integer", "APPROXNUM": "a float", "RANGE": "a range",
            "COMPARISON": "a comparison", "$END": "end of input"}


def _display(term: str) -> str:
    if term in _DISPLAY:
        return _DISPLAY[term]
    return term.lstrip("_")


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def tokenize(text: str):
    pos, end = 0, len(text)
    while pos < end:
        best_kind, best = None, None
        for kind, rx in _RULES:
            m = rx.match(text, pos)
            if m and m.end() > pos and (best is None or m.end() > best.end()):
                best_kind, best = kind, m
        line, col = _position(text, pos)
        if best is None:
            raise SqlError(f"illegal character {text[pos]!r} at line {line}, column {col}",
                           line, col)
        chars = best.group(0)
        pos = best.end()
        if best_kind in ("WS", "COMMENT"):
            continue
        if best_kind == "PUNCT":
            kind, value = _PUNCT[chars], chars
        elif best_kind == "WORD":
            upper = chars.upper()
            kind, value = ("_" + upper, chars) if upper in KEYWORDS else ("NAME", chars)
        elif best_kind == "NAME_Q":
            kind, value = "NAME", chars.strip('"')
        elif best_kind == "STRING":
            kind, value = "STRING", chars.strip("'")
        elif best_kind == "APPROXNUM":
            if not _ERLANG_FLOAT.fullmatch(chars):
                # rulesql hands these to list_to_float/1, which refuses them
                raise SqlError(f"bad float {chars!r} at line {line}, column {col}", line, col)
            kind, value = "APPROXNUM", chars
        else:
            kind, value = best_kind, chars
        yield Token(kind, value, start_pos=best.start(), line=line, column=col,
                    end_pos=best.end())


class _SqlLexer(Lexer):
    def __init__(self, lexer_conf):
        pass

    def lex(self, data):
        return tokenize(data)


# -------------------------------------------------------------------------------- grammar

_GRAMMAR = r"""
start: _SELECT selection event_exp?                                   -> select_stmt
     | _FOREACH selection do_clause? incase_clause? event_exp?        -> foreach_stmt

event_exp: from_clause where_clause? | where_clause
from_clause: _FROM from_column (_COMMA from_column)*
from_column: NAME | STRING
where_clause: _WHERE search_condition
do_clause: _DO selection
incase_clause: _INCASE search_condition

selection: select_field (_COMMA select_field)*
select_field: STAR                          -> field_star
            | case_when_exp                 -> field_plain
            | case_when_exp alias           -> field_as
            | case_when_exp _AS alias       -> field_as
            | scalar_opt_as                 -> field_plain

case_when_exp: _CASE when_then+ else_clause? _END                   -> case_search
             | _CASE scalar_opt_as when_then+ else_clause? _END     -> case_switch
             | _LPAR case_when_exp _RPAR
when_then: _WHEN search_condition _THEN scalar_opt_as
else_clause: _ELSE scalar_opt_as

?scalar_opt_as: expr
              | expr COMPARISON expr                 -> cmp
              | expr _AS alias                       -> as_
              | expr COMPARISON expr _AS alias       -> cmp_as
              | expr alias                           -> as_

?search_condition: or_cond
?or_cond: and_cond | or_cond _OR and_cond            -> or_
?and_cond: not_cond | and_cond _AND not_cond         -> and_
?not_cond: _NOT not_cond -> not_ | cond_atom
?cond_atom: _LPAR or_cond _RPAR | predicate
?predicate: scalar_opt_as
          | expr _IN _LPAR in_list _RPAR             -> in_
          | expr _NOT _IN _LPAR in_list _RPAR        -> not_in
in_list: scalar_opt_as (_COMMA scalar_opt_as)*

?expr: term | expr _PLUS term -> add | expr _MINUS term -> sub
?term: factor | term STAR factor -> mul | term _SLASH factor -> fdiv
     | term _DIV factor -> idiv | term _MOD factor -> mod
?factor: atom | _PLUS factor -> pos | _MINUS factor -> neg
?atom: literal | computed_var | function_ref | _LPAR expr _RPAR

?literal: STRING -> string | INTNUM -> integer | APPROXNUM -> float | RANGE -> range_lit
?computed_var: ref | ref RANGE -> get_range | list_ref
list_ref: _LSQB (expr (_COMMA expr)*)? _RSQB
ref: NAME path_seg*
alias: ref
path_seg: _DOT NAME -> seg_key | _DOT INTNUM -> seg_key | _DOT STRING -> seg_key
        | _LSQB ref _RSQB -> seg_ref
        | _LSQB INTNUM _RSQB -> seg_pos | _LSQB _PLUS INTNUM _RSQB -> seg_pos
        | _LSQB _MINUS INTNUM _RSQB -> seg_neg

function_ref: ref _LPAR (farg (_COMMA farg)*)? _RPAR          -> call
            | _DIV _LPAR farg (_COMMA farg)* _RPAR            -> call_div
            | _MOD _LPAR farg (_COMMA farg)* _RPAR            -> call_mod
?farg: fsum | fsum COMPARISON fsum -> cmp
?fsum: fterm | fsum _PLUS fterm -> add | fsum _MINUS fterm -> sub
?fterm: ffactor | fterm STAR ffactor -> mul | fterm _SLASH ffactor -> fdiv
      | fterm _DIV ffactor -> idiv | fterm _MOD ffactor -> mod
?ffactor: fatom | _PLUS ffactor -> pos | _MINUS ffactor -> neg
?fatom: literal | computed_var | function_ref | case_when_exp | _LPAR farg _RPAR

%declare _SELECT _FOREACH _FROM _WHERE _DO _INCASE _CASE _WHEN _THEN _ELSE _END _AS _AND _OR
%declare _NOT _IN _IF _ELSIF NAME STRING INTNUM APPROXNUM RANGE COMPARISON STAR
%declare _LPAR _RPAR _LSQB _RSQB _COMMA _DOT _PLUS _MINUS _SLASH _DIV _MOD
"""


def _v(tok):
    return str(tok)


def _range(tok):
    b, e = _RULES[4][1].fullmatch(str(tok)).groups()
    return int(b), int(e)


class _ToAst(lark.Transformer):
    # statements
    def select_stmt(self, c):
        fields, *rest = c
        return _statement(False, fields, (), None, rest)

    def foreach_stmt(self, c):
        fields, doeach, incase, rest = c[0], (), None, []
        for item in c[1:]:
            if item[0] == "do":
                doeach = item[1]
            elif item[0] == "incase":
                incase = item[1]
            else:
                rest.append(item)
        return _statement(True, fields, doeach, incase, rest)

    def event_exp(self, c):
        froms, where = (), None
        for kind, value in c:
            if kind == "from":
                froms = value
            else:
                where = value
        return ("event", froms, where)

    def from_clause(self, c):
        return ("from", tuple(c))

    def from_column(self, c):
        return _v(c[0])

    def where_clause(self, c):
        return ("where", c[0])

    def do_clause(self, c):
        return ("do", c[0])

    def incase_clause(self, c):
        return ("incase", c[0])

    def selection(self, c):
        return tuple(c)

    def field_star(self, c):
        return "*"

    def field_plain(self, c):
        return c[0]

    def field_as(self, c):
        return ("as", c[0], c[1])

    # CASE
    def case_when_exp(self, c):
        return c[0]

    def case_search(self, c):
        return _case(None, c)

    def case_switch(self, c):
        return _case(c[0], c[1:])

    def when_then(self, c):
        return ("when", c[0], c[1])

    def else_clause(self, c):
        return ("else", c[0])

    # conditions and comparisons
    def cmp(self, c):
        return ("cmp", str(c[1]), c[0], c[2])

    def cmp_as(self, c):
        return ("as", ("cmp", str(c[1]), c[0], c[2]), c[3])

    def as_(self, c):
        return ("as", c[0], c[1])

    def or_(self, c):
        return ("or", c[0], c[1])

    def and_(self, c):
        return ("and", c[0], c[1])

    def not_(self, c):
        return ("not", c[0])

    def in_(self, c):
        return ("in", c[0], c[1])

    def not_in(self, c):
        return ("not", ("in", c[0], c[1]))

    def in_list(self, c):
        return tuple(c)

    # arithmetic
    def add(self, c):
        return ("arith", "+", c[0], c[1])

    def sub(self, c):
        return ("arith", "-", c[0], c[1])

    def mul(self, c):
        return ("arith", "*", c[0], c[2])

    def fdiv(self, c):
        return ("arith", "/", c[0], c[1])

    def idiv(self, c):
        return ("arith", "div", c[0], c[1])

    def mod(self, c):
        return ("arith", "mod", c[0], c[1])

    def pos(self, c):
        return ("pos", c[0])

    def neg(self, c):
        return ("neg", c[0])

    # literals and references
    def string(self, c):
        return ("const", _v(c[0]))

    def integer(self, c):
        return ("const", int(_v(c[0])))

    def float(self, c):
        return ("const", float(_v(c[0])))

    def range_lit(self, c):
        b, e = _range(c[0])
        return ("range", b, e)

    def get_range(self, c):
        b, e = _range(c[1])
        return ("get_range", b, e, c[0])

    def list_ref(self, c):
        return ("list", tuple(c))

    def ref(self, c):
        head, segs = c[0], c[1:]
        name = _v(head)
        if name in ("true", "false"):
            if segs:
                raise SqlError(f"{name} cannot start a path (line {head.line}, column "
                               f"{head.column})", head.line, head.column)
            return ("const", name == "true")
        if not segs:
            return ("var", name)
        return ("path", (("key", name),) + tuple(segs))

    def alias(self, c):
        return c[0]

    def seg_key(self, c):
        tok = c[0]
        if tok.type == "NAME" and _v(tok) in ("true", "false"):
            raise SqlError(f"{_v(tok)} cannot be a path key (line {tok.line}, column "
                           f"{tok.column})", tok.line, tok.column)
        return ("key", _v(tok))

    def seg_ref(self, c):
        return ("index", c[0])

    # exactly "0" (not "00") means the head, "-0" the tail, as in rulesql
    def seg_pos(self, c):
        return ("index", ("const", "head" if _v(c[0]) == "0" else int(_v(c[0]))))

    def seg_neg(self, c):
        return ("index", ("const", "tail" if _v(c[0]) == "0" else -int(_v(c[0]))))

    # functions
    def call(self, c):
        return ("call", c[0], tuple(c[1:]))

    def call_div(self, c):
        return ("call", ("var", "div"), tuple(c))

    def call_mod(self, c):
        return ("call", ("var", "mod"), tuple(c))


def _case(on, clauses):
    whens, other = [], None
    for clause in clauses:
        if clause[0] == "when":
            whens.append((clause[1], clause[2]))
        else:
            other = clause[1]
    return ("case", on, tuple(whens), other)


def _statement(is_foreach, fields, doeach, incase, rest):
    if not rest:
        raise SqlError("Missing FROM or WHERE")
    _, froms, where = rest[0]
    return Statement(is_foreach, fields, doeach, incase, froms, where)


@functools.cache
def _parser() -> lark.Lark:
    # built on first use: the LALR tables take a few tens of milliseconds
    return lark.Lark(_GRAMMAR, parser="lalr", lexer=_SqlLexer, maybe_placeholders=False)


def _clean(sql: str) -> str:
    """rulesql's sql_clean/1: trim spaces and newlines at both ends, drop every "\\n/"."""
    if not isinstance(sql, str):
        raise SqlError("SQL must be a string")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise SqlError("SQL is not valid UTF-8") from None
    sql = re.sub(r"^[ \r\n]+|[ \r\n]+$", "", sql).replace("\n/", "")
    if not sql.strip():
        raise SqlError("empty SQL")
    return sql


# deeper expressions are refused, so that neither compiling nor evaluating a rule can exhaust
# Python's stack
MAX_DEPTH = 100


def _depth(stmt: Statement) -> int:
    deepest = 0
    stack = [(node, 1) for node in (stmt.fields, stmt.doeach, stmt.incase, stmt.where)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, tuple):
            if node and node[0] == "path":
                depth += len(node[1])   # a put builds one level per step
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
    return deepest


def parse(sql: str) -> Statement:
    """Parse one rule SQL statement; raises SqlError."""
    text = _clean(sql)
    try:
        stmt = _parser().parse(text)
        stmt = _ToAst().transform(stmt)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, SqlError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise SqlError(f"SQL nested more than {MAX_DEPTH} levels deep") from None
        raise
    except lark.exceptions.UnexpectedToken as exc:
        tok = exc.token
        try:
            # what could really come next (LALR's table lists more for merged states)
            accepted = exc.interactive_parser.accepts()
        except Exception:  # pragma: no cover - lark without the interactive parser
            accepted = exc.expected
        expected = tuple(sorted(_display(t) for t in accepted if t != "$END"))
        if tok.type == "$END":
            where = "at end of input"
            line, col = _position(text, len(text))
        else:
            where = f"before: {str(tok)!r}"
            line, col = tok.line, tok.column
        msg = f"syntax error {where} (line {line}, column {col})"
        if expected:
            msg += "; expected " + ", ".join(expected)
        raise SqlError(msg, line, col, expected) from None
    except lark.exceptions.UnexpectedInput as exc:  # pragma: no cover - lexer errors raise above
        raise SqlError(f"syntax error at line {exc.line}, column {exc.column}",
                       exc.line, exc.column) from None
    except SqlError:
        raise
    except RecursionError:
        raise SqlError(f"SQL nested more than {MAX_DEPTH} levels deep") from None
    if _depth(stmt) > MAX_DEPTH:
        raise SqlError(f"SQL nested more than {MAX_DEPTH} levels deep")
    if not stmt.froms:
        raise SqlError("empty_from_clause: the rule SQL needs a FROM")
    return stmt


def compile_sql(sql: str):
    """Parse and compile a rule SQL into a `CompiledRule` (see `compiler.py`); raises SqlError."""
    from emqpy.rule_engine.compiler import compile_statement
    return compile_statement(sql, parse(sql))
