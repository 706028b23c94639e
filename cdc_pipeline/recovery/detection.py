"""Before every read: does Kafka still hold everything after the pipeline's resume point?

The run history's resume point (per partition, the next offset to read, on one topic incarnation) is
compared with what the broker answers now. ``plan_read`` is a pure function of both, so every case is
tested without a broker and the same code runs against the real one:

- no topic yet and no resume point: nothing captured so far;
- a first run: read the topic from its start (or from a date); a start above 0 means retention already
  deleted the beginning (the snapshot), and a table built from the rest would be partial: loss;
- the topic is missing, or has another id (deleted and created again, or the broker lost its data):
  fine only when the last incarnation was drained to its end before its broker stopped (a clean end
  recorded at exactly the resume point); then the new incarnation is read from its start;
- same topic: a partition whose log start is above the resume point (retention deleted unread events),
  or whose high watermark is below it (the log was truncated, or the broker lost its data), is a loss;
- the consumer group's committed offsets are only a mirror of the history: a difference is noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc_pipeline.formatting import describe_positions
from cdc_pipeline.history import Incarnation, ResumePoint
from cdc_pipeline.kafka.topic import TopicState


@dataclass(frozen=True)
class ReadPlan:
    """Read from ``starts``; ``incarnation`` is the known incarnation, or None when the topic is a new one
    (``topic_id``) that must be recorded first."""

    starts: dict[int, int]
    incarnation: int | None
    topic_id: str | None
    reason: str                 # continue | first_run | new_incarnation
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NothingToRead:
    reason: str


@dataclass(frozen=True)
class LossFound:
    """Kafka no longer holds what the pipeline has not read yet. ``lost`` lists, per partition, the offsets
    that cannot be read any more (``to`` is None when the broker cannot say how many there were)."""

    summary: str
    lost: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Decision = ReadPlan | NothingToRead | LossFound


def plan_read(
    topic: TopicState,
    resume: ResumePoint | None,
    incarnation: Incarnation | None,
    *,
    committed: dict[int, int | None] | None = None,
    first_starts: dict[int, int] | None = None,
) -> Decision:
    """Decide where this run reads. ``first_starts`` are a first run's start offsets when it starts from a
    date."""
    if resume is None:
        return _first_run(topic, first_starts)
    if resume.incarnation is None:  # a rebuild or reset that waits for the next topic, from its start
        if not topic.exists:
            return NothingToRead(f"waiting for topic {topic.topic} to be created by the connector")
        return _new_incarnation(topic, "the new snapshot's topic")
    if incarnation is None:
        raise ValueError(f"resume point {resume.seq} names incarnation {resume.incarnation}, which is not recorded")
    clean = incarnation.clean_end is not None and _covers(incarnation.clean_end, resume.ends)
    if not topic.exists:
        if clean:
            return NothingToRead(
                f"topic {topic.topic} is gone after incarnation {incarnation.seq} was drained to its end: waiting for "
                "the connector to create it again")
        return _loss(f"topic {topic.topic} no longer exists: the broker lost it or it was deleted", resume, incarnation,
                     topic)
    if incarnation.topic_id and topic.topic_id and topic.topic_id != incarnation.topic_id:
        if clean:
            return _new_incarnation(topic, f"incarnation {incarnation.seq} was drained to its end before its broker stopped")
        return _loss(f"topic {topic.topic} was created again (id {incarnation.topic_id} is now {topic.topic_id}): the "
                     "broker lost its data or the topic was deleted", resume, incarnation, topic)
    return _continue(topic, resume, incarnation, committed)


def deleted_before(topic: TopicState, starts: dict[int, int]) -> dict[int, int]:
    """The partitions whose start, found from a date, is a log start above 0: retention deleted the records before
    it (offsets_for_times then answers the log start), and some of them may be newer than the date."""
    return {p: low for p, low in topic.low.items() if low > 0 and starts.get(p) == low}


def _first_run(topic: TopicState, first_starts: dict[int, int] | None) -> Decision:
    if not topic.exists:
        return NothingToRead(f"topic {topic.topic} does not exist yet: no change captured so far")
    if first_starts is not None:
        gone = deleted_before(topic, first_starts)
        if gone:
            return LossFound(
                f"topic {topic.topic} no longer holds its records before offsets {describe_positions(gone)}: retention "
                "deleted them, and some may be newer than the start date, so starting there could skip changes silently",
                [{"partition": p, "from": None, "to": low, "incarnation": None} for p, low in sorted(gone.items())])
        return ReadPlan(dict(first_starts), None, topic.topic_id, "first_run",
                        [f"starting from a date: first offsets {describe_positions(first_starts)}"])
    gone = {p: low for p, low in topic.low.items() if low > 0}
    if gone:
        return LossFound(
            f"topic {topic.topic} no longer starts at offset 0 ({describe_positions(gone)}): retention deleted its oldest events, "
            "the initial snapshot among them, so a table built from the rest would be partial",
            [{"partition": p, "from": 0, "to": low, "incarnation": None} for p, low in sorted(gone.items())])
    return ReadPlan({p: 0 for p in topic.partitions}, None, topic.topic_id, "first_run")


def _new_incarnation(topic: TopicState, why: str) -> Decision:
    gone = {p: low for p, low in topic.low.items() if low > 0}
    if gone:
        return LossFound(f"the new topic {topic.topic} already lost its first offsets ({describe_positions(gone)})",
                         [{"partition": p, "from": 0, "to": low, "incarnation": None} for p, low in sorted(gone.items())])
    return ReadPlan({p: 0 for p in topic.partitions}, None, topic.topic_id, "new_incarnation",
                    [f"new topic incarnation (id {topic.topic_id}): {why}; reading it from offset 0"])


def _continue(topic: TopicState, resume: ResumePoint, incarnation: Incarnation, committed) -> Decision:
    lost, notes = [], []
    missing = sorted(set(resume.ends) - set(topic.partitions))
    for p in missing:
        lost.append({"partition": p, "from": resume.ends[p], "to": None, "incarnation": incarnation.seq,
                     "why": "the partition no longer exists"})
    starts: dict[int, int] = {}
    for p in topic.partitions:
        low = topic.low.get(p, 0)
        end = resume.ends.get(p)
        if end is None:  # a partition added since: read it from its start
            if low > 0:
                lost.append({"partition": p, "from": 0, "to": low, "incarnation": incarnation.seq,
                             "why": "a new partition whose first offsets were already deleted"})
            starts[p] = low
            notes.append(f"partition {p} is new: reading it from {low}")
            continue
        if low > end:
            lost.append({"partition": p, "from": end, "to": low, "incarnation": incarnation.seq,
                         "why": "retention deleted them before they were read"})
        elif end > topic.listed_high.get(p, 0):  # the high watermark is the exact end
            lost.append({"partition": p, "from": None, "to": end, "incarnation": incarnation.seq,
                         "why": "the log ends below the resume point (the broker truncated or lost it)"})
        starts[p] = end
    if lost:
        return LossFound(f"topic {topic.topic} no longer holds everything after the resume point: "
                         + "; ".join(_describe(item) for item in lost), lost)
    if committed is not None:
        differing = {p: c for p, c in committed.items() if c != starts.get(p)}
        if differing and all(c is None for c in differing.values()):
            notes.append("the consumer group has no committed offsets although the run history has a resume point "
                         "(the group was deleted or the broker forgot it): resuming from the run history")
        elif differing:
            notes.append(f"the consumer group's committed offsets {describe_positions(differing)} differ from the run history's "
                         f"resume point {describe_positions(starts)}: resuming from the run history (use the reset operation to move a "
                         "pipeline)")
    return ReadPlan(starts, incarnation.seq, incarnation.topic_id, "continue", notes)


def _loss(summary: str, resume: ResumePoint, incarnation: Incarnation, topic: TopicState) -> LossFound:
    lost = [{"partition": p, "from": end, "to": None, "incarnation": incarnation.seq,
             "why": "not read before the topic was lost"} for p, end in sorted(resume.ends.items())]
    return LossFound(summary + f"; whatever followed offsets {describe_positions(resume.ends)} of incarnation "
                     f"{incarnation.seq} was never read", lost)


def _covers(clean_end: dict[int, int], ends: dict[int, int]) -> bool:
    """A clean end counts only at exactly the resume point: reading past it means the incarnation lived on
    (its broker kept it), and the consume step then clears the clean end."""
    return all(ends.get(p) == end for p, end in clean_end.items())




def _describe(item: dict) -> str:
    start = "?" if item.get("from") is None else item["from"]
    end = "?" if item.get("to") is None else item["to"]
    return f"p{item['partition']} [{start}, {end}) ({item['why']})"
