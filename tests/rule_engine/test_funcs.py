"""The rule SQL function table: lookup, names, arity and error reporting."""
import re

import pytest

from emqpy.rule_engine.funcs import SQLFunctionError, lookup, names

# emqx_rule_funcs' exports in EMQX 5.8.1 (name: arities), plus `sprintf`, which EMQX serves
# through its undefined-function handler.
EMQX_EXPORTS = {
    "msgid": [0], "qos": [0], "flags": [0], "flag": [1], "topic": [0, 1], "clientid": [0],
    "clientip": [0], "peerhost": [0], "username": [0], "payload": [0, 1],
    "contains_topic": [2, 3], "contains_topic_match": [2, 3], "null": [0], "coalesce": [1, 2],
    "coalesce_ne": [1, 2],
    "+": [2], "-": [2], "*": [2], "/": [2], "div": [2], "mod": [2], "eq": [2],
    "abs": [1], "acos": [1], "acosh": [1], "asin": [1], "asinh": [1], "atan": [1],
    "atanh": [1], "ceil": [1], "cos": [1], "cosh": [1], "exp": [1], "floor": [1], "fmod": [2],
    "log": [1], "log10": [1], "log2": [1], "power": [2], "round": [1], "sin": [1],
    "sinh": [1], "sqrt": [1], "tan": [1], "tanh": [1],
    "bitnot": [1], "bitand": [2], "bitor": [2], "bitxor": [2], "bitsl": [2], "bitsr": [2],
    "bitsize": [1], "bytesize": [1], "subbits": [2, 3, 4, 5, 6],
    "str": [1], "str_utf8": [1], "bool": [1], "int": [1], "float": [1, 2], "float2str": [2],
    "map": [1], "bin2hexstr": [1], "hexstr2bin": [1],
    "is_null": [1], "is_null_var": [1], "is_not_null": [1], "is_not_null_var": [1],
    "is_str": [1], "is_bool": [1], "is_int": [1], "is_float": [1], "is_num": [1],
    "is_map": [1], "is_array": [1],
    "lower": [1], "ltrim": [1], "reverse": [1], "rtrim": [1, 2], "rm_prefix": [2],
    "strlen": [1], "substr": [2, 3], "trim": [1], "upper": [1], "split": [2, 3],
    "concat": [1, 2], "tokens": [2, 3], "sprintf_s": [2], "pad": [2, 3, 4],
    "replace": [3, 4], "regex_match": [2], "regex_replace": [3], "regex_extract": [2],
    "ascii": [1], "find": [2, 3], "join_to_string": [1, 2], "map_to_redis_hset_args": [1],
    "join_to_sql_values_string": [1], "jq": [2, 3], "unescape": [1],
    "map_new": [0], "map_get": [2, 3], "map_put": [3], "map_keys": [1], "map_values": [1],
    "map_to_entries": [1], "mget": [2, 3], "mput": [3],
    "nth": [2], "length": [1], "sublist": [2, 3], "first": [1], "last": [1], "contains": [2],
    "md5": [1], "sha": [1], "sha256": [1], "hash": [2],
    "zip": [1], "unzip": [1], "gzip": [1], "gunzip": [1], "zip_compress": [1],
    "zip_uncompress": [1],
    "base64_encode": [1], "base64_decode": [1], "json_decode": [1], "json_encode": [1],
    "term_decode": [1], "term_encode": [1],
    "now_rfc3339": [0, 1], "unix_ts_to_rfc3339": [1, 2], "rfc3339_to_unix_ts": [1, 2],
    "now_timestamp": [0, 1], "format_date": [3, 4], "date_to_unix_ts": [3, 4],
    "timezone_to_second": [1], "timezone_to_offset_seconds": [1],
    "getenv": [1], "mongo_date": [0, 1, 2], "random": [0], "uuid_v4": [0],
    "uuid_v4_no_hyphen": [0],
    "proc_dict_get": [1], "proc_dict_put": [2], "proc_dict_del": [1], "kv_store_get": [1, 2],
    "kv_store_put": [2], "kv_store_del": [1],
    "sprintf": None,
}
COLUMN_FUNCTIONS = {"msgid", "qos", "flags", "flag", "topic", "clientid", "clientip",
                    "peerhost", "username", "payload"}


def test_every_emqx_function_is_there_and_nothing_else():
    assert set(names()) == set(EMQX_EXPORTS)


@pytest.mark.parametrize("name", sorted(EMQX_EXPORTS))
def test_lookup_gives_the_function_and_whether_it_reads_the_columns(name):
    fn, needs_columns = lookup(name)
    assert callable(fn)
    assert needs_columns == (name in COLUMN_FUNCTIONS)


def test_names_match_case_sensitively_like_emqx():
    assert lookup("upper") is not None
    assert lookup("UPPER") is None
    assert lookup("Upper") is None
    assert lookup("no_such_function") is None
    assert lookup("module_info") is None


def test_wrong_number_of_arguments_names_the_function():
    upper, _ = lookup("upper")
    with pytest.raises(TypeError, match=r"^upper\(\) takes 1 positional argument"):
        upper("a", "b")
    str_, _ = lookup("str")
    with pytest.raises(TypeError, match=r"^str\(\)"):
        str_()
    topic, _ = lookup("topic")
    with pytest.raises(TypeError, match=r"topic\(\) takes 0 or 1 arguments"):
        topic({"topic": "a/b"}, 1, 2)


def test_wrong_argument_type_says_which_function_and_what_was_wrong():
    upper, _ = lookup("upper")
    with pytest.raises(SQLFunctionError) as e:
        upper(1)
    assert e.value.function == "upper"
    assert str(e.value) == "upper(1): strings expected"
    div, _ = lookup("div")
    with pytest.raises(SQLFunctionError, match=r"div\(1, 0\): badarith"):
        div(1, 0)
    nth, _ = lookup("nth")
    with pytest.raises(SQLFunctionError, match=r'nth\(5, \[<<97>>\]\)'):
        nth(5, ["a"])


def test_sprintf_takes_any_number_of_arguments():
    sprintf, needs_columns = lookup("sprintf")
    assert not needs_columns
    assert sprintf("~p-~p-~p", 1, 2, 3) == "1-2-3"
    assert sprintf("plain") == "plain"


def _call_with_arity(name, n):
    fn, needs_columns = lookup(name)
    args = [None] * n
    return fn({}, *args) if needs_columns else fn(*args)


@pytest.mark.parametrize("name", sorted(n for n in EMQX_EXPORTS if n != "sprintf"))
def test_each_emqx_arity_is_accepted_and_one_more_is_not(name):
    arities = EMQX_EXPORTS[name]
    for n in arities:
        try:
            _call_with_arity(name, n)
        except SQLFunctionError:
            pass                    # undefined is a bad argument for most functions
    with pytest.raises(TypeError, match=rf"^{re.escape(name)}\(\)"):
        _call_with_arity(name, max(arities) + 1)
    if min(arities) > 0:
        with pytest.raises(TypeError, match=rf"^{re.escape(name)}\(\)"):
            _call_with_arity(name, min(arities) - 1)


def test_error_details_have_emqx_fields():
    upper, _ = lookup("upper")
    with pytest.raises(SQLFunctionError) as e:
        upper(None)
    assert e.value.details() == {"reason": "bad_sql_function_argument", "function_name": "upper",
                                 "arguments": [None], "explanation": "strings expected"}
