"""What emqpy's tests share (tests/ is on sys.path, so `from support.x import ...`):

- `node.Node`: a started broker (emqpy.testing.BrokerThread) with an admin HTTP client on its
  API and MQTT clients that are closed with it; the `broker`/`make_broker` fixtures give one.
- `mqttclient`: `MqttClient` (paho-mqtt wrapped so that every wait has a timeout), `uid()`,
  `props()`.
- `rawmqtt`: MQTT packets written by hand over a plain socket, for byte-exact checks and
  malformed input; it must not share code with the codec under test (emqpy.mqtt).
- `waiting`: `wait_until` for state that settles asynchronously; `WAIT`, `QUIET`.
- `servers`: real Redis and PostgreSQL servers on free ports, `free_port()`.
- `probe_api`: test-only routes mounted on every broker the tests start.
"""
