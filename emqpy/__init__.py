"""emqpy: an MQTT broker in Python, a drop-in replacement for EMQX 5."""

__version__ = "0.1.0"
# The EMQX release whose behaviour and API emqpy reproduces: what the wire, the API and $SYS
# report as the version (tools that check it see a compatible broker). The one place it is
# written; everything else imports it.
EMQX_VERSION = "5.8.1"

__all__ = ["Node", "__version__"]


def __getattr__(name: str):
    # Lazy, so that light commands (`emqpy bench`, `emqpy ctl`) do not load the whole broker.
    if name == "Node":
        from emqpy.node import Node
        return Node
    raise AttributeError(f"module 'emqpy' has no attribute {name!r}")
