"""The query API and health endpoints of a worker (issue 4).

- `GET /users/{id}`, `/users/{id}/explain`, `/users/{id}/history`: answered by the worker
  that owns the user's partition; any other worker forwards the request there.
- `GET /ui/…`: the score explorer (`pipeline.explorer`), built from these answers.
- `GET /top?n=&topic=&at=`: one ranking across every worker at one event time, by default the
  latest event time any worker has seen.
- `GET /livez`, `/readyz` (ready once table recovery has finished), `/metrics`: never
  authenticated. The query API needs `Authorization: Bearer <INFLUENCE_API_TOKEN>` when the
  token is set.

One job a module, the pure ones first:

| module | job |
|---|---|
| `replies` | answers as data: errors, token and id checks, user and explain bodies |
| `top` | rankings: parameters, the merge across workers, the two-round time choice |
| `read_model` | `WorkerState`, the read-only view of a worker's users, owners and clocks |
| `scrape` | what `/metrics` reads at scrape time: state size, recovery, consumer lag |
| `views` | the Faust views: forwarding to owners, asking peers, JSON routing errors |
"""

from pipeline.api.read_model import WorkerState
from pipeline.api.views import register

__all__ = ["WorkerState", "register"]
