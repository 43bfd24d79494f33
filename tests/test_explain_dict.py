"""`Explanation.as_dict` (scoring/explain.py), the body of the API's explain reply: reasons and
topic scores become JSON objects with their field names, not bare arrays.

`dataclasses.asdict` keeps named tuples as tuples, which JSON writes as arrays; the API's
explain reply (docs/openapi.yaml) gives ``{"code": ..., "points": ...}``.
"""

from __future__ import annotations

from dataclasses import asdict

import orjson

from scoring.explain import Contributor, Explanation
from scoring.score import Reason, TopicScore
from scoring.topics import TopicEvidence

EVIDENCE = TopicEvidence("higgs", True, 3, 2, 4, 5, 0.4, 0.3, 0.6)


def _explanation() -> Explanation:
    return Explanation(
        score=42.5,
        mass=1.25,
        effective_mass=3.0,
        kind_sums={"retweets": 2.0},
        removed={"pair": 0.5},
        decay={"fast_mass": 3.0},
        counts={"retweets": 2},
        windows={"retweets": {"1h": 2}},
        top_contributors=(Contributor("alice", 1.5, True),),
        topics=(EVIDENCE,),
        topic_scores=(TopicScore("higgs", 30.0), TopicScore("lhc", 12.5)),
        reasons=(Reason("retweets", 40.0), Reason("reciprocity", -1.5)),
    )


def test_reasons_and_topic_scores_are_objects_with_their_field_names() -> None:
    body = orjson.loads(orjson.dumps(_explanation().as_dict()))
    assert body["reasons"] == [
        {"code": "retweets", "points": 40.0},
        {"code": "reciprocity", "points": -1.5},
    ]
    assert body["topic_scores"] == [
        {"topic": "higgs", "score": 30.0},
        {"topic": "lhc", "score": 12.5},
    ]


def test_every_other_field_is_asdict_s() -> None:
    body = _explanation().as_dict()
    assert set(body) == {
        "score", "mass", "effective_mass", "kind_sums", "removed", "decay", "counts",
        "windows", "top_contributors", "topics", "topic_scores", "reasons",
    }  # fmt: skip
    assert (body["score"], body["mass"], body["effective_mass"]) == (42.5, 1.25, 3.0)
    assert body["top_contributors"] == ({"user": "alice", "mass": 1.5, "reciprocal": True},)
    assert body["topics"] == ({**asdict(EVIDENCE), "topic": "higgs", "share": 0.6},)
    assert body["kind_sums"] == {"retweets": 2.0} and body["windows"] == {"retweets": {"1h": 2}}
