"""emqpy: an MQTT broker in Python, a drop-in replacement for EMQX 5."""

__version__ = "0.1.0"
# EMQX release whose behaviour and API emqpy reproduces.
EMQX_COMPAT_VERSION = "5.8.1"

from emqpy.broker.broker import Broker  # noqa: E402

__all__ = ["Broker", "__version__"]
