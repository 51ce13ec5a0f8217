"""Test-only routes, mounted by conftest through this module's ``FEATURE`` (appended to
``emqpy.features.FEATURES``) exactly as a feature's ``api.py`` is: an authenticated endpoint
that API keys may use, a paginated list, routes echoing their path parameters, and a route that
crashes (to check the 500 INTERNAL_ERROR path)."""
from fastapi import APIRouter, Depends

from emqpy.api.auth import AUTH_RESPONSES, Actor, authenticated
from emqpy.api.pagination import Page, paginate
from emqpy.feature import Feature

router = APIRouter(prefix="/probe", tags=["Probe"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)
FEATURE = Feature("probe", routers=(__name__,))


@router.get("/whoami")
async def whoami(actor: Actor = Depends(authenticated)):
    return {"kind": actor.kind, "name": actor.name}


@router.get("/items")
async def items(page: Page):
    return paginate([{"n": i} for i in range(250)], page)


@router.get("/echo/{first}/{second}")
async def echo(first: str, second: str):
    return {"first": first, "second": second}


@router.get("/echo-path/{rest:path}")
async def echo_path(rest: str):
    return {"rest": rest}


@router.get("/crash")
async def crash():
    raise RuntimeError("probe crash")


# A page that drives the real Swagger UI like a person would: authorize with Basic auth, open
# GET /users, "Try it out", "Execute"; it writes the response status into the DOM.
root_router = APIRouter(include_in_schema=False)

_TRY_IT = """<!DOCTYPE html><html><head><meta charset="UTF-8">
<link rel="stylesheet" href="/api-docs/swagger-ui.css"></head><body>
<div id="swagger-ui"></div><pre id="result">pending</pre>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/swagger-ui-standalone-preset.js"></script>
<script>
function report(s) { document.getElementById("result").textContent = s; }
function waitFor(sel, fn, tries) {
  var el = document.querySelector(sel);
  if (el) return fn(el);
  if (tries <= 0) return report("TIMEOUT waiting for " + sel);
  setTimeout(function () { waitFor(sel, fn, tries - 1); }, 100);
}
window.onerror = function (m) { report("JSERROR " + m); };
window.ui = SwaggerUIBundle({
  url: "/api-docs/swagger.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "BaseLayout",
  docExpansion: "full",
  onComplete: function () {
    ui.preauthorizeBasic("basicAuth", "admin", "public");
    var blocks = document.querySelectorAll(".opblock-get");
    var target = null;
    blocks.forEach(function (b) {
      var p = b.querySelector(".opblock-summary-path");
      if (p && p.getAttribute("data-path") === "/users") target = b;
    });
    if (!target) return report("NO GET /users block");
    waitFor("#" + target.id + " .try-out__btn", function (btn) {
      btn.click();  // "Try it out"
      waitFor("#" + target.id + " .execute", function (ex) {
        ex.click();
        waitFor("#" + target.id + " .live-responses-table tr.response .response-col_status",
          function (st) {
            var body = target.querySelector(".live-responses-table .microlight, " +
                                            ".live-responses-table pre");
            report("STATUS " + st.textContent.trim() + " BODY " + (body ? body.textContent : ""));
          }, 100);
      }, 50);
    }, 50);
  }
});
</script></body></html>"""


@root_router.get("/probe-tryit.html")
async def try_it_page():
    from fastapi.responses import HTMLResponse
    return HTMLResponse(_TRY_IT)
