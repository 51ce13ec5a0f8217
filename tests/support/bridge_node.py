"""A broker in its own process whose PUBLISHes feed a data-integration action, standing in for
a rule `SELECT * FROM "<filter>"` with that action until the rule engine is on main (the kill -9
test and bench/http_action.py use it):

    python tests/support/bridge_node.py DATA_DIR MQTT_PORT API_PORT [--forward ACTION FILTER]

Prints "ready" once it listens. With --forward, every message whose topic matches FILTER is
sent to ACTION (e.g. http:my_action) with the columns a rule's `SELECT *` gives (topic,
payload, qos, clientid, ...), as the rule engine's `send` will.
"""
from __future__ import annotations

import argparse
import asyncio


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("mqtt_port", type=int)
    p.add_argument("api_port", type=int)
    p.add_argument("--forward", nargs=2, metavar=("ACTION", "FILTER"))
    a = p.parse_args()

    import emqpy
    from emqpy.mqtt.topic import matches

    async def run() -> None:
        node = emqpy.Node({"listeners": {"tcp": {"default": {"bind": f"127.0.0.1:{a.mqtt_port}"}},
                                         "ssl": {"default": {"enable": False}},
                                         "ws": {"default": {"enable": False}},
                                         "wss": {"default": {"enable": False}}},
                           "dashboard": {"listeners": {"http": {
                               "bind": f"127.0.0.1:{a.api_port}"}}}},
                          data_dir=a.data_dir)
        await node.start()
        if a.forward:
            action, flt = a.forward

            def forward(msg):
                if matches(flt, msg.topic) and node.bridges is not None \
                        and node.bridges.action_exists(action):
                    payload = msg.payload.decode("utf-8", "surrogateescape")
                    columns = {"topic": msg.topic, "payload": payload, "qos": msg.qos,
                               "clientid": msg.sender, "username": msg.username,
                               "timestamp": int(msg.timestamp * 1000)}
                    node.bridges.send(action, columns, columns)
                return msg
            node.hooks.add("message.publish", forward)
        print("ready", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run())


if __name__ == "__main__":
    main()
