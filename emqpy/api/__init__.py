"""The HTTP management API on port 18083 (EMQX's /api/v5).

- ``server.ApiServer``: the uvicorn listeners, run in the broker's event loop.
- ``app``: the FastAPI app; ``ROUTER_MODULES`` lists the modules whose ``router`` it mounts
  (read its docstring to add a feature's endpoints).
- ``auth``: Basic (API key or dashboard user) and Bearer authentication dependencies.
- ``errors``: EMQX error codes and the ``{"code", "message"}`` error body; ``ApiError``.
- ``pagination``: the shared ``page``/``limit`` helper for list endpoints.
- ``openapi`` and ``docs``: the OpenAPI 3.0 document and Swagger UI under /api-docs.
"""
