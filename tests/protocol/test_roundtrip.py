"""Property-based round trips through the broker: whatever a client publishes (any valid topic
name, any payload, any QoS, v5 properties) arrives unchanged."""
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.mqttclient import MqttClient, props, uid

# Valid UTF-8 topic text: no wildcards, no NUL/control characters, no surrogates/unassigned.
_chars = st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="+#")
_text = st.text(_chars, min_size=0, max_size=20)

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _pair(broker):
    sub = MqttClient(broker.host, broker.port)
    sub.connect()
    pub = MqttClient(broker.host, broker.port)
    pub.connect()
    return sub, pub


def test_publish_roundtrip(broker):
    base = uid("rt")
    sub, pub = _pair(broker)
    try:
        sub.subscribe(f"{base}/#", 2)

        @SETTINGS
        @given(suffix=st.text(_chars, min_size=1, max_size=60),
               payload=st.binary(max_size=4096), qos=st.integers(0, 2),
               user=st.lists(st.tuples(_text, _text), max_size=4),
               ctype=st.none() | _text)
        def check(suffix, payload, qos, user, ctype):
            kw = {}
            if user:
                kw["UserProperty"] = user
            if ctype is not None:
                kw["ContentType"] = ctype
            p = props(**kw) if kw else None
            topic = f"{base}/{suffix}"
            pub.publish(topic, payload, qos=qos, properties=p)
            m = sub.get()
            assert (m.topic, m.payload, m.qos) == (topic, payload, qos)
            assert getattr(m.properties, "UserProperty", []) == user
            assert getattr(m.properties, "ContentType", None) == ctype

        check()
    finally:
        sub.close()
        pub.close()


def test_client_id_roundtrip(broker):
    """Any valid UTF-8 client id up to 23 characters is accepted and usable for sessions."""

    @SETTINGS
    @given(st.text(_chars, min_size=1, max_size=23))
    def check(cid):
        cid = cid + uuid.uuid4().hex[:4]  # unique per example
        c = MqttClient(broker.host, broker.port, cid)
        again = MqttClient(broker.host, broker.port, cid)
        try:
            c.connect(properties=props("CONNECT", SessionExpiryInterval=5), clean_start=True)
            c.disconnect()
            again.connect(clean_start=False)  # expiry 0 now: this ends the session
            assert again.session_present is True
            again.disconnect()
        finally:
            c.close()
            again.close()

    check()
