"""`influence produce`: replay historical files into the pipeline's input topics.

`loop` is the produce loop over any `Sink`, with no Kafka in it; `to_kafka` is the aiokafka
sink, the watermark read-back and `run_produce`, the command.

Each valid event goes to its input topic by kind (tweet, quote, reply → tweets; retweet →
retweets; mention → mentions), keyed by its actor (murmur2, as the pipeline requires), with the
Kafka record timestamp set to its event time. Invalid lines are counted, written to
``--dead-letter FILE`` when asked, and never produced: the dead-letter topic is for what workers
reject, with a topic/partition/offset that a file line does not have.

Re-running is safe. Every record carries two headers: ``influence-source`` (a fingerprint of the
input: sha256 of its bytes, or ``--source-id``) and ``influence-line`` (its line number). Before
producing, each input partition is read back from its end until the newest record of that
source is found; its line is the partition's watermark. A line whose partition already holds
that source's watermark at or beyond it is skipped. The idempotent producer keeps each
partition's records in send order with no gaps or copies, so everything of that source below a
partition's watermark is already there: a second run of the same file produces nothing, and a
run that died half-way resumes exactly where each partition stopped. What it does not cover:
two produce runs of the same input at the same time; a later run with an *earlier* ``--from``
(lines below a watermark are never produced); and records written by other producers (the
workers' per-actor dedup of recent event ids is the only guard there).
"""

from pipeline.produce.loop import TimeRange, produce
from pipeline.produce.to_kafka import run_produce

__all__ = ["TimeRange", "produce", "run_produce"]
