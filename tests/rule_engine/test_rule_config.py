"""The `rule_engine` config root (EMQX's emqx_rule_engine_schema) and the action templates."""
from __future__ import annotations

import pytest

from emqpy.config import ConfigError, load_config, update_root
from emqpy.config.schema import EmqxConfig
from emqpy.rule_engine.actions import ActionError, DataIntegrationAction, parse
from emqpy.templates import Template, TemplateError, parse_path


def test_defaults_are_emqx_ones():
    assert EmqxConfig().dump("rule_engine") == {
        "ignore_sys_message": True, "jq_function_default_timeout": "10s", "rules": {}}
    # the deprecated jq_implementation_module is hidden, as in EMQX
    assert EmqxConfig().dump("rule_engine", hidden=True)["jq_implementation_module"] == "jq_nif"


def test_rules_from_the_config_file(tmp_path):
    conf = tmp_path / "emqx.conf"
    conf.write_text('''
rule_engine {
  ignore_sys_message = false
  rules.r1 {
    sql = "SELECT * FROM \\"t/#\\""
    actions = [{function = console}, "http:my_hook",
               {function = republish, args {topic = "a/${clientid}", qos = 1}}]
  }
}
''')
    cfg = load_config(conf, env={}, data_dir=str(tmp_path))
    re = cfg.rule_engine
    assert re.ignore_sys_message is False
    rule = re.rules["r1"]
    assert rule.enable is True and rule.name == "" and rule.description == ""
    console, hook, republish = rule.actions
    assert console.function == "console" and hook == "http:my_hook"
    args = republish.args
    assert (args.topic, args.qos, args.retain, args.payload, args.user_properties,
            args.direct_dispatch, args.mqtt_properties) == (
        "a/${clientid}", 1, "${retain}", "${payload}", "${user_properties}", False, {})
    # console's args are kept for old rules but hidden from the API
    assert cfg.dump("rule_engine")["rules"]["r1"]["actions"][0] == {"function": "console"}


def test_rules_from_environment_variables(tmp_path):
    cfg = load_config(None, env={"EMQX_RULE_ENGINE__RULES__R2__SQL": '"SELECT 1 FROM \\"x\\""'},
                      data_dir=str(tmp_path))
    assert cfg.rule_engine.rules["r2"].sql == 'SELECT 1 FROM "x"'


@pytest.mark.parametrize("rule, where", [
    ({}, "rule_engine.rules.r.sql"),
    ({"sql": "s", "actions": [{"function": "republish"}]}, "args.topic"),
    ({"sql": "s", "actions": [{"function": "republish", "args": {"topic": "t", "qos": 3}}]},
     "qos"),
    ({"sql": "s", "actions": [{"nofunction": 1}]}, "actions.0"),
    ({"sql": "s", "actions": [7]}, "actions.0"),
    ({"sql": "s", "actions": [{"function": "republish", "args": {
        "topic": "t", "mqtt_properties": {"Topic-Alias": "1"}}}]}, "mqtt_properties"),
    ({"sql": "s", "enable": "maybe"}, "enable"),
    ({"sql": "s", "colour": "red"}, "colour"),
])
def test_bad_rules_are_refused_naming_the_key(rule, where):
    with pytest.raises(ConfigError) as ei:
        update_root(EmqxConfig(), "rule_engine", {"rules": {"r": rule}})
    assert where in str(ei.value)


def test_timeout_is_checked():
    with pytest.raises(ConfigError):
        update_root(EmqxConfig(), "rule_engine", {"jq_function_default_timeout": "soon"})
    cfg = update_root(EmqxConfig(), "rule_engine", {"jq_function_default_timeout": "12s"})
    assert cfg.rule_engine.jq_function_default_timeout == 12.0


# -- actions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref, error", [
    ("nocolon", "should be of pattern {type}:{name}, but got: nocolon"),
    ("a:b:c", "should be of pattern"),
    ("kafkaesque:x", "unknown resource type: kafkaesque"),
    ("http:", "Name cannot be empty string"),
    ("http:-bad", "Invalid name format"),
])
def test_data_integration_references_are_checked_as_emqx_does(ref, error):
    with pytest.raises(ActionError) as ei:
        DataIntegrationAction(ref)
    assert error in str(ei.value)


def test_data_integration_reference_names_its_action():
    assert DataIntegrationAction("http:my_hook").describe() == "http:my_hook"
    assert DataIntegrationAction("webhook:old").describe() == "http:old"  # EMQX's upgrade
    assert DataIntegrationAction("bridge:mqtt:b1").describe() == "mqtt:b1"


def test_unknown_functions_are_refused():
    cfg = update_root(EmqxConfig(), "rule_engine", {"rules": {"r": {
        "sql": "s", "actions": [{"function": "mymod:myfun"}, {"function": "console"}]}}})
    user_fn, console = cfg.rule_engine.rules["r"].actions
    with pytest.raises(ActionError, match="unknown_action_function"):
        parse(user_fn)
    assert parse(console).describe() == {"function": "console"}


# -- templates -----------------------------------------------------------------------------------

def test_paths():
    assert parse_path("payload.a.b") == ("payload", "a", "b")
    assert parse_path("pub_props.'User-Property'.foo") == ("pub_props", "User-Property", "foo")
    assert parse_path(".") == ()
    assert parse_path(".clientid") == ("clientid",)
    with pytest.raises(TemplateError):
        parse_path("a..b")
    with pytest.raises(TemplateError):
        parse_path("a.'b")


def test_render():
    data = {"clientid": "c1", "n": 3, "f": 1.5, "ok": True, "none": None,
            "payload": '{"temp": 31, "arr": [1, 2]}', "m": {"k": "v"}}
    assert Template("t/${clientid}/${n}").render(data) == "t/c1/3"
    assert Template("${f} ${ok} ${none} ${missing}").render(data) == \
        "1.5 true undefined undefined"
    # going into a JSON string decodes it; lists are 1-based as in EMQX
    assert Template("${payload.temp}|${payload.arr.2}").render(data) == "31|2"
    assert Template("${m}").render(data) == '{"k":"v"}'
    assert Template("plain").render(data) == "plain"
    assert Template("${.}").render({"a": 1}) == '{"a":1}'


def test_simple_values_keep_their_type():
    data = {"qos": 1, "flag": False}
    assert Template("${qos}").value(data, 0) == 1
    assert Template("${flag}").value(data, True) is False
    assert Template("${missing}").value(data, 0) == 0
