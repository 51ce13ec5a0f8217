"""The rule SQL parser: rulesql's own tests (test/rulesql_tests.erl) with the same statements and
trees (in emqpy's tuple form, see emqpy/rule_engine/sql.py), and the errors a bad SQL gets."""
from __future__ import annotations

import pytest

from emqpy.rule_engine.sql import SqlError, compile_sql, parse


def V(name):
    return ("var", name)


def C(value):
    return ("const", value)


def P(*steps):
    return ("path", tuple(("key", s) if isinstance(s, str) else ("index", s) for s in steps))


def fields(sql):
    return parse(sql).fields


@pytest.mark.parametrize("sql, expected", [
    ('SELECT * FROM "abc"', ("*",)),
    ("SELECT x FROM abc", (V("x"),)),
    ("SELECT 'x' FROM abc", (C("x"),)),
    ("SELECT x,y FROM abc", (V("x"), V("y"))),
    ("SELECT x,y,* FROM abc", (V("x"), V("y"), "*")),
    ("SELECT x,*,y FROM abc", (V("x"), "*", V("y"))),
    # precedence
    ("SELECT z + x * y as z FROM abc",
     (("as", ("arith", "+", V("z"), ("arith", "*", V("x"), V("y"))), V("z")),)),
    ("SELECT (z + x) * y as z FROM abc",
     (("as", ("arith", "*", ("arith", "+", V("z"), V("x")), V("y")), V("z")),)),
    ("SELECT -a * b FROM abc", (("arith", "*", ("neg", V("a")), V("b")),)),
    ("SELECT a - b - c FROM abc", (("arith", "-", ("arith", "-", V("a"), V("b")), V("c")),)),
    ('SELECT [1+1, abs(-1), abs(abs(1-2)), [1-2]] FROM "abc"', (("list", (
        ("arith", "+", C(1), C(1)),
        ("call", V("abs"), (("neg", C(1)),)),
        ("call", V("abs"), (("call", V("abs"), (("arith", "-", C(1), C(2)),)),)),
        ("list", (("arith", "-", C(1), C(2)),)))),)),
    # names are variables, quoted text constants
    ("SELECT a = b FROM abc", (("cmp", "=", V("a"), V("b")),)),
    ("SELECT a = 'b' FROM abc", (("cmp", "=", V("a"), C("b")),)),
    ("SELECT 1 = 1.1 FROM abc", (("cmp", "=", C(1), C(1.1)),)),
    ("SELECT '1' = '1.1' FROM abc", (("cmp", "=", C("1"), C("1.1")),)),
    ('SELECT "a b" FROM abc', (V("a b"),)),
    ("SELECT true, false, TRUE FROM abc", (C(True), C(False), V("TRUE"))),
    # paths
    ("SELECT a.b FROM abc", (P("a", "b"),)),
    ("SELECT a.b.c.d.e, e FROM abc", (P("a", "b", "c", "d", "e"), V("e"))),
    ("SELECT a[1].b FROM abc", (P("a", C(1), "b"),)),
    ("SELECT a.b[1] FROM abc", (P("a", "b", C(1)),)),
    ("SELECT a[-1].b FROM abc", (P("a", C(-1), "b"),)),
    ("SELECT a[1][2].b[c] FROM abc", (P("a", C(1), C(2), "b", V("c")),)),
    ("SELECT a.1 FROM abc", (P("a", "1"),)),
    ("SELECT a.1.'b' FROM abc", (P("a", "1", "b"),)),
    ("SELECT a.'1.5' FROM abc", (P("a", "1.5"),)),
    ("SELECT 1.100 FROM abc", (C(1.1),)),
    ("SELECT a.b.c[1].'1'.100 FROM abc", (P("a", "b", "c", C(1), "1", "100"),)),
    ("SELECT a[e.f] FROM abc", (P("a", P("e", "f")),)),
    ("SELECT a[e[1]] FROM abc", (P("a", P("e", C(1))),)),
    # puts
    ("SELECT e as c.d FROM abc", (("as", V("e"), P("c", "d")),)),
    ("SELECT e.f as c.d[1] FROM abc", (("as", P("e", "f"), P("c", "d", C(1))),)),
    ("SELECT e as a[-0] FROM abc", (("as", V("e"), P("a", C("tail"))),)),
    ("SELECT e as a[0] FROM abc", (("as", V("e"), P("a", C("head"))),)),
    ("SELECT e as a[-1] FROM abc", (("as", V("e"), P("a", C(-1))),)),
    # ranges
    ("SELECT [1..3] as a FROM abc", (("as", ("range", 1, 3), V("a")),)),
    ("SELECT a[1..3] as b FROM abc", (("as", ("get_range", 1, 3, V("a")), V("b")),)),
    ("SELECT a[1..-1] as b FROM abc", (("as", ("get_range", 1, -1, V("a")), V("b")),)),
    ("SELECT [1..3] FROM abc", (("range", 1, 3),)),
    ("SELECT a.e[1..3] FROM abc", (("get_range", 1, 3, P("a", "e")),)),
    ("SELECT 'hah' as c, a.b[1..3] as d FROM abc",
     (("as", C("hah"), V("c")), ("as", ("get_range", 1, 3, P("a", "b")), V("d")))),
    ("SELECT a[b][1..3] as r FROM abc", (("as", ("get_range", 1, 3, P("a", V("b"))), V("r")),)),
    # AS
    ('SELECT a as b FROM "abc"', (("as", V("a"), V("b")),)),
    ('SELECT a b FROM "abc"', (("as", V("a"), V("b")),)),
    ('SELECT a as b, x, * FROM "abc"', (("as", V("a"), V("b")), V("x"), "*")),
    ('SELECT -1 FROM "abc"', (("neg", C(1)),)),
    ('SELECT x mod y FROM "abc"', (("arith", "mod", V("x"), V("y")),)),
    ('SELECT x div y FROM "abc"', (("arith", "div", V("x"), V("y")),)),
    ('SELECT div(1,a) FROM "abc"', (("call", V("div"), (C(1), V("a"))),)),
    ('SELECT mod(1,a) FROM "abc"', (("call", V("mod"), (C(1), V("a"))),)),
    ('SELECT nth(1,a) as a FROM "abc"', (("as", ("call", V("nth"), (C(1), V("a"))), V("a")),)),
    ('SELECT a = \'1\' as a FROM "abc"', (("as", ("cmp", "=", V("a"), C("1")), V("a")),)),
    ('SELECT case when a > b then 1 end FROM "abc"',
     (("case", None, ((("cmp", ">", V("a"), V("b")), C(1)),), None),)),
    ('SELECT case when a > b then a when a < b then 1 else 2 end as d FROM "abc"',
     (("as", ("case", None, ((("cmp", ">", V("a"), V("b")), V("a")),
                             (("cmp", "<", V("a"), V("b")), C(1))), C(2)), V("d")),)),
    ('SELECT (case x when 1 then 2 end) y FROM "abc"',
     (("as", ("case", V("x"), ((C(1), C(2)),), None), V("y")),)),
    # lists
    ("SELECT [] FROM abc", (("list", ()),)),
    ("SELECT [1,2,3] as list FROM abc", (("as", ("list", (C(1), C(2), C(3))), V("list")),)),
    ("SELECT [a,1,'b',[3,3.4,e]] FROM abc",
     (("list", (V("a"), C(1), C("b"), ("list", (C(3), C(3.4), V("e"))))),)),
    ("SELECT abc([1]) FROM abc", (("call", V("abc"), (("list", (C(1),)),)),)),
    # function arguments take comparisons and CASE
    ("SELECT f(a = 1, case when b then 1 end) FROM abc",
     (("call", V("f"), (("cmp", "=", V("a"), C(1)),
                        ("case", None, ((V("b"), C(1)),), None))),)),
    ("SELECT emqx_rule_funcs.abs(1) FROM abc", (("call", P("emqx_rule_funcs", "abs"), (C(1),)),)),
])
def test_parse_fields(sql, expected):
    assert fields(sql) == expected


@pytest.mark.parametrize("sql, froms", [
    ("SELECT * FROM abc", ("abc",)),
    ("SELECT * FROM abc, e, f, g", ("abc", "e", "f", "g")),
    ("SELECT * FROM 'abc'", ("abc",)),
    ("SELECT * FROM 'a','b','c'", ("a", "b", "c")),
    ('SELECT * FROM "a","b","c"', ("a", "b", "c")),
    ("SELECT * FROM \"foo 'bar' bazz\"", ("foo 'bar' bazz",)),
    ("SELECT * FROM 'foo \"bar\" bazz'", ('foo "bar" bazz',)),
    ("SELECT * FROM \"'foo'\"", ("'foo'",)),
    ("SELECT * FROM '\"foo\"'", ('"foo"',)),
    ('SELECT * FROM "测试专用topic"', ("测试专用topic",)),
    ('SELECT * FROM "$events/client_connected", "t/#"', ("$events/client_connected", "t/#")),
    # surrounding spaces and newlines do not count, a comment runs to the end of its line
    ('\r\n  SELECT * -- all of it\n FROM "t/#"  \n', ("t/#",)),
])
def test_parse_from(sql, froms):
    assert parse(sql).froms == froms


def test_parse_where():
    assert parse('SELECT * FROM "abc" WHERE 1 = 1').where == ("cmp", "=", C(1), C(1))
    assert parse('SELECT * FROM "abc" WHERE 1 = 1 and a < 2 or 3 != 3').where == (
        "or", ("and", ("cmp", "=", C(1), C(1)), ("cmp", "<", V("a"), C(2))),
        ("cmp", "!=", C(3), C(3)))
    assert parse('SELECT * FROM "abc" WHERE 1 = 1 and (a < 2 or 3 != 3)').where == (
        "and", ("cmp", "=", C(1), C(1)),
        ("or", ("cmp", "<", V("a"), C(2)), ("cmp", "!=", C(3), C(3))))
    assert parse("SELECT * FROM t WHERE not a = 1 and b in (1, 'x')").where == (
        "and", ("not", ("cmp", "=", V("a"), C(1))), ("in", V("b"), (C(1), C("x"))))
    assert parse("SELECT * FROM t WHERE b not in (1)").where == ("not", ("in", V("b"), (C(1),)))
    assert parse("SELECT * FROM t WHERE topic =~ 't/#'").where == (
        "cmp", "=~", V("topic"), C("t/#"))


def test_parse_foreach():
    stmt = parse("FOREACH a FROM abc")
    assert (stmt.is_foreach, stmt.fields, stmt.doeach, stmt.incase) == (True, (V("a"),), (), None)
    stmt = parse('FOREACH range(1,2) as list, list FROM "abc" WHERE 1 = 1')
    assert stmt.fields == (("as", ("call", V("range"), (C(1), C(2))), V("list")), V("list"))
    assert stmt.where == ("cmp", "=", C(1), C(1))
    assert parse("FOREACH a DO clientid FROM abc").doeach == (V("clientid"),)
    assert parse("FOREACH a DO item.a as a FROM abc").doeach == (("as", P("item", "a"), V("a")),)
    assert parse("FOREACH a incase a <> 1 FROM abc").incase == ("cmp", "<>", V("a"), C(1))
    assert parse("FOREACH a incase a > 1.2 or a < 0 FROM abc").incase == (
        "or", ("cmp", ">", V("a"), C(1.2)), ("cmp", "<", V("a"), C(0)))
    stmt = parse("FOREACH a DO a INCASE a <> 1 FROM abc")
    assert (stmt.doeach, stmt.incase) == ((V("a"),), ("cmp", "<>", V("a"), C(1)))


def test_keywords_are_case_insensitive():
    stmt = parse('select * from "t" where a = 1 AND b = 2')
    assert stmt.where[0] == "and"
    assert parse('SeLeCt x As y FrOm "t"').fields == (("as", V("x"), V("y")),)


@pytest.mark.parametrize("sql", [
    "SELECT 1.b FROM abc",
    "SELECT [1].b FROM abc",
    "SELECT a[1].[2] FROM abc",
    "SELECT a.1.100 FROM abc",
    "SELECT a.b[1..3].c FROM abc",
    "SELECT a.[1][1..3].c FROM abc",
    "SELECT a as [1..3] FROM abc",
    "SELECT a as e[1..3] FROM abc",
    "SELECT * FROM abc ec",
    "SELECT * FROM",
    "SELECT FROM t",
    "SELECT a, FROM t",
    "SELECT * FROM t WHERE",
    "SELECT * FROM t WHERE a = ",
    "SELECT if FROM t",
    "SELECT a FROM t WHERE (a = 1",
    "SELECT 1 + case when a then 1 end FROM t",   # CASE only as a field or an argument
    "SELECT (a = 1) = true FROM t",
    "SELECT _a FROM t",
    "SELECT a FROM t WHERE a = \"b",
    "SELECT 1.5f FROM t",
    "SELECT 12e5 FROM t",
    "DELETE FROM t",
    "SELECT a FROM t -- a trailing comment needs a newline",
])
def test_rejected(sql):
    with pytest.raises(SqlError):
        parse(sql)


@pytest.mark.parametrize("sql", ["", "\r\n  \r\n", "   "])
def test_empty_sql(sql):
    with pytest.raises(SqlError, match="empty"):
        parse(sql)


def test_missing_from_or_where():
    with pytest.raises(SqlError, match="Missing FROM or WHERE"):
        parse("SELECT a")
    # rulesql 0.2 parses a statement without FROM; a rule needs one
    with pytest.raises(SqlError, match="FROM"):
        parse("SELECT a WHERE a = 1")


def test_syntax_error_says_where_and_what_was_expected():
    with pytest.raises(SqlError) as err:
        compile_sql('SELECT a,\n  b c d FROM "t"')
    e = err.value
    assert (e.line, e.column) == (2, 7)
    assert "syntax error before: 'd'" in str(e)
    assert "line 2, column 7" in str(e)
    assert "FROM" in e.expected and "FROM" in str(e)


def test_error_at_end_of_input():
    with pytest.raises(SqlError) as err:
        parse('SELECT * FROM "t" WHERE a >')
    assert "end of input" in str(err.value)
    assert "a name" in err.value.expected


def test_illegal_character():
    with pytest.raises(SqlError) as err:
        parse('SELECT a FROM "t" WHERE a = #')
    assert str(err.value) == "illegal character '#' at line 1, column 29"


def test_sql_error_is_a_value_error():
    assert issubclass(SqlError, ValueError)
    with pytest.raises(ValueError):
        compile_sql("SELECT")


def test_strings_are_trimmed_not_unescaped():
    # rulesql trims the quotes around a string and keeps what is inside as written
    assert fields("SELECT 'it''s' FROM t") == (C("it''s"),)
    assert fields(r"SELECT 'a\nb' FROM t") == (C("a\\nb"),)
    assert fields("SELECT '' FROM t") == (C(""),)


def test_div_and_mod_are_lower_case_operators():
    assert fields("SELECT a div b, a mod b FROM t") == (
        ("arith", "div", V("a"), V("b")), ("arith", "mod", V("a"), V("b")))
    # DIV is a name: `a DIV` is `a AS DIV`
    assert fields("SELECT a DIV FROM t") == (("as", V("a"), V("DIV")),)
    assert fields("SELECT divide FROM t") == (V("divide"),)


@pytest.mark.parametrize("sql", [
    "SELECT " + "-" * 500 + "1 as a FROM t",
    "SELECT " + "[" * 300 + "]" * 300 + " FROM t",
    "SELECT a" + ".b" * 500 + " FROM t",
    "SELECT * FROM t WHERE " + " and ".join(["a = 1"] * 500),
])
def test_too_deep_is_refused(sql):
    with pytest.raises(SqlError, match="nested more than 100 levels"):
        compile_sql(sql)


def test_deep_but_reasonable_is_fine():
    rule = compile_sql("SELECT * FROM t WHERE " + " and ".join(["a = 1"] * 40))
    assert rule.evaluate({"a": 1}) == [{"a": 1}]


def test_expected_tokens_are_those_that_fit():
    with pytest.raises(SqlError) as err:
        parse("select a frm t")
    assert err.value.expected == ("','", "FROM", "WHERE")
    with pytest.raises(SqlError) as err:
        parse("select case when a then 1 from t")
    assert err.value.expected == ("ELSE", "END", "WHEN")
