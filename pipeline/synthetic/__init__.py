"""Seeded synthetic streams of ``influence.event.v1`` events, with injectable scenarios.

Test data, not part of the live path: ``influence worker`` never imports this package (held by
tests/test_imports.py); ``influence generate``, the tests and the benchmarks do.

The background (``population``, ``background``) is a steady-state population, not a burst:
lognormal follower counts (median ~200, a few with 10k-1M), Pareto-distributed activity, follow
sets chosen preferentially by follower count, favourite hashtags from a Zipf vocabulary
(``topic1`` is the most popular). The scenarios are the acceptance cases of the scoring model
(SCORING.md), one module each, each holding its own constants, builders and default placement:

- ``ring``: accounts that retweet each other on a timer (§3, reciprocity).
- ``party``: a one-night "Twitter party" of name-drops (§4, bursts).
- ``vacation``: a normal life followed by a week of silence (§5, grace).
- ``viral_retweet``: a topic earned by one viral retweet vs. a real topical author (§8).
- ``new_account``: an established account vs. a new, barely used one (§6, shrinkage).

Adversaries a model version must also hold down (model 2's work, docs/model.md):

- ``slow_ring``: a ring retweeting once a day, under the burst and automation rules (§3).
- ``follow_train``: a clique of mutual name-drops, each pair about once (§3).
- ``engagement_pod``: real authors who also retweet each other daily (§3).

``registry.SCENARIOS`` maps the names ``GeneratorConfig.scenarios`` and ``--scenario`` accept
to them; ``stream.generate`` merges the background and the chosen scenarios into one sorted
stream. A scenario is reproducible on its own: randomness comes only from the
``random.Random`` (or ``seed``) passed in. Engagers passed in are background users whose
follower counts a scenario cannot know: their events carry ``DEFAULT_ENGAGER_FOLLOWERS`` and
``generate()`` rewrites them.
"""

from __future__ import annotations

from pipeline.synthetic.config import GeneratorConfig
from pipeline.synthetic.events import Event
from pipeline.synthetic.population import Population, build_population, user_ids
from pipeline.synthetic.registry import SCENARIOS
from pipeline.synthetic.stream import generate, inject, write_jsonl

__all__ = [
    "SCENARIOS",
    "Event",
    "GeneratorConfig",
    "Population",
    "build_population",
    "generate",
    "inject",
    "user_ids",
    "write_jsonl",
]
