"""Whose score to re-check after each half of an event (§12), and under which cause.

One rule, written once so the embedded engine and the Kafka steps cannot drift apart: after an
engagement its target is checked (cause ``engagement``); after an action the actor is checked
only when the action can have moved the actor's own score (reciprocity, topics, audience) and
the actor has a score at all (it has received an engagement). Both read at the user's own latest
event time, so a re-check never mixes in decay a later event would bring.
"""

from __future__ import annotations

from scoring.acting import ActionResult
from scoring.model import Model
from scoring.score import ScoreChange, detect_change
from scoring.state import UserState


def actor_change(
    actor: str, state: UserState, result: ActionResult, model: Model
) -> ScoreChange | None:
    """The actor's score change after `apply_action` returned `result`, if it moved enough."""
    cause = result.actor_score_cause
    if cause is None or state.received is None:
        return None
    return detect_change(actor, state, state.last_ts, model, cause)


def target_change(target: str, state: UserState, model: Model) -> ScoreChange | None:
    """The target's score change after `apply_engagement`, if it moved enough."""
    return detect_change(target, state, state.last_ts, model, "engagement")
