"""Dashboard users, API keys, login tokens and their REST API (``api.py``) and CLI (``cli.py``).

Its tables are migrated when the API server starts (``emqpy.api.server``); as an entry of
``emqpy.features`` it only contributes routes: the API's and the web dashboard's (``web.py``)."""
from emqpy.feature import Feature

FEATURE = Feature("dashboard", routers=("emqpy.dashboard.api", "emqpy.dashboard.web"))
