"""A fault schedule (`tests.fault_schedule`) carried out on the in-process driver: `Run`
does each action (skipping those that make no sense any more), `Tasks` runs a worker's
agents and timers as the interleaved tasks of a Faust worker, `check` compares the end with
the embedded engine."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.driver import Driver, Worker, driver_settings
from pipeline.driver_records import Killed
from pipeline.processing import Ack, Batch, EndOffsets
from scoring import Event, Model
from tests.fault_schedule import (
    NAMES,
    Action,
    data_dirs,
    discrepancies,
    draw_schedule,
    forwarded_share,
    placement,
)
from tests.test_topology import PARTITIONS, assert_as_embedded, stream


class Run:
    """Carries out a schedule on a driver; skips actions that make no sense any more."""

    def __init__(
        self,
        model: Model,
        events: Sequence[Event],
        where: Sequence[int | None],
        workers: int,
        data_dirs: bool = False,
    ):
        self.driver = Driver(model, driver_settings(PARTITIONS))
        self.events = events
        self.where = where
        self.workers = workers
        self.data_dirs = data_dirs
        """Workers on data dirs of their own (RocksDB), kept across restarts."""
        self.piped = 0
        self.tasks: dict[str, Tasks] = {}
        for name in NAMES[:workers]:
            self.driver.start(name, data_dir=data_dirs)

    def live(self, name: str) -> bool:
        return name in self.driver.workers

    def tasks_of(self, name: str) -> Tasks:
        worker = self.driver.workers[name]
        tasks = self.tasks.get(name)
        if tasks is None or tasks.worker is not worker:
            tasks = self.tasks[name] = Tasks(worker)
        return tasks

    def quiesce(self, *, agents: Sequence[str] = (), timers: bool = False) -> None:
        """Before the driver runs steps of its own: every queued batch runs first (the
        lock's order), and the tasks those steps stand for end (an agent or a timer runs
        one task at a time)."""
        for name in self.driver.workers:
            self.tasks_of(name).drain()
        for name in self.driver.workers:
            tasks = self.tasks_of(name)
            if name in agents or timers:
                while tasks.steps:
                    tasks.finish()

    def do(self, action: Action) -> bool:
        driver, kind = self.driver, action[0]
        if kind == "ticks":
            if not self.live(action[1]):
                return False
            self.tasks_of(action[1]).ticks(action[2], random.Random(action[3]))
            return True
        if kind in ("step", "midbatch", "killbatch") and self.live(action[1]):
            self.quiesce(agents=(action[1],))
        elif kind == "steps":
            self.quiesce(agents=tuple(driver.workers))
        elif kind == "sleep":
            self.quiesce(timers=True)
        elif kind == "assign":
            self.quiesce()
        if kind == "pipe":
            stop = min(len(self.events), self.piped + action[1])
            for n in range(self.piped, stop):
                driver.pipe_input(self.events[n], partition=self.where[n])
            self.piped = stop
        elif kind == "step":
            _, name, limit, commit = action
            if not self.live(name):
                return False
            driver.workers[name].step(limit, commit=commit)
        elif kind == "steps":
            driver.step(action[1])
        elif kind == "rewind":
            if not self.live(action[1]):
                return False
            driver.workers[action[1]].rewind()
        elif kind == "crash":
            if not self.live(action[1]) or len(driver.workers) < 2:
                return False
            driver.crash(action[1])
        elif kind == "killbatch":
            if not self.live(action[1]) or len(driver.workers) < 2:
                return False
            self.kill_in_batch(action[1], action[2], random.Random(action[3]))
        elif kind == "start":
            if self.live(action[1]):
                return False
            driver.start(action[1], data_dir=self.data_dirs)
        elif kind == "assign":
            assignment = dict(action[1])
            if not all(self.live(name) for name in assignment):
                return False
            driver.assign(assignment)
        elif kind == "sleep":
            driver.sleep(action[1])
        elif kind == "midbatch":
            _, name, flow, assignment = action
            if not self.live(name) or not all(self.live(n) for n in dict(assignment)):
                return False
            self.midbatch(name, flow, dict(assignment))
        else:
            raise ValueError(kind)
        return True

    def kill_in_batch(self, name: str, skip: int, rng: random.Random) -> None:
        """A kill -9 in the middle of a batch (`pipeline.faust_runner.Pipeline.run_batch`):
        the worker's `skip`+1-th batch of its next step dies while its outputs are being
        sent (of each topic partition, a first part reached the broker) or while its changed
        users are being written (every output sent; of each partition, some of its changelog
        records written), or, on a data dir, between the two writes of its users (its store,
        the changelog: `Driver.crash_writing_users`). Nothing of it is acknowledged."""
        driver = self.driver
        if self.data_dirs and rng.random() < 0.5:
            driver.crash_writing_users(name, rng.choice((5, 50, 150)))
            return
        worker = driver.workers[name]
        processing = worker.processing
        batches = [0]

        def run_batch(batch: Batch) -> bool:
            if batch.assignment is not None and batch.assignment != worker.topology.assignment:
                return False
            if batches[0] < skip:
                batches[0] += 1
                return Worker.run_batch(worker, batch)
            for _ in worker.topology.scan():
                pass
            outputs, last_of_partition = processing.apply(batch)
            sending = rng.random() < 0.5
            by_tp: dict[tuple[str, int | None], list[Any]] = {}
            for output in outputs:
                by_tp.setdefault((output.topic, output.partition), []).append(output)
            cut = {
                tp: rng.randint(0, len(rows)) if sending else len(rows)
                for tp, rows in by_tp.items()
            }
            for tp, rows in by_tp.items():
                for output in rows[: cut[tp]]:
                    driver.produce(output)
            if not sending:
                for partition, event in last_of_partition.items():
                    written: dict[bytes, bytes] = {}
                    records = processing.changelog(partition, event, written)
                    if worker.data_dir is not None:  # its store first, as `run_batch`
                        worker.data_dir.partitions.setdefault(partition, {}).update(written)
                    driver.send_changelog(records[: rng.randint(0, len(records))])
            raise Killed(name)

        worker.run_batch = run_batch  # type: ignore[method-assign]
        try:
            for _ in range(10):
                worker.step(rng.choice((5, 50, 150)), commit=False)
        except Killed:
            pass
        driver.crash(name)

    def midbatch(self, name: str, flow: str, assignment: dict[str, Any]) -> None:
        """A batch taken from the worker's holds, then a rebalance before it runs: refused."""
        driver = self.driver
        worker = driver.workers[name]
        names = driver.settings.topics
        processing = worker.processing
        if flow == "inputs":
            steps = processing.input_steps(worker.fetch((*names.inputs, names.forwarded), 150))
        else:
            steps = processing.engagement_steps(worker.fetch((names.engagements,), 150))
        step: Any = next(steps, None)
        while step is not None and not isinstance(step, Batch):
            reply: Any = None
            if isinstance(step, EndOffsets):
                log = driver.log
                reply = {(t, p): len(log(t)[p]) for t, p in step.partitions}
            elif isinstance(step, Ack):  # what needs no batch is carried out
                for event in step.events:
                    worker.ack(event.message)
            try:
                step = steps.send(reply)
            except StopIteration:
                step = None
        driver.assign(assignment)
        if step is not None:
            assert worker.run_batch(step) is False
        steps.close()

    def finish(self) -> None:
        """Everyone back, a stable assignment, and the rest of the work."""
        driver, workers = self.driver, self.workers
        self.quiesce(agents=tuple(driver.workers))
        self.do(("pipe", len(self.events)))
        names = NAMES[:workers]
        for name in names:
            if not self.live(name):
                driver.start(name, data_dir=self.data_dirs)
        driver.assign({name: range(i, PARTITIONS, workers) for i, name in enumerate(names)})
        driver.run()


class Tasks:
    """One worker's agents and timers as the asyncio tasks of a Faust worker: each delivery
    or timer run is a generator of `pipeline.processing` steps, suspended where the Faust
    runner awaits (`pipeline.faust_runner.Pipeline.run`): at a `Batch` (the batch lock,
    first come first served; a batch then runs whole, its sends and flushes included), at
    an `EndOffsets` read and at a `Pause`. An `Ack` does not suspend (Faust's `Stream.ack`
    awaits nothing). One task per agent and per timer at a time, as Faust runs them; the
    driver's `Worker.step` and `Driver.sleep` run theirs to the end, so the lock's queue is
    run first (`drain`)."""

    AGENTS = ("act", "receive")
    TIMERS = ("inputs-timer", "engagements-timer")

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.steps: dict[str, Any] = {}
        self.step: dict[str, Any] = {}
        self.lock: deque[str] = deque()

    def spawn(self, name: str, limit: int | None) -> bool:
        if name in self.steps:
            return False
        worker = self.worker
        processing, names = worker.processing, worker.driver.settings.topics
        if name == "act":
            events = worker.fetch((*names.inputs, names.forwarded), limit)
            if not events:
                return False
            steps = processing.input_steps(events)
        elif name == "receive":
            events = worker.fetch((names.engagements,), limit)
            if not events:
                return False
            steps = processing.engagement_steps(events)
        elif name == "inputs-timer":
            steps = processing.input_steps([])
        else:
            if not processing.engagements.held:
                return False
            steps = processing.engagement_steps([])
        self.steps[name] = steps
        self.resume(name, None)
        return True

    def resume(self, name: str, reply: Any) -> None:
        """Runs the task to its next suspension (acknowledging on the way)."""
        steps = self.steps[name]
        try:
            step = steps.send(reply) if name in self.step else next(steps)
            while isinstance(step, Ack):
                for event in step.events:
                    if event.message.partition in self.worker.owned:  # a stale one: refused
                        self.worker.ack(event.message)
                step = steps.send(None)
        except StopIteration:
            del self.steps[name]
            self.step.pop(name, None)
            return
        self.step[name] = step
        if isinstance(step, Batch):
            self.lock.append(name)

    def advance(self, name: str) -> bool:
        """The awaited read or pause of a suspended task ends."""
        step = self.step.get(name)
        if step is None or isinstance(step, Batch):
            return False
        reply: Any = None
        if isinstance(step, EndOffsets):
            log = self.worker.driver.log
            reply = {(t, p): len(log(t)[p]) for t, p in step.partitions}
        self.resume(name, reply)
        return True

    def run_lock(self) -> bool:
        """The batch at the head of the lock's queue runs."""
        if not self.lock:
            return False
        name = self.lock.popleft()
        self.resume(name, self.worker.run_batch(self.step[name]))
        return True

    def tick(self, rng: random.Random) -> bool:
        """One of the things that may happen next, drawn: a task starts, a suspended one
        goes on, or the batch at the head of the lock's queue runs."""
        moves: list[Callable[[], bool]] = [
            lambda name=name: self.spawn(name, rng.choice((1, 5, 50, 150)))  # type: ignore[misc]
            for name in (*self.AGENTS, *self.TIMERS)
            if name not in self.steps
        ]
        moves += [
            lambda name=name: self.advance(name)  # type: ignore[misc]
            for name, step in self.step.items()
            if not isinstance(step, Batch)
        ]
        if self.lock:
            moves += [self.run_lock] * 2
        return bool(moves) and rng.choice(moves)()

    def ticks(self, n: int, rng: random.Random) -> None:
        for _ in range(n):
            self.tick(rng)

    def drain(self) -> None:
        while self.run_lock():
            pass

    def finish(self) -> None:
        """Every task to its end."""
        while self.steps:
            if not self.run_lock():
                for name in list(self.step):
                    self.advance(name)


def run_schedule(
    model: Model,
    seed: int,
    actions: Sequence[Action] | None = None,
    events: Sequence[Event] | None = None,
    workers: int | None = None,
) -> Run:
    events = tuple(stream()) if events is None else tuple(events)
    drawn_workers, drawn = draw_schedule(seed, len(events))
    where = placement(seed, events, forwarded_share(seed))
    run = Run(model, events, where, drawn_workers if workers is None else workers, data_dirs(seed))
    for action in drawn if actions is None else actions:
        run.do(action)
    run.finish()
    return run


def silences(run: Run, actions: Sequence[Action]) -> bool:
    """Whether the schedule sleeps past `merge_max_wait_s` at once: merges then stop
    waiting for sources nobody reads (by design, `pipeline.merge.SourceMerge.max_wait_s`),
    and engagements may be applied out of event-time order. Scores may differ then;
    nothing may be lost."""
    wait = run.driver.settings.merge_max_wait_s
    return any(action[0] == "sleep" and action[1] >= wait for action in actions)


def check(model: Model, seed: int, actions: Sequence[Action] | None = None, **kwargs: Any) -> None:
    run = run_schedule(model, seed, actions, **kwargs)
    found = discrepancies(run.driver, run.events)
    silent = silences(run, draw_schedule(seed, len(run.events))[1] if actions is None else actions)
    if silent:
        found.pop("scores", None)
    assert found == {}
    if not silent:
        assert_as_embedded(run.driver, list(run.events))
