"""Dashboard users, API keys, login tokens and their REST API (``api.py``) and CLI (``cli.py``)."""
