"""The HTTP management API on port 18083 (EMQX's /api/v5).

- ``server.ApiServer``: the uvicorn listeners, run in the broker's event loop.
- ``app``: the FastAPI app; it mounts the routers every feature's manifest lists
  (``emqpy.features``; read app's docstring to add a feature's endpoints).
- ``auth``: Basic (API key or dashboard user) and Bearer authentication dependencies.
- ``errors``: EMQX error codes and the ``{"code", "message"}`` error body; ``ApiError``.
- ``pagination``: the shared ``page``/``limit`` helper for list endpoints.
- ``openapi`` and ``docs``: the OpenAPI 3.0 document and Swagger UI under /api-docs.

As an entry of ``emqpy.features`` this package contributes the platform's own routes (status,
error codes); it has nothing to start.
"""
from emqpy.feature import Feature

FEATURE = Feature("api", routers=("emqpy.api.status", "emqpy.api.error_codes"))
