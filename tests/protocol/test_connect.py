"""CONNECT / CONNACK: versions, client ids, protocol checks, credentials, CONNACK properties."""
import re

import pytest

from support import rawmqtt as R
from support.mqttclient import props, uid


@pytest.mark.parametrize("version", [3, 4, 5])
def test_connack_bytes_per_version(broker, raw, version):
    r = raw(broker, version)
    ack = r.connect(uid(), version=version)
    assert ack.rc == 0 and not ack.session_present
    if version != 5:
        # v3.1 / v3.1.1 CONNACK is exactly 4 bytes: no properties.
        assert ack.raw() == b"\x20\x02\x00\x00"
    else:
        assert ack.raw()[:4] == bytes([0x20, len(ack.body), 0x00, 0x00])


def test_paho_connect_all_versions(broker, mqtt):
    for v in (3, 4, 5):
        c = mqtt(broker, version=v)
        assert c.connack_rc == 0 and c.session_present is False


def test_v5_empty_client_id_gets_assigned_id(broker, raw):
    r = raw(broker)
    ack = r.connect("")
    assert ack.rc == 0
    assigned = ack.props.get(R.ASSIGNED_CLIENT_ID)
    assert assigned, "v5 CONNACK must carry Assigned Client Identifier for an empty client id"
    # The assigned id is a working session id: a second empty-id client gets a different one.
    r2 = raw(broker)
    assert r2.connect("").props[R.ASSIGNED_CLIENT_ID] != assigned


@pytest.mark.emqpy_only
def test_assigned_client_id_format(broker, raw):
    # EMQX 5.8.1 emqx_channel:maybe_assign_clientid -> emqx_utils:rand_id(16): 16 base62
    # characters, the first one a letter.
    ack = raw(broker).connect("")
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{15}", ack.props[R.ASSIGNED_CLIENT_ID])


def test_v311_empty_client_id_with_clean_session_accepted(broker, raw):
    r = raw(broker, 4)
    ack = r.connect("", clean=True)
    assert ack.raw() == b"\x20\x02\x00\x00"
    r.send(R.PINGREQ_PACKET)
    assert r.expect(R.PINGRESP).type == R.PINGRESP


def test_v311_empty_client_id_without_clean_session_rejected(broker, raw):
    r = raw(broker, 4)
    ack = r.connect("", clean=False)
    assert ack.raw() == b"\x20\x02\x00\x02"  # identifier rejected
    r.expect_close()


def test_v31_empty_client_id_rejected(broker, raw):
    r = raw(broker, 3)
    ack = r.connect("", clean=True)
    assert ack.raw() == b"\x20\x02\x00\x02"
    r.expect_close()


@pytest.mark.emqpy_only
def test_v5_empty_client_id_without_clean_start_rejected(broker, raw):
    # EMQX emqx_packet:check_client_id rejects an empty id with clean_start=false on every
    # version (0x85 Client Identifier not valid on v5); Mosquitto assigns one instead.
    r = raw(broker)
    assert r.connect("", clean=False).rc == 0x85
    r.expect_close()


def test_unknown_protocol_level_refused(broker, raw):
    r = raw(broker, 4)
    r.send(R.connect_packet(uid(), version=4).replace(b"\x00\x04MQTT\x04", b"\x00\x04MQTT\x06", 1))
    got = r.expect_close()
    # Both MQTT 3.1.1 (3.2.2.3) and 5.0 (3.1.2.2) allow answering in 3.1.1 format with 0x01.
    assert [p.raw() for p in got] == [b"\x20\x02\x00\x01"]


@pytest.mark.emqpy_only
def test_v5_protocol_name_level_mismatch_gets_0x84(broker, raw):
    # EMQX: emqx_packet:check_proto_ver requires name "MQTT" for level 5; a mismatch is
    # RC_UNSUPPORTED_PROTOCOL_VERSION, serialised as a v5 CONNACK (level 5 parsed).
    r = raw(broker)
    r.send(R.connect_packet(uid(), version=5, proto_name="MQIsdp"))
    got = r.expect_close()
    assert got and got[0].type == R.CONNACK and got[0].rc == 0x84


def test_bad_protocol_name_closes(broker, raw):
    r = raw(broker, 4)
    r.send(R.connect_packet(uid(), version=4, proto_name="MQTX"))
    got = r.expect_close()
    # The broker may answer with a refusing CONNACK or just close; it must never accept.
    assert all(p.type == R.CONNACK and p.rc != 0 for p in got)


@pytest.mark.parametrize("version", [4, 5])
def test_username_password_allowed_by_default(broker, raw, version):
    r = raw(broker, version)
    assert r.connect(uid(), username="alice", password=b"secret").rc == 0
    r2 = raw(broker, version)
    assert r2.connect(uid(), username="bob").rc == 0


def test_second_connect_is_protocol_error_v5(broker, raw):
    r = raw(broker)
    assert r.connect(uid()).rc == 0
    r.send(R.connect_packet(uid()))
    got = r.expect_close()
    assert all(p.type == R.DISCONNECT for p in got)
    if broker.is_emqpy:
        # EMQX handle_in(CONNECT) while connected -> DISCONNECT 0x82 Protocol Error.
        assert [p.rc for p in got] == [0x82]


def test_second_connect_closes_v311(broker, raw):
    r = raw(broker, 4)
    assert r.connect(uid()).rc == 0
    r.send(R.connect_packet(uid(), version=4))
    assert r.expect_close() == []


def test_first_packet_not_connect_closes(broker, raw):
    r = raw(broker, 4)
    r.send(R.PINGREQ_PACKET)
    assert all(p.type != R.PINGRESP for p in r.expect_close())


def test_will_qos_3_is_malformed(broker, raw):
    r = raw(broker, 4)
    pkt = bytearray(R.connect_packet(uid(), version=4, will={"topic": "w", "payload": b"x"}))
    pkt[9] |= 0x18  # will QoS bits = 3
    r.send(bytes(pkt))
    assert all(p.type == R.CONNACK and p.rc != 0 for p in r.expect_close())


@pytest.mark.emqpy_only
def test_connack_properties_defaults(broker, raw):
    # EMQX emqx_channel:enrich_connack_caps (5.8.1), default mqtt config.
    ack = raw(broker).connect(uid())
    p = ack.props
    assert p[R.RETAIN_AVAILABLE] == 1
    assert p[R.MAXIMUM_PACKET_SIZE] == 1048576
    assert p[R.TOPIC_ALIAS_MAXIMUM] == 65535
    assert p[R.WILDCARD_AVAILABLE] == 1
    assert p[R.SUB_ID_AVAILABLE] == 1
    assert p[R.SHARED_AVAILABLE] == 1
    if broker.is_emqpy:
        # mqtt.max_awaiting_rel, the QoS 2 PUBLISHes awaiting PUBREL we accept (EMQX announces
        # min(client's Receive Maximum, max_inflight) = 32 here; see test_receive_maximum.py)
        assert p[R.RECEIVE_MAXIMUM] == 100
    assert R.MAXIMUM_QOS not in p  # absent means 2
    assert R.SERVER_KEEP_ALIVE not in p  # server_keepalive = disabled


@pytest.mark.emqpy_only
def test_connack_properties_follow_config(make_broker, raw):
    b = make_broker({"mqtt": {"max_qos_allowed": 1, "retain_available": False,
                              "wildcard_subscription": False, "shared_subscription": False,
                              "max_topic_alias": 5, "max_packet_size": "10KB",
                              "server_keepalive": 7, "max_awaiting_rel": 8}})
    p = raw(b).connect(uid(), properties={R.RECEIVE_MAXIMUM: 100}).props
    assert p[R.MAXIMUM_QOS] == 1
    assert p[R.RETAIN_AVAILABLE] == 0
    assert p[R.WILDCARD_AVAILABLE] == 0
    assert p[R.SHARED_AVAILABLE] == 0
    assert p[R.TOPIC_ALIAS_MAXIMUM] == 5
    assert p[R.MAXIMUM_PACKET_SIZE] == 10240
    assert p[R.SERVER_KEEP_ALIVE] == 7
    assert p[R.RECEIVE_MAXIMUM] == 8


def test_receive_maximum_zero_is_protocol_error(broker, raw):
    r = raw(broker)
    r.send(R.connect_packet(uid(), properties={R.RECEIVE_MAXIMUM: 0}))
    got = r.expect_close()
    # MQTT 5 4.13.1: the server MAY send CONNACK 0x82 before closing (Mosquitto just closes);
    # EMQX emqx_packet:check_conn_props answers 0x82.
    assert [p.rc for p in got] == [0x82] if broker.is_emqpy else all(p.rc == 0x82 for p in got)


def test_request_response_information(broker, mqtt):
    # Without response_information configured the broker may omit it; it must still accept.
    c = mqtt(broker, properties=props("CONNECT", RequestResponseInformation=1))
    assert c.connack_rc == 0


@pytest.mark.emqpy_only
def test_response_information_from_config(make_broker, raw):
    b = make_broker({"mqtt": {"response_information": "resp/"}})
    ack = raw(b).connect(uid(), properties={R.REQUEST_RESPONSE_INFO: 1})
    assert ack.props[R.RESPONSE_INFO] == "resp/"
    ack2 = raw(b).connect(uid())
    assert R.RESPONSE_INFO not in ack2.props  # only when requested


def test_connect_with_every_client_property(broker, raw):
    r = raw(broker)
    ack = r.connect(uid(), clean=False, properties=[
        (R.SESSION_EXPIRY, 0), (R.RECEIVE_MAXIMUM, 10), (R.MAXIMUM_PACKET_SIZE, 65536),
        (R.TOPIC_ALIAS_MAXIMUM, 3), (R.REQUEST_RESPONSE_INFO, 1), (0x17, 0),
        (R.USER_PROPERTY, ("a", "1")), (R.USER_PROPERTY, ("a", "2"))],
        will={"topic": "w/" + uid(), "payload": b"w", "qos": 1, "properties": [
            (R.WILL_DELAY, 5), (R.PAYLOAD_FORMAT, 1), (R.MESSAGE_EXPIRY, 10),
            (R.CONTENT_TYPE, "text/plain"), (R.RESPONSE_TOPIC, "r"), (R.CORRELATION_DATA, b"c"),
            (R.USER_PROPERTY, ("k", "v"))]})
    assert ack.rc == 0
    r.send(R.PINGREQ_PACKET)
    r.expect(R.PINGRESP)
    r.send(R.disconnect_packet(0))


def test_request_problem_information_out_of_range(broker, raw):
    r = raw(broker)
    r.send(R.connect_packet(uid(), properties={0x17: 2}))
    got = r.expect_close()
    assert all(p.type == R.CONNACK and p.rc >= 0x80 for p in got)
    if broker.is_emqpy:  # EMQX emqx_packet:check_conn_props -> 0x82
        assert [p.rc for p in got] == [0x82]
