"""A fake Forem server for Dev.to adapter tests: every request is checked against the spec.

`ForemSpec.validate(request)` raises when an httpx.Request does not match
tests/data/specs/forem-api-v1.json (path, method, parameters, api-key, body).
`FakeForem` is a stateful MockTransport handler: it remembers the articles it
created and serves them from /api/articles/me and /api/articles/me/all, so a
lost response can be recovered by looking the article up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "specs" / "forem-api-v1.json"
BASE = "https://dev.to"


class _OpenAPIRequest:
    """An httpx.Request seen through openapi-core's Request protocol."""

    def __init__(self, request: httpx.Request):
        self._request = request
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict({}),
        )


class ForemSpec:
    """The official Forem OpenAPI document, as a request validator."""

    def __init__(self, path: Path = SPEC_PATH):
        # The published document repeats a parameter on one unrelated path; request
        # validation is what matters here, not the document's own lint.
        self.openapi = OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))
        self.validated: list[str] = []

    def validate(self, request: httpx.Request) -> None:
        """Raise an openapi-core error when the request does not match the spec."""
        self.openapi.validate_request(_OpenAPIRequest(request))
        self.validated.append(f"{request.method} {request.url.path}")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A Forem error response: {"error", "status"}."""
    return httpx.Response(status, json={"error": message, "status": status}, headers=headers)


class FakeForem:
    """A stateful Forem: POST /api/articles, PUT /api/articles/{id}, GET /api/articles/me[/all]; spec-checked."""

    def __init__(self, spec: ForemSpec, api_key: str = "test-key"):
        self.spec = spec
        self.api_key = api_key
        self.articles: list[dict] = []
        self.requests: list[httpx.Request] = []
        # a hook run after an article was stored: may raise (lost response) or return a response
        self.after_create: Callable[[dict], httpx.Response | None] | None = None
        # a hook run before anything: may return a response (e.g. 429, 500)
        self.before: Callable[[httpx.Request], httpx.Response | None] | None = None

    def transport(self) -> httpx.MockTransport:
        """An httpx transport routed to this fake."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request."""
        self.spec.validate(request)
        self.requests.append(request)
        if request.headers.get("api-key") != self.api_key:
            return error(401, "unauthorized")
        if self.before is not None:
            resp = self.before(request)
            if resp is not None:
                return resp
        path = request.url.path
        if request.method == "POST" and path == "/api/articles":
            return self._create(json.loads(request.content))
        if request.method == "PUT" and path.startswith("/api/articles/"):
            return self._update(path.rsplit("/", 1)[1], json.loads(request.content))
        if request.method == "GET" and path in ("/api/articles/me", "/api/articles/me/all"):
            q = parse_qs(request.url.query.decode() if isinstance(request.url.query, bytes) else request.url.query)
            page = int(q.get("page", ["1"])[0])
            per_page = int(q.get("per_page", ["30"])[0])
            items = list(reversed(self.articles))
            if path == "/api/articles/me":
                items = [a for a in items if a["published"]]
            return httpx.Response(200, json=items[(page - 1) * per_page : page * per_page])
        return error(404, "not found")

    def _update(self, article_id: str, body: dict) -> httpx.Response:
        """Forem's update: only the fields sent change (`published: false` would make a draft again)."""
        article = next((a for a in self.articles if str(a["id"]) == article_id), None)
        if article is None:
            return error(404, "not found")
        art = body["article"]
        for name in ("title", "body_markdown", "description", "canonical_url", "published"):
            if name in art:
                article[name] = art[name]
        if "tags" in art:
            article["tags"] = art["tags"]
            article["tag_list"] = [t.strip() for t in art["tags"].split(",") if t.strip()]
        return httpx.Response(200, json=article)

    def _create(self, body: dict) -> httpx.Response:
        art = body["article"]
        if not art.get("title"):
            return error(422, "Title can't be blank")
        n = len(self.articles) + 1
        slug = f"article-{n}"
        article = {
            "type_of": "article",
            "id": 1000 + n,
            "title": art["title"],
            "description": art.get("description", ""),
            "body_markdown": art.get("body_markdown", ""),
            "published": bool(art.get("published", False)),
            "tags": art.get("tags", ""),
            "tag_list": [t.strip() for t in art.get("tags", "").split(",") if t.strip()],
            "canonical_url": art.get("canonical_url") or f"{BASE}/someone/{slug}",
            "slug": slug,
            "path": f"/someone/{slug}",
            "url": f"{BASE}/someone/{slug}",
            "page_views_count": 10 * n,
            "public_reactions_count": n,
            "comments_count": 2 * n,
            "ai_disclosure_level": art.get("ai_disclosure_level"),
        }
        self.articles.append(article)
        if self.after_create is not None:
            resp = self.after_create(article)
            if resp is not None:
                return resp
        return httpx.Response(201, json=article)
