"""The rule engine (EMQX's emqx_rule_engine): rule SQL run on messages and client events.

Values inside a rule follow EMQX's Erlang terms, mapped to Python once, everywhere:

- binary (topic, client id, strings, the payload) -> ``str``. The payload's bytes are decoded
  as UTF-8 with ``errors="surrogateescape"``, so any bytes survive the round trip
  (``s.encode("utf-8", "surrogateescape")`` gives them back unchanged);
- integer -> ``int``, float -> ``float``, ``true``/``false`` -> ``bool`` (a ``bool`` is an
  ``int`` in Python: type tests look for ``bool`` first);
- ``undefined`` and JSON ``null`` -> ``None``;
- map -> ``dict`` with ``str`` keys, list -> ``list``; other atoms (reasons) -> ``str``.
"""
from __future__ import annotations

from emqpy.feature import BackupConfig, Feature
from emqpy.rule_engine import backup


def engine_of(broker):
    """The broker's rule engine (emqpy.rule_engine.engine.Engine), None while not running."""
    return broker.rule_engine


def config_changed(broker) -> None:
    """The `rule_engine` root of the running config changed (PUT /configs, ...): rules and
    settings follow it."""
    eng = broker.rule_engine
    if eng is not None:
        eng.sync()


def apply_bridge_message(broker, hookpoint: str, columns: dict) -> int:
    """A data source's message (`hookpoint` "$bridges/mqtt:NAME", or "$sources/..."; its
    columns as EMQX gives them) to the rules that read it; how many rules ran (0 while the
    rule engine is not running)."""
    eng = broker.rule_engine
    if eng is None:
        return 0
    return eng.apply_source(hookpoint.split("/", 1)[1] if hookpoint.startswith("$") else
                            hookpoint, columns)


def check_rules(config) -> None:
    """Raise ConfigError for the first rule of `config` the engine would refuse (its SQL does
    not compile, an action cannot be), naming its key, as EMQX's config validation does."""
    from emqpy.config import ConfigError
    from emqpy.rule_engine.engine import RuleError, compile_rule

    for rule_id, conf in config.rule_engine.rules.items():
        try:
            compile_rule(rule_id, conf, 0)
        except RuleError as e:
            raise ConfigError(f"rule_engine.rules.{rule_id}.{e.field}", e.message) from None


def setup(broker) -> None:
    from emqpy.rule_engine.engine import Engine

    eng = broker.rule_engine = Engine(broker)
    eng.start()
    if broker.bridges is not None:  # (set up before us: emqpy.features' order)
        from emqpy.rule_engine import service
        broker.bridges.set_rule_links(lambda action_id: service.rules_using(broker, action_id),
                                      lambda rule_id, action_id: service.remove_action_from_rule(
                                          broker, rule_id, action_id))


async def teardown(broker) -> None:
    eng, broker.rule_engine = broker.rule_engine, None
    if broker.bridges is not None:
        broker.bridges.set_rule_links(lambda action_id: [], lambda rule_id, action_id: None)
    if eng is not None:
        eng.stop()


FEATURE = Feature("rule_engine", setup=setup, teardown=teardown,
                  routers=("emqpy.rule_engine.api",),
                  backup_config=BackupConfig(("rule_engine",), backup.export_config,
                                             backup.restore_config))
