"""Graceful shutdown: stopping the broker sends DISCONNECT 0x8B (Server shutting down) to v5
clients and closes v3 connections."""
import pytest

from support import rawmqtt as R
from support.mqttclient import uid

pytestmark = pytest.mark.emqpy_only


def test_stop_sends_server_shutting_down(tmp_path):
    from emqpy.testing import BrokerThread

    bt = BrokerThread({}, data_dir=str(tmp_path))
    bt.start()
    try:
        r5 = R.RawClient("127.0.0.1", bt.port, 5)
        assert r5.connect(uid()).rc == 0
        r4 = R.RawClient("127.0.0.1", bt.port, 4)
        assert r4.connect(uid()).rc == 0
    finally:
        bt.stop()
    assert [(p.type, p.rc) for p in r5.expect_close()] == [(R.DISCONNECT, 0x8B)]
    assert r4.expect_close() == []
    r5.close()
    r4.close()
