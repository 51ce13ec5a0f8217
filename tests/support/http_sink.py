"""An HTTP target for data-integration tests and the benchmark, run in its own process:

    python tests/support/http_sink.py PORT [--quiet] [--certfile F --keyfile F [--cafile F]]

Every request to any path is answered with the current status (200 at start) and, unless
--quiet, recorded. Control paths (never recorded): ``GET /_sink/requests`` (the recorded requests
as JSON: method, path, query, headers, body), ``DELETE /_sink/requests`` (forget them),
``PUT /_sink/status/<code>`` (answer <code> from now on), ``GET /_sink/count`` (requests
served). `HttpSink` in servers.py starts and stops it.
"""
from __future__ import annotations

import argparse
import ssl

from aiohttp import web


def make_app(quiet: bool) -> web.Application:
    state = {"status": 200, "requests": [], "count": 0}

    async def control(request: web.Request) -> web.Response:
        op, _, arg = request.match_info["tail"].partition("/")
        if op == "requests" and request.method == "GET":
            return web.json_response(state["requests"])
        if op == "requests" and request.method == "DELETE":
            state["requests"].clear()
            return web.Response(status=204)
        if op == "status" and request.method == "PUT":
            state["status"] = int(arg)
            return web.Response(status=204)
        if op == "count":
            return web.json_response(state["count"])
        return web.Response(status=404)

    async def anything(request: web.Request) -> web.Response:
        body = await request.read()
        state["count"] += 1
        if not quiet:
            state["requests"].append({
                "method": request.method, "path": request.path, "query": request.query_string,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode("utf-8", "replace")})
        return web.Response(status=state["status"], text="ok")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/_sink/{tail:.*}", control)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--cafile", help="require client certificates signed by this CA")
    a = p.parse_args()
    ctx = None
    if a.certfile:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.certfile, a.keyfile)
        if a.cafile:
            ctx.load_verify_locations(a.cafile)
            ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(a.quiet), host="127.0.0.1", port=a.port, ssl_context=ctx,
                print=None, access_log=None)


if __name__ == "__main__":
    main()
