"""``follow-train``: accounts that name-drop each other in "follow train" posts (adversary).

Each of 40 accounts posts one train a day naming 10 of the others, rotating so that in four
days everyone has mentioned everyone else about once. No pair repeats much (the pair discount
sees little), no day is large (bursts see little), every tie is mutual: only reciprocity sees
it, and model 2 counts distinct engagers, which a train multiplies.
Placed over the last 4 days of the span; draws no background engagers.
"""

from __future__ import annotations

from pipeline.synthetic.events import DAY_MS, HOUR_MS, MINUTE_MS, Event, EventBuilder
from pipeline.synthetic.placement import Placement, Scenario

__all__ = ["FOLLOW_TRAIN_PREFIX", "SCENARIO", "follow_train_events", "train_riders"]

FOLLOW_TRAIN_PREFIX = "train"
"""Riders are ``train-00`` … ``train-39``."""
FOLLOW_TRAIN_DAYS = 4
FOLLOW_TRAIN_NAMES_PER_POST = 10
FOLLOW_TRAIN_FOLLOWERS = 300
"""Each rider's follower count: small accounts trading reach."""
FOLLOW_TRAIN_HASHTAG = "followtrain"


def train_riders(riders: int = 40, prefix: str = FOLLOW_TRAIN_PREFIX) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(riders)]


def follow_train_events(
    start_ms: int,
    *,
    riders: int = 40,
    days: int = FOLLOW_TRAIN_DAYS,
    names_per_post: int = FOLLOW_TRAIN_NAMES_PER_POST,
) -> list[Event]:
    """Every rider posts a train a day (a tweet, then one mention per name in it), from
    ``start_ms`` for ``days`` days; rider i names riders i+1+k (mod riders), k continuing where
    the day before stopped."""
    out = EventBuilder(FOLLOW_TRAIN_PREFIX)
    users = train_riders(riders)
    for day in range(days):
        for i, rider in enumerate(users):
            ts = start_ms + day * DAY_MS + i * 30 * MINUTE_MS % (20 * HOUR_MS)
            out.tweet(rider, ts, [FOLLOW_TRAIN_HASHTAG], FOLLOW_TRAIN_FOLLOWERS)
            for k in range(names_per_post):
                shift = 1 + (day * names_per_post + k) % (riders - 1)
                named = users[(i + shift) % riders]
                out.engage(
                    "mention",
                    ts + (k + 1) * 1000,
                    rider,
                    FOLLOW_TRAIN_FOLLOWERS,
                    target=named,
                    ref=None,
                )
    return out.events()


def place(at: Placement) -> list[Event]:
    """``follow_train_events`` from ``E - 4 d``."""
    return follow_train_events(at.end_ms - FOLLOW_TRAIN_DAYS * DAY_MS)


SCENARIO = Scenario("follow-train", min_days=FOLLOW_TRAIN_DAYS, min_users=0, place=place)
