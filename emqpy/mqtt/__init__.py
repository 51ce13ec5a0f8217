"""Sans-I/O MQTT 3.1 / 3.1.1 / 5.0 codec: frames, packets, properties, reason codes, topics."""
from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import (
    Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec,
    Pubrel, Suback, Subscribe, SubOpts, Unsuback, Unsubscribe, Will, decode_packet,
)
from emqpy.mqtt.reason_codes import MQTTError

__all__ = [
    "Auth", "Connack", "Connect", "Disconnect", "FrameReader", "MQTTError", "Pingreq",
    "Pingresp", "Puback", "Pubcomp", "Publish", "Pubrec", "Pubrel", "SubOpts", "Suback",
    "Subscribe", "Unsuback", "Unsubscribe", "Will", "decode_packet",
]
