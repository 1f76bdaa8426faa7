"""Who may change something here from a browser, and which web pages may read the answers.

Cross-site requests. A browser posts a form to any address a page names, with the user's
network position (inside the hospital) and without asking. A request that can change something
(every method but GET, HEAD and OPTIONS) is therefore refused (403) when a browser says it comes
from another site, the way Go's `net/http.CrossOriginProtection` decides:

1. `Sec-Fetch-Site: same-origin` or `none` (typed by the user): allowed; any other value
   (`same-site`, `cross-site`): refused;
2. without `Sec-Fetch-Site` (an older browser), an `Origin` whose host is the request's `Host`:
   allowed; another `Origin` (also `null`): refused;
3. neither header: not a browser (curl, an engine, a FHIR client): allowed. Bearer tokens, where
   configured, are what keeps those out.

The page takes posts from its own pages only. The FHIR routes also take them from an origin
listed in FMS_FHIR_CORS_ORIGINS: a web app there calls them with fetch() and reads the answers.

CORS (off by default). For a listed origin (or any, with `*`), on every route but the page's:
a preflight (OPTIONS with `Access-Control-Request-Method`) is answered 204 with the methods and
request headers allowed, and every answer carries `Access-Control-Allow-Origin` and the headers a
script may read. `Access-Control-Allow-Credentials` is never sent: a bearer token is set by the
script itself; cookies and HTTP authentication are never asked for. A preflight from an origin
not listed, or for the page, is refused (403).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, request

from adapter.web.problems import HttpProblem
from adapter.web.state import WebState

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE = frozenset({"same-origin", "none"})
ALLOW_HEADERS = "Accept, Authorization, Content-Type, If-None-Match, Prefer, X-Request-ID"
EXPOSE_HEADERS = (
    "Content-Location, ETag, Location, Retry-After, WWW-Authenticate, X-Request-ID, "
    "X-Rows-Read, X-Rows-Converted, X-Rows-Rejected, X-Rows-Blank"
)
MAX_AGE = "600"
DEFAULT_PORTS = {"http": "80", "https": "443"}


def is_page() -> bool:
    """The page's routes (`GET /`, `POST /`, `/results/...`): same-origin only, never CORS."""
    return request.blueprint == "page"


def _origin() -> str | None:
    value = request.headers.get("Origin")
    return value.strip().lower() if value is not None else None


def listed(origin: str | None, current: WebState) -> bool:
    """Whether this origin may call this route from a browser (CORS)."""
    if not origin or origin == "null" or is_page():
        return False
    allowed = current.options.cors_origins
    return "*" in allowed or origin in allowed


def _same_host(origin: str) -> bool:
    """The origin's host and port are the request's `Host` (a default port written or not)."""
    try:
        parts = urlsplit(origin)
    except ValueError:  # "http://[": no origin at all
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return False
    default = ":" + DEFAULT_PORTS[parts.scheme]
    return parts.netloc.removesuffix(default) == request.host.lower().removesuffix(default)


def cross_site(current: WebState) -> bool:
    """Whether a browser says this state-changing request comes from another site (and that
    site is not listed for CORS)."""
    if request.method in SAFE_METHODS:
        return False
    origin = _origin()
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in SAME_SITE:
        return False
    if not site and origin is None:
        return False
    if not site and origin is not None and _same_host(origin):
        return False
    return not listed(origin, current)


def refuse_cross_site(current: WebState) -> None:
    """403 for a cross-site request that could change something (see the module's docstring)."""
    if not cross_site(current):
        return
    where = "the page takes posts from its own pages only"
    if not is_page():
        where = "a web app of another origin needs it listed in FMS_FHIR_CORS_ORIGINS"
    raise HttpProblem(
        403,
        f"a {request.method} from another site is refused here (its Origin or Sec-Fetch-Site "
        f"header says so): {where}. Clients that are no browser send neither header",
        "forbidden",
        rule="cross-site",
    )


def preflight(current: WebState) -> Response | None:
    """The answer to a CORS preflight, or None when the request is none."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if request.url_rule is None:
        return None  # no such route: 404, as for any method
    origin = _origin()
    if not listed(origin, current):
        raise HttpProblem(
            403,
            "this origin may not call this route from a browser (FMS_FHIR_CORS_ORIGINS; never "
            "the page's routes)",
            "forbidden",
            rule="cors-origin",
        )
    methods = sorted((request.url_rule.methods or set()) - {"OPTIONS"})
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def add_cors_headers(response: Response, current: WebState) -> None:
    """`Access-Control-Allow-Origin` (and what a script may read) for a listed origin; with a
    list, `Vary: Origin` on every answer of these routes (a cache keeps them apart)."""
    allowed = current.options.cors_origins
    if not allowed or is_page():
        return
    star = "*" in allowed
    if not star:
        response.vary.add("Origin")
    origin = _origin()
    if not listed(origin, current):
        return
    response.headers["Access-Control-Allow-Origin"] = "*" if star else str(origin)
    response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
