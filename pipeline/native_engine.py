"""The embedded engine on the compiled core (`scoring._native`), behind `Engine`'s interface.

Replays run here: the Python engine spends ~25 µs on an event, the compiled one ~1. Both
follow the same rules operation for operation and give the same bits (tests/test_native.py
compares score events, states and snapshots on generated and Higgs streams), so every other
part of the pipeline, and the Kafka workers, keep using the Python core unchanged.

States live in the compiled engine; `states` is a read-only view that builds a Python
`UserState` for a user when asked (for snapshots, explanations and tests), never per event.
`process_json` / `process_higgs` take a raw input line, and `score_lines` a batch of them, and
score the usual event without building a Python object for it; a line of any other shape is
left to the caller, who decodes it in Python (`pipeline.codec`, which gives an invalid line its
reason) and passes the event to `process`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from pipeline.engine import Emitted, Engine, EngineStats
from pipeline.settings import CORE_ENV, core_from_env
from scoring import Event, Model, Reason, ScoreChange, TopicScore, UserState
from scoring.quality import AudienceQuality, QualityReason
from scoring.state import state_from_row

if TYPE_CHECKING:
    from scoring import _native

Core = Literal["auto", "native", "python"]
Running = Literal["native", "python"]


class NativeUnavailable(RuntimeError):
    """The compiled core was asked for but is not built (pip install builds it with cargo)."""


def _native_module() -> ModuleType:
    try:
        from scoring import _native
    except ImportError as exc:
        raise NativeUnavailable(
            "the compiled core scoring._native is not built: reinstall with "
            f"`pip install -e .` (needs Rust's cargo) or set {CORE_ENV}=python ({exc})"
        ) from exc
    return _native


class NativeStates(Mapping[str, UserState]):
    """Read-only view of the compiled engine's states; each read builds a fresh copy."""

    def __init__(self, core: _native.NativeEngine) -> None:
        self._core = core

    def __getitem__(self, user: str) -> UserState:
        row = self._core.state_row(user)
        if row is None:
            raise KeyError(user)
        return state_from_row(row)

    def __contains__(self, user: object) -> bool:
        return isinstance(user, str) and user in self._core

    def __iter__(self) -> Iterator[str]:
        return iter(self._core.user_ids())

    def __len__(self) -> int:
        return len(self._core)


class NativeEngine:
    """`Engine` with the compiled core: same methods, same records, same numbers."""

    def __init__(self, model: Model) -> None:
        native = _native_module()
        self.model = model
        self._core: _native.NativeEngine = native.NativeEngine(
            model, Emitted, ScoreChange, Reason, TopicScore, AudienceQuality, QualityReason
        )
        self.states: Mapping[str, UserState] = NativeStates(self._core)
        self.process_json = self._core.process_json
        """Scores one v1 JSON line: its changes, or None to decode the line in Python."""
        self.process_higgs = self._core.process_higgs
        """Scores one Higgs line (with its line number), or None to decode it in Python."""
        self.score_lines = self._core.score_lines
        """Scores a batch of raw lines up to the first that needs Python; returns its index.
        See `scoring._native.NativeEngine.score_lines`."""
        self.take_changes = self._core.take_changes
        """The changes `score_lines` kept, as `Emitted` records."""
        self.take_changes_json = self._core.take_changes_json
        """The changes `score_lines` kept, as --events-out lines (bytes) for a model version:
        the bytes `pipeline.codec.score_change_json` writes, without a record per change."""
        self.snapshot_json = self._core.snapshot_json
        """The snapshot at an event time as --snapshot-out bytes, about a megabyte a chunk:
        the bytes of `pipeline.replay.snapshot_line` for each user in id order."""
        self.snapshots = self._core.snapshots
        """Every user's snapshot fields at an event time, in user-id order."""
        self.scores = self._core.scores
        """(score, user) at an event time of every user who received engagement."""

    @property
    def now(self) -> int | None:
        now: int | None = self._core.now
        return now

    @property
    def stats(self) -> EngineStats:
        by_kind, duplicates, self_engagements, changes, decay = self._core.counts()
        return EngineStats(Counter(dict(by_kind)), duplicates, self_engagements, changes, decay)

    def process(self, event: Event) -> list[Emitted]:
        emitted: list[Emitted] = self._core.process(event)
        return emitted

    def advance_to(self, ts: int) -> list[Emitted]:
        emitted: list[Emitted] = self._core.advance_to(ts)
        return emitted

    def users(self) -> Iterator[tuple[str, UserState]]:
        """All users in id order (for snapshots)."""
        for user in sorted(self._core.user_ids()):
            yield user, self.states[user]


AnyEngine = Engine | NativeEngine


def resolve_core(requested: str, needs: str = "NativeEngine") -> Running:
    """The core a process runs for `requested` (`Settings.core`): ``auto`` is the compiled
    one when it is built, else Python; ``native`` fails when it is not (`NativeUnavailable`).
    `needs` names the class the caller uses (a worker: ``NativeUsers``): an extension built
    from an older checkout may lack it, and counts as not built."""
    if requested not in ("auto", "native", "python"):
        raise ValueError(f"{CORE_ENV} must be auto, native or python, not {requested!r}")
    if requested == "python":
        return "python"
    try:
        if not hasattr(_native_module(), needs):
            raise NativeUnavailable(
                f"the compiled core scoring._native has no {needs}: it was built from an "
                f"older checkout; rebuild it (`pip install -e .`) or set {CORE_ENV}=python"
            )
    except NativeUnavailable:
        if requested == "native":
            raise
        return "python"
    return "native"


def make_engine(model: Model, core: Core | None = None) -> AnyEngine:
    """The engine for a replay: compiled unless `core` (or $INFLUENCE_CORE, `Settings.core`)
    says python; the choice is `resolve_core`'s, as a worker's."""
    if resolve_core(core or core_from_env()) == "python":
        return Engine(model)
    return NativeEngine(model)
