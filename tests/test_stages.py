"""Stage times: a stage counts its own time, less the stages nested in it, to the recording
that is active; outside one it records nothing."""

import time

from tint.io.stages import recording, stage, summary


def test_a_stage_counts_its_time_less_the_stages_nested_in_it():
    with recording() as seconds:
        with stage("outer"):
            time.sleep(0.05)
            with stage("inner"):
                time.sleep(0.1)
        with stage("inner"):
            time.sleep(0.05)
    assert set(seconds) == {"outer", "inner"}
    # Sleeps last at least as long as asked, and scheduling adds little at this scale.
    assert 0.05 <= seconds["outer"] < 0.1
    assert 0.15 <= seconds["inner"] < 0.25


def test_stages_outside_a_recording_go_nowhere_and_recordings_do_not_leak():
    with stage("lost"):
        pass
    with recording() as first, stage("a"):
        pass
    with recording() as second:
        pass
    assert set(first) == {"a"} and second == {}


def test_the_summary_lists_stages_largest_first_and_the_rest_as_other():
    line = summary({"textual_inversion": 1.0, "distillation": 3.0}, total=5.0)
    assert line == "5.0 s: distillation 3.0 s, textual inversion 1.0 s, other 1.0 s"
