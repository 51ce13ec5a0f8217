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
