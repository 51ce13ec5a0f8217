"""MQTT protocol acceptance suite, over real sockets.

Run against emqpy:      python -m pytest tests/protocol -q
Run against Mosquitto:  EMQPY_TEST_TARGET=mosquitto python -m pytest tests/protocol -q
(tests marked emqpy_only or using make_broker are skipped on Mosquitto).
"""
