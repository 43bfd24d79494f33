"""The query API and health endpoints as Faust views: the HTTP edge, and nothing else.

Each view checks the token, asks `pipeline.api.read_model.WorkerState` for what it needs and
sends the `Reply` that `pipeline.api.replies` or `pipeline.api.top` builds. What is left here
is what needs a running worker: forwarding a user's request to the worker that owns its
partition (Faust's router knows who owns which changelog partition), asking the peers for
their rankings, and the router's own 404/405 in the API's JSON error shape
(`json_routing_errors`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson

from pipeline.api import scrape
from pipeline.api.read_model import WorkerState
from pipeline.api.replies import (
    JSON,
    Reply,
    check_token,
    check_user_id,
    error,
    explain_body,
    history_body,
    readiness,
    routing_error,
    user_body,
    user_reply,
)
from pipeline.api.top import (
    PeerRankings,
    TopQuery,
    answer_times,
    entries_from_body,
    latest_of,
    parse_top_query,
    top_answer,
)
from pipeline.explorer import Page, explorer_page
from pipeline.leaders import TopEntry
from pipeline.metrics import PipelineMetrics
from scoring import Model

log = logging.getLogger(__name__)

ROUTED_HEADER = "X-Influence-Routed"
"""Set on requests one worker forwards to another: the receiver answers, never forwards again
(two workers that disagree about ownership during a rebalance cannot bounce a request)."""
FORWARD_TIMEOUT_S = 10.0
EXPLORER_ROUTES = (
    "/ui",
    "/ui/",
    "/ui/users",
    "/ui/users/{user}",
    "/ui/compare",
    "/ui/static/{name}",
)
"""The score explorer's pages (`pipeline.explorer`), served by every worker."""
INDEX_CHECK_INTERVAL_S = 1.0
"""How often a worker checks that its leader boards are built (after an assignment, once its
tables are recovered, even before any event arrives)."""


def json_routing_errors() -> Any:
    """An aiohttp middleware: the router's 404 and 405 (plain text by default) as JSON errors,
    keeping the `Allow` header of a 405."""
    from aiohttp import web

    @web.middleware
    async def middleware(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status not in (404, 405):
                raise
            reply = routing_error(exc.status, request.method, request.path)
            allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return web.Response(
                body=reply.encode(), status=exc.status, content_type=JSON, headers=allow
            )

    return middleware


def register(app: Any, pipeline: Any, metrics: PipelineMetrics, token: str | None) -> WorkerState:
    """Adds the views to the worker's Faust app and connects the scrape-time metrics."""
    import aiohttp
    from faust.web import View
    from yarl import URL

    worker = WorkerState(app, pipeline, metrics)
    model: Model = pipeline.model
    scrape.connect(metrics, worker)
    app.web.web_app.middlewares.append(json_routing_errors())

    @app.timer(INDEX_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def build_leader_boards() -> None:
        await worker.ensure_indexed()

    def respond(view: Any, reply: Reply) -> Any:
        return view.bytes(
            reply.encode(), content_type=JSON, status=reply.status, headers=reply.headers
        )

    async def forward(view: Any, request: Any, base: URL) -> Any:
        """The same request, answered by the worker at `base`."""
        target = base.with_path(request.rel_url.path).with_query(request.rel_url.query)
        headers = {ROUTED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        try:
            async with app.http_client.get(
                target, headers=headers, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            ) as response:
                body = await response.read()
                return view.bytes(body, content_type=JSON, status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return respond(view, error(502, "owner_unreachable", f"{base}: {exc}"))

    def owner_of(user: str) -> URL | None:
        """The URL of the worker owning `user`, None when it is this one (or unknown)."""
        try:
            url = URL(app.router.key_store(pipeline.table.name, user.encode()))
        except KeyError:
            return None
        own = URL(str(app.conf.canonical_url))
        return None if (url.host, url.port) == (own.host, own.port) else url

    async def user_view(view: Any, request: Any, user: str, render: Any) -> Any:
        denied = check_token(request.headers.get("Authorization"), token)
        if denied is not None:
            return respond(view, denied)
        bad = check_user_id(user)
        if bad is not None:
            return respond(view, bad)
        if not worker.recovered():
            return respond(view, error(503, "recovering", "tables are still being recovered"))
        if ROUTED_HEADER not in request.headers:
            owner = owner_of(user)
            if owner is not None:
                return await forward(view, request, owner)
        if worker.partition_of(user) not in worker.active_partitions():
            return respond(view, error(503, "rebalancing", "the user's partition is moving"))
        return respond(view, user_reply(user, worker.lookup(user), model, render))

    async def ask_peer(
        url: str, partitions: Iterable[int], params: dict[str, str], headers: dict[str, str]
    ) -> tuple[list[TopEntry], int | None, set[int]] | None:
        """A peer's own ranking (`local=1`), its stream time and the partitions it covers."""
        try:
            async with app.http_client.get(
                URL(url).with_path("/top").with_query(params),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
            ) as response:
                if response.status != 200:
                    raise ValueError(f"status {response.status}")
                body = orjson.loads(await response.read())
            as_of, stream_time = answer_times(body)
            if "at" in params and as_of != int(params["at"]):
                raise ValueError(f"ranked at {as_of}, not at {params['at']}")
            return entries_from_body(body), stream_time, set(partitions)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.warning("/top: no answer from %s: %s", url, exc)
            return None

    async def peers_top(request: Any, query: TopQuery, at: int | None) -> PeerRankings:
        """Every other worker's ranking at `at` (their own latest time if None), asked at
        once: (rankings, the latest stream time they report, whether every partition is in)."""
        own = URL(str(app.conf.canonical_url))
        headers = {ROUTED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        params = {"n": str(query.n), "local": "1"}
        if query.topic is not None:
            params["topic"] = query.topic
        if at is not None:
            params["at"] = str(at)
        asks = []
        for url, topics in app.assignor.tables_metadata().items():
            peer = URL(url)
            if (peer.host, peer.port) != (own.host, own.port):
                asks.append(ask_peer(url, topics.get(worker.changelog, ()), params, headers))
        answers = await asyncio.gather(*asks)
        covered: set[int] = set(worker.active_partitions())
        lists: list[list[TopEntry]] = []
        latest: int | None = None
        for answer in answers:
            if answer is not None:
                entries, stream_time, partitions = answer
                lists.append(entries)
                latest = latest_of(latest, stream_time)
                covered |= partitions
        complete = all(a is not None for a in answers)
        complete = complete and covered >= set(range(pipeline.settings.partitions))
        return lists, latest, complete

    async def guarded(view: Any, handler: Any) -> Any:
        try:
            return await handler()
        except Exception:  # a bug, never bad input (that is a 4xx above): log it, answer JSON
            log.exception("query API failure")
            return respond(view, error(500, "internal", "see the worker's log"))

    async def explorer(view: Any, request: Any) -> Any:
        """An explorer page, built from this worker's own API: a user another worker owns is
        forwarded there as any API request is, with the caller's token."""
        own = URL(str(app.conf.canonical_url))
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]

        async def fetch(path: str, query: Mapping[str, str]) -> tuple[int, Any]:
            target = own.with_path(path, encoded=True).with_query(dict(query))
            try:
                async with app.http_client.get(
                    target, headers=headers, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
                ) as response:
                    raw = await response.read()
                    try:
                        return response.status, orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        return response.status, None
            except (aiohttp.ClientError, TimeoutError) as exc:
                return 502, {"detail": f"{own}: {exc}"}

        page: Page = await explorer_page(request.path, dict(request.query), fetch)
        media_type = page.content_type.split(";")[0]  # aiohttp adds the charset itself
        return view.bytes(
            page.body, content_type=media_type, status=page.status, headers=dict(page.headers)
        )

    for route in EXPLORER_ROUTES:

        @app.page(route)
        class Explorer(View):
            async def get(self, request: Any, **params: Any) -> Any:
                return await guarded(self, lambda: explorer(self, request))

    @app.page("/livez")
    class Livez(View):
        async def get(self, request: Any) -> Any:
            return respond(self, Reply(200, {"status": "ok"}))

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Any) -> Any:
            return respond(self, readiness(worker.recovered()))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Any) -> Any:
            body, content_type = metrics.exposition(request.headers.get("Accept"))
            return self.bytes(body, headers={"Content-Type": content_type})

    @app.page("/users/{user}")
    class User(View):
        async def get(self, request: Any, user: str) -> Any:
            return await guarded(self, lambda: user_view(self, request, user, user_body))

    @app.page("/users/{user}/explain")
    class Explain(View):
        async def get(self, request: Any, user: str) -> Any:
            return await guarded(self, lambda: user_view(self, request, user, explain_body))

    @app.page("/users/{user}/history")
    class History(View):
        async def get(self, request: Any, user: str) -> Any:
            return await guarded(self, lambda: user_view(self, request, user, history_body))

    @app.page("/top")
    class Top(View):
        async def get(self, request: Any) -> Any:
            async def answer() -> Any:
                denied = check_token(request.headers.get("Authorization"), token)
                if denied is not None:
                    return respond(self, denied)
                query = parse_top_query(request.query)
                if isinstance(query, Reply):
                    return respond(self, query)
                if not worker.recovered():
                    return respond(self, error(503, "recovering", "tables are being recovered"))
                if not await worker.ensure_indexed():
                    return respond(self, error(503, "rebalancing", "partitions are moving"))
                routed = query.local or ROUTED_HEADER in request.headers

                async def ask(at: int | None) -> PeerRankings:
                    return await peers_top(request, query, at)

                reply = await top_answer(worker, query, routed, ask, model.model_version)
                return respond(self, reply)

            return await guarded(self, answer)

    return worker
