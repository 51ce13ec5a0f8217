"""Data integration (EMQX's emqx_bridge, emqx_connector, emqx_resource): connectors (a
connection to an outside system), actions (what a rule sends through one) and sources (what
comes in through one, read by rules `FROM "$bridges/mqtt:NAME"`), roots `connectors`,
`actions` and `sources` of the config, with their REST API; EMQX's v1 bridges (/bridges*, root
`bridges`) over them (v1.py).

    broker.bridges.action_exists("http:my_action")
    broker.bridges.send("http:my_action", selected, envelope, on_result)   # rule engine

Types: `http` (emqpy/bridge/http.py), `mqtt` (emqpy/bridge/mqtt.py). Each action's messages wait in a buffer on disk
(emqpy/bridge/worker.py) that survives a restart or kill -9.
"""
from __future__ import annotations

from emqpy.feature import BackupConfig, Feature

from . import backup
from .service import BridgeService


def setup(broker) -> BridgeService:
    svc = BridgeService(broker)
    svc.load()
    broker.bridges = svc
    return svc


async def teardown(broker) -> None:
    svc = broker.bridges
    if svc is not None:
        broker.bridges = None
        await svc.stop()


FEATURE = Feature("bridge", setup=setup, teardown=teardown,
                  routers=("emqpy.bridge.api", "emqpy.bridge.api_v1",
                           "emqpy.bridge.dead_letters_api"),
                  backup_config=BackupConfig(backup.ROOTS, backup.export_config,
                                             backup.restore_config))
