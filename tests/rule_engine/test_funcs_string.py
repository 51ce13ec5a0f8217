"""String functions: port of emqx_rule_funcs_SUITE's string cases (t_lower_upper ..
t_unescape_hex, t_map_to_redis_hset_args) and emqx_variform_bif_tests, plus Erlang's
grapheme-cluster semantics."""
import pytest

from emqpy.rule_engine.funcs import SQLFunctionError

from .funcs_helpers import call


def test_lower_upper():
    assert call("upper", "abc4") == "ABC4"
    assert call("lower", "0ABC") == "0abc"


def test_reverse():
    assert call("reverse", "abcd") == "dcba"
    assert call("reverse", "1234") == "4321"
    assert call("reverse", "ae\u0301b") == "be\u0301a"        # clusters stay whole
    assert call("reverse", "a\r\nb") == "b\r\na"


def test_strlen():
    assert call("strlen", "abcd") == 4
    assert call("strlen", "你好") == 2
    assert call("strlen", "e\u0301") == 1
    assert call("strlen", "a\r\n") == 2


def test_substr():
    assert call("substr", "", 1) == ""
    assert call("substr", "abc", 1) == "bc"
    assert call("substr", "abcd", 1, 2) == "bc"
    assert call("substr", "abc", 5) == ""
    assert call("substr", "abc", 1, 10) == "bc"
    assert call("substr", "abc", 0, 0) == ""
    assert call("substr", "你好世界", 1, 2) == "好世"
    for args in (("abc", -1), ("abc", 0, -1), ("abc", 1.0), (1, 1)):
        with pytest.raises(SQLFunctionError):
            call("substr", *args)


def test_trim():
    assert call("trim", "") == ""
    assert call("ltrim", "") == ""
    assert call("rtrim", "") == ""
    assert call("trim", " abc ") == "abc"
    assert call("ltrim", " abc ") == "abc "
    assert call("rtrim", " abc") == " abc"
    assert call("trim", "\t\r\n abc \u2028") == "abc"
    assert call("trim", "\u00a0abc") == "\u00a0abc"    # not whitespace for Erlang's string


def test_rtrim_with_characters_takes_character_codes_as_erlang_does():
    assert call("rtrim", "abcxx", [ord("x")]) == "abc"
    with pytest.raises(SQLFunctionError):
        call("rtrim", "abcxx", "x")


def test_rm_prefix():
    assert call("rm_prefix", "abc", "ab") == "c"
    assert call("rm_prefix", "abc", "x") == "abc"
    assert call("rm_prefix", "abc", "") == "abc"
    assert call("rm_prefix", 12, "1") == 12


def test_split_all():
    assert call("split", "", "/") == []
    assert call("split", "/", "/") == []
    assert call("split", "/a/b/c", "/") == ["a", "b", "c"]
    assert call("split", "/a/b//c/", "/") == ["a", "b", "c"]
    assert call("split", "a,b,c", ",") == ["a", "b", "c"]
    assert call("split", "a, b ,c", ",") == ["a", " b ", "c"]
    assert call("split", "a,b,c\n", ",") == ["a", "b", "c\n"]
    assert call("split", "a,b,c\r\n", ",") == ["a", "b", "c\r\n"]


def test_split_notrim_all():
    assert call("split", "", "/", "notrim") == [""]
    assert call("split", "/", "/", "notrim") == ["", ""]
    assert call("split", "/a/b/c", "/", "notrim") == ["", "a", "b", "c"]
    assert call("split", "/a/b//c/", "/", "notrim") == ["", "a", "b", "", "c", ""]
    assert call("split", ",a,b,c\n", ",", "notrim") == ["", "a", "b", "c\n"]
    assert call("split", "a, b,c\r\n", ",", "notrim") == ["a", " b", "c\r\n"]
    assert call("split", "哈哈, 你好, 是的\r\n", ",", "notrim") == ["哈哈", " 你好", " 是的\r\n"]


def test_split_leading():
    assert call("split", "", "/", "leading") == []
    assert call("split", "/", "/", "leading") == []
    assert call("split", "/a/b/c", "/", "leading") == ["a/b/c"]
    assert call("split", "a/b//c/", "/", "leading") == ["a", "b//c/"]
    assert call("split", "a,b,c\n", ",", "leading") == ["a", "b,c\n"]
    assert call("split", "a b,c\r\n", ",", "leading") == ["a b", "c\r\n"]
    assert call("split", "哈哈, 你好, 是的\r\n", ",", "leading") == ["哈哈", " 你好, 是的\r\n"]


def test_split_leading_notrim():
    assert call("split", "", "/", "leading_notrim") == [""]
    assert call("split", "/", "/", "leading_notrim") == ["", ""]
    assert call("split", "/a/b/c", "/", "leading_notrim") == ["", "a/b/c"]
    assert call("split", "a/b//c/", "/", "leading_notrim") == ["a", "b//c/"]
    assert call("split", "a,b,c\n", ",", "leading_notrim") == ["a", "b,c\n"]
    assert call("split", "a b,c\r\n", ",", "leading_notrim") == ["a b", "c\r\n"]
    assert call("split", "哈哈, 你好, 是的\r\n", ",", "leading_notrim") == \
        ["哈哈", " 你好, 是的\r\n"]


def test_split_trailing():
    assert call("split", "", "/", "trailing") == []
    assert call("split", "/", "/", "trailing") == []
    assert call("split", "/a/b/c", "/", "trailing") == ["/a/b", "c"]
    assert call("split", "a/b//c/", "/", "trailing") == ["a/b//c"]
    assert call("split", "a,b,c\n", ",", "trailing") == ["a,b", "c\n"]
    assert call("split", "a b,c\r\n", ",", "trailing") == ["a b", "c\r\n"]
    assert call("split", "哈哈, 你好, 是的\r\n", ",", "trailing") == ["哈哈, 你好", " 是的\r\n"]


def test_split_trailing_notrim():
    assert call("split", "", "/", "trailing_notrim") == [""]
    assert call("split", "/", "/", "trailing_notrim") == ["", ""]
    assert call("split", "/a/b/c", "/", "trailing_notrim") == ["/a/b", "c"]
    assert call("split", "a/b//c/", "/", "trailing_notrim") == ["a/b//c", ""]
    assert call("split", "a,b,c\n", ",", "trailing_notrim") == ["a,b", "c\n"]
    assert call("split", "a b,c\r\n", ",", "trailing_notrim") == ["a b", "c\r\n"]
    assert call("split", "哈哈, 你好, 是的\r\n", ",", "trailing_notrim") == \
        ["哈哈, 你好", " 是的\r\n"]


def test_split_edge_cases():
    assert call("split", "abc", "") == ["abc"]
    assert call("split", "a::b", "::") == ["a", "b"]
    # a pattern only matches where its last character is a whole grapheme cluster
    assert call("split", "ae\u0301b", "e", "notrim") == ["ae\u0301b"]
    assert call("split", "a\r\nb", "\r", "notrim") == ["a\r\nb"]
    assert call("split", "a\r\nb", "\n", "notrim") == ["a\r", "b"]
    with pytest.raises(SQLFunctionError):
        call("split", "a/b", "/", "all")
    with pytest.raises(SQLFunctionError):
        call("split", 1, "/")


def test_tokens():
    assert call("tokens", "", "/") == []
    assert call("tokens", "/", "/") == []
    assert call("tokens", "/a/b/c", "/") == ["a", "b", "c"]
    assert call("tokens", "/a/b//c/", "/") == ["a", "b", "c"]
    assert call("tokens", " /a/ b /c", " /") == ["a", "b", "c"]
    assert call("tokens", "a ,\nb,c\n", ", ") == ["a", "\nb", "c\n"]
    assert call("tokens", "a ,b,c\r\n", ", ") == ["a", "b", "c\r\n"]
    assert call("tokens", "a,b, c\n", ", ", "nocrlf") == ["a", "b", "c"]
    assert call("tokens", "a,b,c\r\n", ",", "nocrlf") == ["a", "b", "c"]
    assert call("tokens", "a,b\r\n,c\n", ",", "nocrlf") == ["a", "b", "c"]
    assert call("tokens", "\r\n", ",", "nocrlf") == []
    assert call("tokens", "哈哈, 你好, 是的\r\n", ", ", "nocrlf") == ["哈哈", "你好", "是的"]


def test_tokens_separators_are_bytes():
    # "\r\n" is one cluster, so a separator list of "\r" and "\n" does not split it
    assert call("tokens", "a\r\nb", "\r\n") == ["a\r\nb"]
    assert call("tokens", "a\nb", "\r\n") == ["a", "b"]


def test_concat():
    assert call("concat", "a", "b") == "ab"
    assert call("+", "a", "b") == "ab"
    assert call("concat", "哈哈", "你好") == "哈哈你好"
    assert call("concat", call("concat", "a", "b"), "c") == "abc"
    assert call("concat", "", "a") == "a"
    assert call("concat", "a", "") == "a"
    assert call("concat", "", "") == ""
    assert call("concat", ["a", 1, 2.5, True, None]) == "a12.5trueundefined"
    with pytest.raises(SQLFunctionError):
        call("concat", "a")


def test_sprintf():
    assert call("sprintf", "Hello ~ts!", "Shawn") == "Hello Shawn!"
    assert call("sprintf", "Name: ~ts, Count: ~p", "ABC", 2) == "Name: ABC, Count: 2"
    # EMQX's third case formats an Erlang tuple, which rule SQL values cannot be
    assert call("sprintf", "Name: ~ts, Count: ~p, Status: ~p", "ABC", 2, ["ok", "running"]) \
        == 'Name: ABC, Count: 2, Status: [<<"ok">>,<<"running">>]'


def test_sprintf_controls():
    assert call("sprintf_s", "~s|~w|~p", ["abc", "abc", "abc"]) == 'abc|<<97,98,99>>|<<"abc">>'
    assert call("sprintf", "~p ~p ~p ~p", 1.0, 0.1, 1e16, None) == "1.0 0.1 1.0e16 undefined"
    assert call("sprintf", "~p", {"b": 1, "a": [97, 98]}) == '#{<<"a">> => "ab",<<"b">> => 1}'
    assert call("sprintf", "~f ~.2f ~e ~.3e ~g", 1.5, 0.125, 1.5, 12345.678, 0.5) == \
        "1.500000 0.13 1.50000e+0 1.23e+4 0.500000"
    assert call("sprintf", "~5s|~-5s|~.2s|~5.2s|", "ab", "ab", "abc", "abc") == \
        "   ab|ab   |ab|   ab|"
    assert call("sprintf", "~.16B ~.16b ~.2B ~8..0B ~#", 255, 255, 5, 42, 10) == \
        "FF ff 101 00000042 10#10"
    assert call("sprintf", "~c~c ~3c ~~ ~n", 97, 98, 120) == "ab xxx ~ \n"
    assert call("sprintf", "~i~p", "ignored", 1) == "1"
    assert call("sprintf", "~*s|", 4, "a") == "   a|"
    assert call("sprintf", "~3w", 12345) == "***"


def test_sprintf_errors():
    for args in (("~p",), ("~p ~p", 1), ("x", 1), ("~f", 1), ("~d", 1), ("~s", 1)):
        with pytest.raises(SQLFunctionError, match="bad format"):
            call("sprintf", *args)
    # ~ts of text beyond Latin-1 cannot become bytes again (EMQX fails the same way) ...
    with pytest.raises(SQLFunctionError):
        call("sprintf", "~ts", "你好")
    # ... while ~s passes the bytes through
    assert call("sprintf", "~s!", "你好") == "你好!"


def test_pad():
    assert call("pad", "abc", 5) == "abc  "
    assert call("pad", "abc", 0) == "abc"
    assert call("pad", "abc", 5, "trailing") == "abc  "
    assert call("pad", "abc", 0, "trailing") == "abc"
    assert call("pad", "abc", 5, "both") == " abc "
    assert call("pad", "abc", 0, "both") == "abc"
    assert call("pad", "abc", 5, "leading") == "  abc"
    assert call("pad", "abc", 0, "leading") == "abc"
    with pytest.raises(SQLFunctionError):
        call("pad", "abc", 5, "middle")


def test_pad_char():
    assert call("pad", "abc", 5, "trailing", "e") == "abcee"
    assert call("pad", "abc", 5, "trailing", "ex") == "abcexex"
    assert call("pad", "abc", 5, "both", "e") == "eabce"
    assert call("pad", "abc", 5, "both", "ex") == "exabcex"
    assert call("pad", "abc", 5, "leading", "e") == "eeabc"
    assert call("pad", "abc", 5, "leading", "ex") == "exexabc"
    assert call("pad", "abc", 6, "both", "-") == "-abc--"


def test_replace():
    assert call("replace", "ab c  ", " ", "-") == "ab-c--"
    assert call("replace", "ab c  ", " ", "::") == "ab::c::::"
    assert call("replace", "ab c  ", " ", "-", "all") == "ab-c--"
    assert call("replace", "ab c  ", " ", "-", "leading") == "ab-c  "
    assert call("replace", "ab c  ", " ", "-", "trailing") == "ab c -"
    assert call("replace", "abc", "", "-") == "abc"


def test_ascii():
    assert call("ascii", "a") == 97
    assert call("ascii", "ab") == 97
    assert call("ascii", "é") == 0xC3                  # the first byte, as EMQX reads it
    with pytest.raises(SQLFunctionError):
        call("ascii", "")


def test_join_to_string():
    a, b, c, d, e = 1, "a", "c", {"a": 1}, [1, 2, 3]
    f = [{"key": 1, "value": 2}]
    m = {"a": "a", "b": 1, "c": "c"}
    j = '{"a":"a","b":1,"c":"c"}'
    assert call("join_to_string", ",", ["a", "b", "c"]) == "a,b,c"
    assert call("join_to_string", " ", ["a", "b", "c"]) == "a b c"
    assert call("join_to_string", ", ", ["a", "b", "c"]) == "a, b, c"
    assert call("join_to_string", ", ", [a, b, c, d, e, f]) == \
        '1, a, c, {"a":1}, [1,2,3], [{"value":2,"key":1}]'
    assert call("join_to_string", ",", ["a"]) == "a"
    assert call("join_to_string", ",", []) == ""
    assert call("join_to_string", call("map_keys", m)) == "a, b, c"
    assert call("join_to_string", call("map_keys", j)) == "a, b, c"
    assert call("join_to_string", call("map_values", m)) == "a, 1, c"
    assert call("join_to_string", call("map_values", j)) == "a, 1, c"


def test_join_to_sql_values_string():
    a, b, c, d, e, e1 = 1, "a", "c", {"a": 1}, [1, 2, 3], [97, 98]
    f = [{"key": 1, "value": 2}]
    m = {"a": "a", "b": 1, "c": "c"}
    j = '{"a":"a","b":1,"c":"c"}'
    assert call("join_to_sql_values_string", ["a", "b", "c"]) == "'a', 'b', 'c'"
    assert call("join_to_sql_values_string", [a, b, c, d, e, e1, f]) == \
        "1, 'a', 'c', '{\"a\":1}', '[1,2,3]', '[97,98]', '[{\"value\":2,\"key\":1}]'"
    assert call("join_to_sql_values_string", ["a"]) == "'a'"
    assert call("join_to_sql_values_string", []) == ""
    assert call("join_to_sql_values_string", call("map_keys", m)) == "'a', 'b', 'c'"
    assert call("join_to_sql_values_string", call("map_keys", j)) == "'a', 'b', 'c'"
    assert call("join_to_sql_values_string", call("map_values", m)) == "'a', 1, 'c'"
    assert call("join_to_sql_values_string", call("map_values", j)) == "'a', 1, 'c'"
    assert call("join_to_sql_values_string", ["it's", None, True, 1.5]) == \
        "'it\\'s', NULL, 'true', 1.5"


def test_find():
    assert call("find", "acbcd", "c") == "cbcd"
    assert call("find", "acbcd", "c", "leading") == "cbcd"
    assert call("find", "acbcd", "e") == ""
    assert call("find", "", "c") == ""
    assert call("find", "", "") == ""


def test_find_trailing():
    assert call("find", "acbcd", "c", "trailing") == "cd"
    assert call("find", "acbcd", "e", "trailing") == ""
    assert call("find", "", "c", "trailing") == ""
    assert call("find", "", "", "trailing") == ""


def test_regex_match():
    assert call("regex_match", "acbcd", "c") is True
    assert call("regex_match", "acbcd", "(ac)+") is True
    assert call("regex_match", "bcd", "(ac)+") is False
    assert call("regex_match", "", ".*") is True
    assert call("regex_match", "", "[a-z]+") is False
    assert call("regex_match", "exebd", "^[a-z]+$") is True
    assert call("regex_match", "e2xebd", "^[a-z]+$") is False


def test_regex_works_on_bytes_as_erlang_re_without_unicode():
    assert call("regex_match", "你", "^...$") is True          # three bytes
    assert call("regex_match", "é", r"^\w$") is False
    assert call("regex_match", "a\n", "a$") is True
    assert call("regex_match", "a\n", r"a\z") is False
    assert call("regex_match", "a\n", r"a\Z") is True
    assert call("regex_match", "a.b", r"\Q.\E") is True
    assert call("regex_match", "axb", r"\Q.\E") is False
    assert call("regex_match", "abab", r"(?<x>ab)\k<x>") is True
    with pytest.raises(SQLFunctionError, match="invalid regular expression"):
        call("regex_match", "a", "(")


def test_regex_replace():
    assert call("regex_replace", "", "c.*", "e") == ""
    assert call("regex_replace", "accbcd", "c+", "e") == "aebed"
    assert call("regex_replace", "accbcd", "c+", "[&]") == "a[cc]b[c]d"


def test_regex_replace_replacement_syntax():
    assert call("regex_replace", "a1b2", r"([a-z])(\d)", r"\2\1") == "1a2b"
    assert call("regex_replace", "a1", r"([a-z])(\d)", r"\g{2}-\g1") == "1-a"
    assert call("regex_replace", "a1", r"\d", r"\&") == "a&"
    assert call("regex_replace", "a1", r"\d", r"<\9>") == "a<>"      # no such group
    assert call("regex_replace", "abc", "x*", "-") == "-a-b-c-"


REGEX_EXTRACT_CASES = [
    ("Order number: 12345", r"(\d+)", ["12345"]),
    ("Hello, world!", r"(\w+).*\s(\w+)", ["Hello", "world"]),
    ("No numbers here!", r"(\d+)", []),
    ("Date: 2021-05-20", r"(\d{4})-(\d{2})-(\d{2})", ["2021", "05", "20"]),
    ("Hello, world!", "(Hello)", ["Hello"]),
    ("Items: 12, Price: 34", r"(\d+).*\s(\d+)", ["12", "34"]),
    ("Contact: john.doe@example.com", r"([\w\.]+@[\w\.]+)", ["john.doe@example.com"]),
    ("Just some text, nothing more.", r"([A-Z]\d{3})", []),
    ("User: admin, Pass: 1234", r"User: (\w+), Pass: (\d+)", ["admin", "1234"]),
    ("", r"(\d+)", []),
    ("$$$###!!!", r"(\d+)", []),
    ("Erlang 23.1 version", r"(\d+\.\d+)", ["23.1"]),
    ("Server IP: 192.168.1.1 at port 8080", r"(\d+\.\d+\.\d+\.\d+)", ["192.168.1.1"]),
]


@pytest.mark.parametrize("subject, pattern, expected", REGEX_EXTRACT_CASES)
def test_regex_extract(subject, pattern, expected):
    assert call("regex_extract", subject, pattern) == expected


def test_regex_extract_unset_group_is_empty():
    assert call("regex_extract", "ac", "(a)(b)?(c)") == ["a", "", "c"]


def test_unescape():
    assert call("unescape", "\\n") == "\n"
    assert call("unescape", "\\t") == "\t"
    assert call("unescape", "\\r") == "\r"
    assert call("unescape", "\\b") == "\b"
    assert call("unescape", "\\f") == "\f"
    assert call("unescape", "\\v") == "\v"
    assert call("unescape", "\\'") == "'"
    assert call("unescape", '\\"') == '"'
    assert call("unescape", "\\?") == "?"
    assert call("unescape", "\\a") == "\x07"
    assert call("unescape", "\\\\") == "\\"
    assert call("unescape", "Hello, World!") == "Hello, World!"
    assert call("unescape", "Hello,\\t World\\n!") == "Hello,\t World\n!"
    with pytest.raises(SQLFunctionError, match=r"unrecognized_escape_sequence: \\L"):
        call("unescape", "\\L")
    assert call("unescape", "\\x0A") == "\n"
    assert call("unescape", "hej\\x0A") == "hej\n"
    assert call("unescape", "\\x0Ahej") == "\nhej"
    assert call("unescape", "hej\\x0Ahej") == "hej\nhej"
    assert call("unescape", "\\x41\\x42\\x43") == "ABC"
    assert call("unescape", "\\xFF") == "\xff"
    assert call("unescape", "Hello, \\x57orld!") == "Hello, World!"


def test_unescape_hex():
    assert call("unescape", "\\x41") == "A"
    assert call("unescape", "\\x48\\x65\\x6c\\x6c\\x6f") == "Hello"
    assert call("unescape", "\\x0041") == "A"
    assert call("unescape", "\\x20AC") == "€"
    assert call("unescape", "\\x2764") == "❤"
    with pytest.raises(SQLFunctionError, match=r"unrecognized_escape_sequence: \\x"):
        call("unescape", "\\xG1")
    with pytest.raises(SQLFunctionError, match="invalid_unicode_character"):
        call("unescape", "\\x11000000")
    assert call("unescape", "Hello, \\x00004E16\\x0000754C") == "Hello, 世界"


def test_map_to_redis_hset_args():
    def fields(v):
        out = call("map_to_redis_hset_args", v)
        assert out[0] == "map_to_redis_hset_args"
        return out[1:]
    assert fields({}) == []
    assert fields({"a": 1, "b": {"x": 1}}) == ["a", "1"]
    assert fields({"a": 1.1}) == ["a", "1.1"]
    assert fields({"a": True}) == ["a", "true"]
    assert fields({"a": False}) == ["a", "false"]
    assert fields({"a": ""}) == ["a", ""]
    assert fields({"a": "i j"}) == ["a", "i j"]
    assert fields({"a": 1, "b": 2}) in (["a", "1", "b", "2"], ["b", "2", "a", "1"])
    assert fields("not json") == []
    assert fields(["not map", "not json either"]) == []
    assert fields('{"a": 2}') == ["a", "2"]
