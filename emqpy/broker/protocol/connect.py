"""CONNECT: decode, the checks before authentication (protocol level, will, the listener's and
the features' connect checks), then authentication: answered at once, awaited (reading stops
until the answer; packets that arrive meanwhile are replayed after it), or an MQTT 5 enhanced
authentication exchange (protocol/auth.py). connack.py finishes it."""
from __future__ import annotations

import asyncio
import functools
import logging

from emqpy.broker.protocol import auth, keepalive
from emqpy.broker.protocol.connack import authenticated, refuse, send_error_connack
from emqpy.broker.protocol.states import CONNECTING, NEW
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import decode_connect
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name

log = logging.getLogger("emqpy.channel")


def handle_connect(ch, byte0: int, body) -> None:
    broker = ch.broker
    c = broker.metrics.c
    c["packets.connect.received"] += 1
    if ch.state != NEW:
        raise MQTTError(rc.PROTOCOL_ERROR, "second CONNECT")
    try:
        pkt = decode_connect(byte0 & 0x0F, body)
    except MQTTError as e:
        if len(body) >= 7:  # the protocol level, if there is one, sets the error's format
            lvl = body[6] if body[0] == 0 and body[1] == 4 else \
                (body[8] if len(body) > 8 else 4)
            if lvl & 0x7F == 5:  # (with or without the bridge bit)
                ch.version = 5
        if e.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION:
            send_error_connack(ch, rc.UNSUPPORTED_PROTOCOL_VERSION,
                               rc.UNSUPPORTED_PROTOCOL_VERSION if ch.version == 5
                               else rc.V3_UNACCEPTABLE_PROTOCOL_VERSION)
            ch.close(None, "unsupported_protocol_version")
            return
        raise
    ch.version = pkt.proto_ver
    ch.proto_name = pkt.proto_name
    ch.connect_pkt = pkt
    c["client.connect"] += 1
    if "client.connect" in broker.hooks._points:  # (may change the packet in place)
        broker.hooks.run("client.connect", ch, pkt)
    if ch.version == 5:
        ch.client_max_packet = pkt.props.get("maximum_packet_size", 0)
        ch._auth_method = pkt.props.get("authentication_method")
        if ch._auth_method and broker.enhanced_auth is None:
            refuse(ch, rc.BAD_AUTHENTICATION_METHOD)  # no SCRAM authenticator offered
            return
    if pkt.will is not None:
        w = pkt.will
        mq = broker.config.mqtt
        if w.qos > mq.max_qos_allowed:
            refuse(ch, rc.QOS_NOT_SUPPORTED)
            return
        if w.retain and not mq.retain_available:
            refuse(ch, rc.RETAIN_NOT_SUPPORTED)
            return
        try:
            validate_topic_name(w.topic, 0)  # (levels: counted when it is published)
        except MQTTError:
            refuse(ch, rc.TOPIC_NAME_INVALID)
            return
    code = broker.check_connect(ch, pkt)
    if code:
        refuse(ch, code)
        return
    # The handshake deadline stands while CONNECT is answered at once (keepalive.start takes
    # it over); a client waiting for its authentication has no idle timeout.
    if ch._auth_method:
        ch.state = CONNECTING
        keepalive.drop_deadline(ch)
        auth.enhanced_answer(ch, broker.enhanced_auth.start(
            ch, pkt, ch._auth_method, pkt.props.get("authentication_data")))
        return
    result = broker.authenticate(ch, pkt)
    if result.__class__ is not int and result is not None and (
            asyncio.iscoroutine(result) or isinstance(result, asyncio.Future)):
        ch.state = CONNECTING
        keepalive.drop_deadline(ch)
        ch.wait_for_io(result, (), functools.partial(_authentication_done, ch))
        return
    authenticated(ch, result)


def _authentication_done(ch, task) -> None:
    try:
        result = task.result()
    except Exception:
        log.exception("authentication failed with an error")
        result = rc.SERVER_UNAVAILABLE
    authenticated(ch, result)
