"""The score explorer (issue 15): HTML pages over the query API, served under `/ui/`.

- `/ui/`: a search box and the top list, overall and for each topic the leaders publish;
- `/ui/users/{id}`: score, audience quality and confidence (when the model gives them), the
  90-day chart, the explanation as a waterfall, top contributors, topics with their evidence;
- `/ui/compare?users=a,b`: two accounts side by side.

Pages are built on the server from the API's own JSON answers (`routes.explorer_page` takes a
`Fetch` that asks the API), so a worker's explorer reads through the same forwarding to the
owning worker as its API, and `influence replay --serve` (`serve`) answers both from the
replayed state. No script and nothing fetched from elsewhere: the one stylesheet ships in the
package (`static/`), and every page works with a keyboard and a screen reader.

| module | job |
|---|---|
| `markup` | escaping and the page shell |
| `charts` | the history chart (inline SVG) and the explanation waterfall |
| `pages` | each page from API bodies, pure |
| `routes` | which page a path asks for, and the API answers it needs |
| `serve` | `influence replay --serve`: the API, the explorer and /metrics over a replay |
"""

from pipeline.explorer.routes import Fetch, Page, explorer_page

__all__ = ["Fetch", "Page", "explorer_page"]
