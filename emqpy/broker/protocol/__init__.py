"""The MQTT protocol on one connection, without the socket: one module per packet type (as
Mosquitto's handle_<packet>.c), each a set of functions of the Channel they run on.

    dispatch.py     packet type -> handler
    connect.py      CONNECT: checks and authentication (answered at once or awaited)
    auth.py         AUTH and MQTT 5 enhanced authentication (at CONNECT and re-authentication)
    connack.py      how a CONNECT ends: CONNACK accepting or refusing
    publish.py      PUBLISH from the client (inline path, topic aliases in, QoS 2 state)
    deliver.py      PUBLISH to the client (mountpoint off, topic aliases out, size limit)
    acks.py         PUBACK, PUBREC, PUBREL, PUBCOMP
    subscribe.py    SUBSCRIBE, UNSUBSCRIBE
    keepalive.py    the handshake and keep-alive deadlines, PINGREQ
    disconnect.py   DISCONNECT
    states.py       NEW / CONNECTING / CONNECTED / CLOSED, reason names

The Channel (broker/channel.py) feeds them frames and holds the connection's state; its
fields with a leading underscore belong to it and to these modules only. Output and
backpressure are broker/output.py's.
"""
