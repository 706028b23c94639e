"""Where a run reads, and when Kafka has forgotten what the pipeline had not read yet."""

from __future__ import annotations

from cdc_pipeline.history import Incarnation, ResumePoint
from cdc_pipeline.kafka.topic import TopicState
from cdc_pipeline.recovery.detection import LossFound, NothingToRead, ReadPlan, plan_read

TOPIC = "pg.public.t"


def topic(exists=True, topic_id="A", low=None, high=None, partitions=(0, 1)) -> TopicState:
    if not exists:
        return TopicState(TOPIC, exists=False)
    return TopicState(TOPIC, True, topic_id, tuple(partitions), low or {p: 0 for p in partitions},
                      high or {p: 100 for p in partitions})


def resume(ends, incarnation=1, epoch=0) -> ResumePoint:
    return ResumePoint(7, "batch", incarnation, epoch, ends, "run")


def incarnation(topic_id="A", clean_end=None) -> Incarnation:
    return Incarnation(1, TOPIC, topic_id, clean_end)


def test_no_topic_and_no_resume_point_means_nothing_captured_yet():
    decision = plan_read(topic(exists=False), None, None)
    assert isinstance(decision, NothingToRead) and "does not exist yet" in decision.reason


def test_a_first_run_reads_every_partition_from_offset_zero():
    decision = plan_read(topic(topic_id="B"), None, None)
    assert decision == ReadPlan({0: 0, 1: 0}, None, "B", "first_run")


def test_a_first_run_from_a_date_starts_where_told():
    decision = plan_read(topic(), None, None, first_starts={0: 5, 1: 9})
    assert isinstance(decision, ReadPlan) and decision.starts == {0: 5, 1: 9}


def test_a_first_run_refuses_a_topic_whose_beginning_was_deleted():
    decision = plan_read(topic(low={0: 0, 1: 40}), None, None)
    assert isinstance(decision, LossFound)
    assert "retention deleted its oldest events" in decision.summary
    assert decision.lost == [{"partition": 1, "from": 0, "to": 40, "incarnation": None}]


def test_the_same_topic_continues_from_the_resume_point():
    decision = plan_read(topic(), resume({0: 10, 1: 20}), incarnation())
    assert decision == ReadPlan({0: 10, 1: 20}, 1, "A", "continue")


def test_a_partition_added_since_is_read_from_its_start():
    decision = plan_read(topic(partitions=(0, 1, 2)), resume({0: 10, 1: 20}), incarnation())
    assert isinstance(decision, ReadPlan) and decision.starts == {0: 10, 1: 20, 2: 0}
    assert any("partition 2 is new" in note for note in decision.notes)


def test_retention_deleting_unread_events_is_a_loss():
    decision = plan_read(topic(low={0: 0, 1: 35}), resume({0: 10, 1: 20}), incarnation())
    assert isinstance(decision, LossFound)
    assert decision.lost == [{"partition": 1, "from": 20, "to": 35, "incarnation": 1,
                              "why": "retention deleted them before they were read"}]


def test_a_log_that_ends_below_the_resume_point_is_a_loss():
    decision = plan_read(topic(high={0: 9, 1: 100}), resume({0: 10, 1: 20}), incarnation())
    assert isinstance(decision, LossFound) and [item["partition"] for item in decision.lost] == [0]
    assert "ends below the resume point" in decision.summary


def test_a_resume_point_at_the_high_watermark_is_held():
    # the high watermark is the exact end: a pipeline that read everything resumes there, even on an empty log
    decision = plan_read(topic(high={0: 10, 1: 0}), resume({0: 10, 1: 0}), incarnation())
    assert decision == ReadPlan({0: 10, 1: 0}, 1, "A", "continue")


def test_a_missing_topic_without_a_clean_end_is_a_loss():
    decision = plan_read(topic(exists=False), resume({0: 10, 1: 20}), incarnation())
    assert isinstance(decision, LossFound) and "no longer exists" in decision.summary
    assert [item["from"] for item in decision.lost] == [10, 20]


def test_a_missing_topic_after_a_clean_end_waits_for_the_new_one():
    decision = plan_read(topic(exists=False), resume({0: 10, 1: 20}), incarnation(clean_end={0: 10, 1: 20}))
    assert isinstance(decision, NothingToRead) and "drained to its end" in decision.reason


def test_a_recreated_topic_after_a_clean_end_is_a_new_incarnation_read_from_zero():
    decision = plan_read(topic(topic_id="B"), resume({0: 10, 1: 20}), incarnation(clean_end={0: 10, 1: 20}))
    assert isinstance(decision, ReadPlan)
    assert (decision.starts, decision.incarnation, decision.topic_id, decision.reason) == ({0: 0, 1: 0}, None, "B", "new_incarnation")


def test_a_recreated_topic_without_a_clean_end_is_a_loss():
    decision = plan_read(topic(topic_id="B"), resume({0: 10, 1: 20}), incarnation())
    assert isinstance(decision, LossFound) and "created again (id A is now B)" in decision.summary


def test_a_clean_end_counts_only_at_exactly_the_resume_point():
    # Read past the clean end: the incarnation lived on, so a later loss is not excused by the old clean end.
    decision = plan_read(topic(topic_id="B"), resume({0: 12, 1: 20}), incarnation(clean_end={0: 10, 1: 20}))
    assert isinstance(decision, LossFound)


def test_a_resume_point_waiting_for_the_next_topic_reads_it_from_its_start():
    waiting = resume({}, incarnation=None)
    assert isinstance(plan_read(topic(exists=False), waiting, None), NothingToRead)
    decision = plan_read(topic(topic_id="C"), waiting, None)
    assert isinstance(decision, ReadPlan) and decision.starts == {0: 0, 1: 0} and decision.incarnation is None


def test_a_lost_consumer_group_is_noted_and_the_history_wins():
    decision = plan_read(topic(), resume({0: 10, 1: 20}), incarnation(), committed={0: None, 1: None})
    assert isinstance(decision, ReadPlan) and decision.starts == {0: 10, 1: 20}
    assert any("no committed offsets" in note for note in decision.notes)


def test_a_group_moved_outside_the_pipeline_is_noted():
    decision = plan_read(topic(), resume({0: 10, 1: 20}), incarnation(), committed={0: 3, 1: 20})
    assert isinstance(decision, ReadPlan) and decision.starts == {0: 10, 1: 20}
    assert any("differ from the run history" in note for note in decision.notes)


def test_a_first_run_from_a_date_that_lands_on_a_deleted_log_start_reports_the_loss():
    """offsets_for_times answers the log start when the records before it were deleted: some of them may have been
    newer than the date, so starting there could skip changes; a later point inside the log is fine."""
    decision = plan_read(topic(low={0: 0, 1: 40}), None, None, first_starts={0: 5, 1: 40})
    assert isinstance(decision, LossFound) and "newer than the start date" in decision.summary
    assert [item["partition"] for item in decision.lost] == [1]
    assert isinstance(plan_read(topic(low={0: 0, 1: 40}), None, None, first_starts={0: 5, 1: 41}), ReadPlan)
