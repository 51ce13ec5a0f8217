"""Telemetry (EMQX's emqx_telemetry): emqpy never sends telemetry anywhere. The API answers as
EMQX does with telemetry disabled, refuses to enable it, and shows what would be reported
(``data.py``), so an operator can see exactly what EMQX would have sent."""
from emqpy.feature import Feature

FEATURE = Feature("telemetry", routers=("emqpy.telemetry.api",))
