"""The FastAPI application behind port 18083.

Adding a feature's endpoints: write ``emqpy/<feature>/api.py`` exposing ``router`` (an
``APIRouter`` whose paths are relative to ``/api/v5``, guarded with
``dependencies=[Depends(authenticated)]`` from ``emqpy.api.auth``), optionally ``root_router``
for paths outside ``/api/v5``, and list the module in ``routers`` of the feature's manifest
(``FEATURE`` in ``emqpy/<feature>/__init__.py``, see ``emqpy.features``). Handlers reach
the broker through ``request.app.state.ctx`` (``ctx.broker``, ``ctx.store``, ``ctx.config``).
Raise ``emqpy.api.errors.ApiError(status, CODE, message)`` for errors; document them with
``responses=error_responses({404: ["NOT_FOUND"]})``; list endpoints use
``emqpy.api.pagination``. The route then appears in /api-docs/swagger.json automatically.
Every route also gets ``emqpy.api.routing``'s rules without code of its own: percent-encoded path
parameters arrive decoded and intact, and a JSON request body of another media type is a 415.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI

from emqpy import EMQX_VERSION, features
from emqpy.api import docs, errors, openapi, routing
from emqpy.api.auth import LoginLock
from emqpy.config import EmqxConfig

API_PREFIX = "/api/v5"

log = logging.getLogger("emqpy.api")


@dataclass
class ApiContext:
    broker: Any
    store: Any
    login_lock: LoginLock = field(default_factory=LoginLock)

    @property
    def config(self) -> EmqxConfig:
        """The running config (the broker's: a committed change shows at once); EMQX's
        defaults for an app built without a broker (for its OpenAPI document)."""
        return self.broker.config if self.broker is not None else EmqxConfig()

    @property
    def token_ttl(self) -> float:
        return self.config.dashboard.token_expired_time

    @property
    def allow_user_basic_auth(self) -> bool:
        return self.config.dashboard.allow_user_basic_auth

    @property
    def version(self) -> str:
        return EMQX_VERSION


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="EMQX API", version=ctx.version,
        docs_url=None, redoc_url=None, openapi_url=None,  # served by emqpy.api.docs instead
        dependencies=[Depends(routing.request_rules)],
    )
    app.openapi_version = "3.0.3"
    app.state.ctx = ctx
    errors.install_handlers(app)
    app.add_middleware(errors.InternalErrorMiddleware)
    app.add_middleware(routing.RawPathRouting)
    from emqpy.cluster.replica import CaptureChanges
    app.add_middleware(CaptureChanges)  # outermost: sees the request as it came
    for feature in features.manifests():
        for name in feature.routers:
            mod = importlib.import_module(name)
            if getattr(mod, "router", None) is not None:
                app.include_router(mod.router, prefix=API_PREFIX)
            if getattr(mod, "root_router", None) is not None:
                app.include_router(mod.root_router)
    app.openapi = lambda: openapi.build(app, API_PREFIX)  # type: ignore[method-assign]
    if ctx.config.dashboard.swagger_support:
        app.include_router(docs.router)
    return app
