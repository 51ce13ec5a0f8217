"""EMQX's trace line formats (emqx_packet:format, emqx_trace_formatter) and the file limit."""
from __future__ import annotations

import json

from emqpy.mqtt import packets as P
from emqpy.trace import tracer
from emqpy.trace.formatter import format_packet, json_line, text_line
from emqpy.trace.tracer import Handler


def test_every_packet_type_as_emqx_formats_it():
    will = P.Will("w/t", b"bye", qos=1, retain=True)
    cases = [
        (P.Connect("c1", 4, False, 30, will, "u", b"pw"),
         "CONNECT(Q0, R0, D0, ClientId=c1, ProtoName=MQTT, ProtoVsn=4, CleanStart=false, "
         "KeepAlive=30, Username=u, Password=******, Will(Q1, R1, Topic=w/t Payload=bye))"),
        (P.Connack(True, 0), "CONNACK(Q0, R0, D0, AckFlags=1, ReasonCode=0)"),
        (P.Publish("a/b", b"hi", 0), "PUBLISH(Q0, R0, D0, Topic=a/b, PacketId=undefined, "
                                     "Payload=hi)"),
        (P.Publish("a/b", b"hi", 2, True, True, 7),
         "PUBLISH(Q2, R1, D1, Topic=a/b, PacketId=7, Payload=hi)"),
        (P.Pubrec(7, 0), "PUBREC(Q0, R0, D0, PacketId=7, ReasonCode=0)"),
        (P.Pubrel(7, 0), "PUBREL(Q1, R0, D0, PacketId=7, ReasonCode=0)"),
        (P.Pubcomp(7, 0), "PUBCOMP(Q0, R0, D0, PacketId=7, ReasonCode=0)"),
        (P.Subscribe(3, [("x/#", P.SubOpts(2, True, False, 1))]),
         "SUBSCRIBE(Q1, R0, D0, PacketId=3 TopicFilters=[x/#(#{nl => 1,qos => 2,rap => 0,"
         "rh => 1})])"),
        (P.Suback(3, [2, 0x80]), "SUBACK(Q0, R0, D0, PacketId=3, ReasonCodes=[2,128])"),
        (P.Unsubscribe(4, ["x/#", "y"]),
         "UNSUBSCRIBE(Q1, R0, D0, PacketId=4 TopicFilters=[x/#,y])"),
        (P.Unsuback(4, [0]), "UNSUBACK(Q0, R0, D0, PacketId=4)"),
        (P.Pingreq(), "PINGREQ(Q0, R0, D0)"),
        (P.Pingresp(), "PINGRESP(Q0, R0, D0)"),
        (P.Disconnect(0x8E), "DISCONNECT(Q0, R0, D0, ReasonCode=142)"),
        (P.Auth(0x18), "AUTH(Q0, R0, D0, ReasonCode=24)"),
    ]
    for pkt, want in cases:
        assert format_packet(pkt) == want
    pub = P.Publish("a", b"\x00\xff", 0)
    assert format_packet(pub, "hex").endswith("Payload(hex)=00FF)")
    assert format_packet(pub, "hidden").endswith("Payload=******)")


def test_text_and_json_lines():
    meta = {"clientid": "c", "peername": "1.2.3.4:5", "username": "u", "payload": b"p",
            "topic": "t", "packet": P.Pingreq()}
    line = text_line("MQTT", "m", meta, "text")
    assert line.endswith(" [MQTT] c@1.2.3.4:5 msg: m, packet: PINGREQ(Q0, R0, D0), topic: t, "
                         "username: u, payload: p\n")
    d = json.loads(json_line("MQTT", "m", meta, "hex"))
    assert d["msg"] == "m" and d["level"] == "debug"
    assert d["meta"] == {"clientid": "c", "peername": "1.2.3.4:5", "username": "u",
                         "payload": "70", "topic": "t", "packet": "PINGREQ(Q0, R0, D0)",
                         "trace_tag": "MQTT"}


def test_a_trace_file_stops_growing_at_its_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(tracer, "MAX_FILE_BYTES", 300)
    h = Handler("big", "clientid", "c", tmp_path / "t.log")
    meta = {"clientid": "c", "payload": b"x" * 50}
    written = 0
    while h.write("PUBLISH", "publish_to", meta):
        written += 1
    h.close()
    assert written >= 1 and h.halted
    assert (tmp_path / "t.log").stat().st_size <= 300
    assert not h.write("PUBLISH", "publish_to", meta)
