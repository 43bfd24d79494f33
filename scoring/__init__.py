"""The influence model: pure functions over typed per-user state. No I/O, no clock, no Kafka.

The two halves of §12's partitioned processing:
- `apply_action` runs where the actor's state lives and returns an `Engagement` to route;
- `apply_engagement` runs where the target's state lives.
Reading is separate: `read_mass`, `detect_change`, `explain`; `actor_change` and
`target_change` say whose score to re-check after each half.
"""

from scoring.acting import ActionResult, apply_action, new_user_state
from scoring.changes import actor_change, target_change
from scoring.events import Engagement, Event, Invalid, parse_event
from scoring.explain import Explanation, explain
from scoring.mass import Mass, read_mass
from scoring.model import Model, load_model, parse_model
from scoring.receiving import apply_engagement
from scoring.score import Reason, ScoreChange, TopicScore, detect_change, score_of
from scoring.state import UserState, decode_state, encode_state
from scoring.watch import DecayWatch

__all__ = [
    "ActionResult",
    "DecayWatch",
    "Engagement",
    "Event",
    "Explanation",
    "Invalid",
    "Mass",
    "Model",
    "Reason",
    "ScoreChange",
    "TopicScore",
    "UserState",
    "actor_change",
    "apply_action",
    "apply_engagement",
    "decode_state",
    "detect_change",
    "encode_state",
    "explain",
    "load_model",
    "new_user_state",
    "parse_event",
    "parse_model",
    "read_mass",
    "score_of",
    "target_change",
]
