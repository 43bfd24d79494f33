"""`influence replay … --serve [HOST:]PORT`: after the replay, serve what it left in memory.

The query API (`/users/{id}`, `/explain`, `/history`, `/top`), the explorer (`/ui/`) and
`/metrics`, from the standard library's HTTP server, until interrupted. A thread a
connection (a browser holds idle connections open, which would stall a single thread), and
one request at a time reads the engine (`ReplayApi.lock`). Answers are the workers'
own (`pipeline.api.replies` and `pipeline.api.top` build them), read at the replay's end:
the same bodies as a worker's, at the time the replay stopped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.api.replies import (
    JSON,
    Reply,
    check_user_id,
    error,
    explain_body,
    history_body,
    user_body,
    user_reply,
)
from pipeline.api.top import TopQuery, parse_top_query, rank_users, top_body
from pipeline.explorer.routes import PREFIX, Page, explorer_page
from pipeline.metrics import PipelineMetrics
from pipeline.native_engine import AnyEngine

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
RENDERS = {"": user_body, "/explain": explain_body, "/history": history_body}


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port); the host defaults to 127.0.0.1 (this machine only)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected [HOST:]PORT, not {text!r}")
    return host.strip("[]") or DEFAULT_HOST, int(port)


class ReplayApi:
    """The query API's answers over a finished replay, read at event time `now`."""

    def __init__(self, engine: AnyEngine, now: int, metrics: PipelineMetrics) -> None:
        self.engine = engine
        self.now = now
        self.metrics = metrics
        self._rankings: dict[tuple[int, str | None], Reply] = {}
        self.lock = threading.Lock()
        """Held while a request reads the engine: the compiled one is not shared between
        threads, and rankings are cached."""

    def answer(self, path: str, query: Mapping[str, str]) -> Reply:
        """The reply of `GET path?query` (path percent-decoded)."""
        model = self.engine.model
        if path.startswith("/users/"):
            rest = path[len("/users/") :]
            for suffix in ("/explain", "/history"):
                if rest.endswith(suffix):
                    user, render = rest[: -len(suffix)], RENDERS[suffix]
                    break
            else:
                user, render = rest, RENDERS[""]
            bad = check_user_id(user)
            if bad is not None:
                return bad
            states = self.engine.states
            found = (states[user], self.now) if user in states else None
            return user_reply(user, found, model, render)
        if path == "/top":
            parsed = parse_top_query(query)
            return parsed if isinstance(parsed, Reply) else self._top(parsed)
        if path == "/livez":
            return Reply(200, {"status": "ok"})
        return error(404, "not_found", f"no such path: {path[:300]}")

    def _top(self, query: TopQuery) -> Reply:
        """One ranking of every user at the replay's end (computed once per n and topic)."""
        key = (query.n, query.topic)
        if key not in self._rankings:
            model = self.engine.model
            users = ((u, s, self.now) for u, s in self.engine.states.items())
            entries = rank_users(users, query.n, query.topic, model)
            body = top_body(entries, query, model.model_version, True, self.now, self.now)
            self._rankings[key] = Reply(200, body)
        return self._rankings[key]

    async def fetch(self, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
        reply = self.answer(path, query)
        return reply.status, reply.body


def make_handler(api: ReplayApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = dict(parse_qsl(parts.query))
            try:
                if path == "/metrics":
                    with api.lock:
                        body, content_type = api.metrics.exposition(self.headers.get("Accept"))
                    self._send(200, body, content_type, {})
                elif path == PREFIX or path.startswith(PREFIX + "/"):
                    with api.lock:
                        page: Page = asyncio.run(explorer_page(path, query, api.fetch))
                    self._send(page.status, page.body, page.content_type, page.headers)
                else:
                    with api.lock:
                        reply = api.answer(path, query)
                    self._send(reply.status, reply.encode(), JSON, reply.headers or {})
            except Exception:  # a bug, never bad input: log it, answer JSON
                log.exception("replay server failure")
                failure = error(500, "internal", "see the log")
                self._send(500, failure.encode(), JSON, {})

        def _send(
            self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler


class _Ipv6Server(ThreadingHTTPServer):
    """For a host such as ``[::1]``: the standard server binds IPv4 only."""

    address_family = socket.AF_INET6


def serve_replay(
    engine: AnyEngine, now: int, address: tuple[str, int], metrics: PipelineMetrics | None
) -> None:
    """Serves until interrupted (Ctrl-C): prints the explorer's address first."""
    import sys

    from pipeline.replay import watch_engine

    if metrics is None:
        metrics = PipelineMetrics(engine.model.model_version)
        watch_engine(metrics, engine)
    server_class = _Ipv6Server if ":" in address[0] else ThreadingHTTPServer
    server = server_class(address, make_handler(ReplayApi(engine, now, metrics)))
    server.daemon_threads = True  # an idle browser connection does not hold up the exit
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving the replayed state on http://{shown}:{port}{PREFIX}/", file=sys.stderr)
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
