"""A broker in its own process whose PUBLISHes feed a data-integration action through a rule
(the kill -9 test and bench/http_action.py use it):

    python tests/support/bridge_node.py DATA_DIR MQTT_PORT API_PORT [--forward ACTION FILTER]
        [--config JSON]

Prints "ready" once it listens. With --forward, the node has the rule
`SELECT * FROM "FILTER"` with the action ACTION (e.g. http:my_action) in its config, as
`rule_engine.rules.forward` in emqx.conf would give it. --config: more config (EMQX's JSON
form), merged in.
"""
from __future__ import annotations

import argparse
import asyncio
import json


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("mqtt_port", type=int)
    p.add_argument("api_port", type=int)
    p.add_argument("--forward", nargs=2, metavar=("ACTION", "FILTER"))
    p.add_argument("--config", default="{}")
    a = p.parse_args()

    import emqpy

    async def run() -> None:
        config = {"listeners": {"tcp": {"default": {"bind": f"127.0.0.1:{a.mqtt_port}"}},
                                "ssl": {"default": {"enable": False}},
                                "ws": {"default": {"enable": False}},
                                "wss": {"default": {"enable": False}}},
                  "dashboard": {"listeners": {"http": {"bind": f"127.0.0.1:{a.api_port}"}}}}
        if a.forward:
            action, flt = a.forward
            config["rule_engine"] = {"rules": {"forward": {
                "sql": f'SELECT * FROM "{flt}"', "actions": [action]}}}
        from emqpy.config.schema import deep_merge
        config = deep_merge(config, json.loads(a.config))
        node = emqpy.Node(config, data_dir=a.data_dir)
        await node.start()
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
