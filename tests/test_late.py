"""The late policy: when a hand-in is late, what it costs, and the sentence a student reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader import late
from grader.late import Due, LatePolicy, lateness

PLUS8 = timezone(timedelta(hours=8))
DUE = datetime(2026, 10, 5, 23, 59, tzinfo=PLUS8)
DAILY = LatePolicy(per="day", penalty=0.1)
HOURLY = LatePolicy(per="hour", penalty=0.05)


def after(**span: float) -> datetime:
    return DUE + timedelta(**span)


def counted(policy: LatePolicy | None, submitted: datetime | None, lms_late: bool | None = None,
            student: str = "amy", extensions: dict[str, datetime] | None = None
            ) -> late.Lateness:
    due = Due(at=DUE, policy=policy, extensions=extensions or {})
    return lateness(due, student, submitted, lms_late)


# ----------------------------------------------------------------------------------- the rules


def test_at_the_due_date_is_on_time_and_a_second_later_is_a_day_started():
    on_time = counted(DAILY, DUE)
    assert (on_time.late, on_time.late_by, on_time.periods, on_time.fraction) == (
        False, None, 0, 0.0)
    over = counted(DAILY, after(seconds=1))
    assert (over.late, over.late_by, over.periods, over.fraction) == (
        True, timedelta(seconds=1), 1, 0.1)


@pytest.mark.parametrize(("late_by", "days"), [
    (timedelta(hours=23, minutes=59), 1), (timedelta(days=1), 1),
    (timedelta(days=1, seconds=1), 2), (timedelta(days=2, hours=5), 3),
])
def test_each_day_started_costs_one_penalty(late_by, days):
    result = counted(DAILY, DUE + late_by)
    assert result.periods == days
    assert result.fraction == pytest.approx(0.1 * days)


def test_per_hour_counts_hours_started():
    result = counted(HOURLY, after(hours=2, minutes=1))
    assert (result.periods, result.fraction) == (3, 0.15)
    assert counted(DAILY, after(hours=2, minutes=1)).periods == 1


def test_the_grace_period_ends_exactly_at_its_last_second():
    policy = LatePolicy(per="hour", penalty=0.1, grace=timedelta(minutes=15))
    assert not counted(policy, after(minutes=15)).late
    one_over = counted(policy, after(minutes=15, seconds=1))
    assert one_over.late and one_over.late_by == timedelta(minutes=15, seconds=1)
    assert one_over.periods == 1


def test_the_grace_only_decides_whether_days_are_counted_from_the_due_date():
    """Canvas counts periods from the due date; a grace forgives, it does not move the clock:
    a day and a half hour late with an hour's grace is two days started, not one."""
    policy = LatePolicy(per="day", penalty=0.1, grace=timedelta(hours=1))
    result = counted(policy, after(days=1, minutes=30))
    assert (result.periods, result.fraction) == (2, 0.2)


def test_the_cap_is_the_most_lateness_takes():
    policy = LatePolicy(per="day", penalty=0.1, cap=0.3)
    assert counted(policy, after(days=2, hours=1)).fraction == 0.3
    result = counted(policy, after(days=6))
    assert (result.periods, result.fraction) == (6, 0.3)


def test_three_tenths_are_not_a_float_above_the_cap():
    policy = LatePolicy(per="day", penalty=0.1, cap=0.3)
    assert counted(policy, after(days=2, hours=1)).fraction == 0.3  # 3 * 0.1 != 0.3 in floats
    assert counted(DAILY, after(days=2, hours=1)).fraction == 0.3


def test_after_zero_after_the_whole_score_goes():
    policy = LatePolicy(per="day", penalty=0.1, cap=0.5, zero_after=timedelta(days=7))
    assert counted(policy, after(days=7)).fraction == 0.5
    assert counted(policy, after(days=7, seconds=1)).fraction == 1.0


def test_an_extension_moves_one_students_due_date_only():
    extended = {"bob": after(days=2)}
    submitted = after(days=1, hours=3)
    bob = counted(DAILY, submitted, student="bob", extensions=extended)
    amy = counted(DAILY, submitted, student="amy", extensions=extended)
    assert (bob.late, bob.fraction, bob.due, bob.extended) == (False, 0.0, after(days=2), True)
    assert (amy.late, amy.fraction, amy.due, amy.extended) == (True, 0.2, DUE, False)
    assert Due(at=DUE, extensions=extended).for_student("Bob") == DUE  # ids match exactly


def test_the_lms_saying_late_without_a_time_counts_one_period():
    result = counted(DAILY, None, lms_late=True)
    assert (result.late, result.assumed, result.late_by, result.periods, result.fraction) == (
        True, True, None, 1, 0.1)
    capped = counted(LatePolicy(per="day", penalty=0.5, cap=0.25), None, lms_late=True)
    assert capped.fraction == 0.25


@pytest.mark.parametrize("lms_late", [False, None])
def test_without_a_time_or_the_lms_saying_late_it_is_on_time(lms_late):
    result = counted(DAILY, None, lms_late=lms_late)
    assert (result.late, result.assumed, result.fraction) == (False, False, 0.0)


def test_a_known_time_outweighs_the_lms_word():
    """The due date and extensions in assignment.toml are the TA's; the LMS's flag may have
    been set against another due date."""
    assert not counted(DAILY, after(hours=-1), lms_late=True).late
    assert counted(DAILY, after(hours=1), lms_late=False).fraction == 0.1


def test_without_a_policy_lateness_is_recorded_and_costs_nothing():
    result = counted(None, after(days=3))
    assert (result.late, result.late_by, result.periods, result.fraction) == (
        True, timedelta(days=3), 0, 0.0)
    assert counted(None, None, lms_late=True).fraction == 0.0


def test_a_utc_time_is_compared_with_the_due_date_in_its_own_zone():
    """20:00 UTC reads earlier than 23:59 on the clock, but it is 04:00 the next day at +08:00."""
    submitted = datetime(2026, 10, 5, 20, 0, tzinfo=UTC)
    result = counted(HOURLY, submitted)
    assert result.late_by == timedelta(hours=4, minutes=1)
    assert result.periods == 5
    assert not counted(HOURLY, datetime(2026, 10, 5, 15, 59, tzinfo=UTC)).late


def test_a_time_without_a_zone_is_read_in_the_due_dates_zone():
    result = counted(HOURLY, datetime(2026, 10, 6, 0, 30))
    assert result.late_by == timedelta(minutes=31)
    assert result.submitted_at == datetime(2026, 10, 6, 0, 30, tzinfo=PLUS8)


@pytest.mark.parametrize(("fraction", "points", "possible", "left"), [
    (0.2, 8.0, 10.0, 6.0),      # a fraction of the points possible, not of those earned
    (0.3, 2.0, 10.0, 0.0),      # never below nothing
    (1.0, 10.0, 10.0, 0.0),
    (0.0, 7.5, 10.0, 7.5),
    (0.1, 1.0, 1.0 / 3.0, 0.9667),  # rounded to 4 places
])
def test_apply_takes_the_fraction_of_the_possible_points(fraction, points, possible, left):
    result = late.Lateness(due=DUE, submitted_at=None, late_by=None, periods=0,
                           fraction=fraction)
    assert result.apply(points, possible) == left


# ----------------------------------------------------------------------------- reading times


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-10-05T23:59:00+08:00", DUE),
    ("2026-10-05 23:59 +08:00", DUE),
    ("2026-10-05T15:59:00Z", DUE),
    ("2026-10-05 15:59:00 UTC", DUE),
    ("2026-10-05T23:59:00.000+08:00", DUE),
    ("2026-10-05T23:59:00", datetime(2026, 10, 5, 23, 59)),
    ("", None),
    ("  ", None),
    ("yesterday", None),
])
def test_parse_time_reads_what_the_lms_and_a_ta_write(text, expected):
    parsed = late.parse_time(text)
    assert parsed == expected
    if expected is not None:
        assert (parsed.tzinfo is None) == (expected.tzinfo is None)


def test_the_submitted_at_csv_reads_students_and_times(tmp_path: Path):
    path = tmp_path / "times.csv"
    path.write_bytes("\ufeffStudent,note,submitted_at\r\namy,,2026-10-06 01:00 +08:00\r\n\r\n"
                     "bob,by email,2026-10-06T01:00:00\r\n".encode())
    times = late.read_submitted_at(path)
    assert times == {"amy": after(hours=1, minutes=1), "bob": datetime(2026, 10, 6, 1, 0)}


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("name,time\namy,2026-10-06 01:00 +08:00\n", "line 1: the header 'name,time' does not name"),
    ("student,submitted_at\namy,tomorrow\n", "line 2: `submitted_at` = 'tomorrow' is not a date"),
    ("student,submitted_at\n,2026-10-06 01:00 +08:00\n", "line 2: no student named"),
    ("student,submitted_at\namy,2026-10-06 01:00 +08:00\n\nbob,2026-10-06 01:00 +08:00\n"
     "amy,2026-10-07 01:00 +08:00\n", "line 5: student 'amy' is already on line 2"),
    ('student,submitted_at\n"amy,2026-10-06\n', "line 2: is not valid CSV"),
])
def test_a_bad_submitted_at_file_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "times.csv"
    path.write_text(text)
    with pytest.raises(late.LateError) as caught:
        late.read_submitted_at(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2


def test_a_missing_or_unreadable_file_is_a_late_error(tmp_path: Path):
    with pytest.raises(late.LateError, match="cannot be read"):
        late.read_submitted_at(tmp_path / "nowhere.csv")
    (tmp_path / "latin.csv").write_bytes(b"student,submitted_at\nj\xe9r\xf4me,2026-10-06\n")
    with pytest.raises(late.LateError, match="not UTF-8"):
        late.read_submitted_at(tmp_path / "latin.csv")


def test_an_extension_needs_its_time_zone(tmp_path: Path):
    path = tmp_path / "extensions.csv"
    path.write_text("student,due\nbob,2026-10-07 23:59 +08:00\namy,2026-10-07 23:59\n")
    with pytest.raises(late.LateError, match="line 3: `due` = '2026-10-07 23:59' has no time "
                                             "zone"):
        late.read_extensions(path)
    path.write_text("student,due\nbob,2026-10-07 23:59 +08:00\n")
    assert late.read_extensions(path) == {"bob": after(days=2)}


# ------------------------------------------------------------------------ what a student reads


def test_the_sentence_for_a_late_hand_in_with_an_extension():
    result = counted(DAILY, after(days=3, hours=3), student="bob",
                     extensions={"bob": after(days=2)})
    assert late.describe(result) == ("handed in 1 day 3 hours late (due 2026-10-07 23:59 +08:00, "
                                     "extended): −20% (2 days started, 10% each)")


@pytest.mark.parametrize(("policy", "submitted", "lms_late", "sentence"), [
    (DAILY, after(hours=-1), None, "on time"),
    (DAILY, None, None, "on time"),
    (LatePolicy(per="hour", penalty=0.1, grace=timedelta(minutes=15)), after(minutes=10), None,
     "on time: handed in 10 minutes after the due date, within the grace period of 15 minutes"),
    (DAILY, None, True, "late by the LMS's account, time unknown: counted as one day: −10%"),
    (None, None, True, "late by the LMS's account, time unknown"),
    (HOURLY, after(minutes=20), None,
     "handed in 20 minutes late (due 2026-10-05 23:59 +08:00): −5% (1 hour started, 5% each)"),
    (LatePolicy(per="day", penalty=0.1, cap=0.3), after(days=4, hours=2), None,
     "handed in 4 days 2 hours late (due 2026-10-05 23:59 +08:00): −30% (5 days started, "
     "10% each, at most 30%)"),
    (LatePolicy(per="day", penalty=0.1, zero_after=timedelta(days=7)), after(days=9), None,
     "handed in 9 days late (due 2026-10-05 23:59 +08:00): −100% (more than 7 days late)"),
    (None, after(days=1, seconds=30), None,
     "handed in 1 day 30 seconds late (due 2026-10-05 23:59 +08:00)"),
])
def test_the_sentence_a_student_reads(policy, submitted, lms_late, sentence):
    assert late.describe(counted(policy, submitted, lms_late)) == sentence


def test_an_extended_student_on_time_reads_their_own_due_date():
    result = counted(DAILY, after(days=1), student="bob", extensions={"bob": after(days=2)})
    assert late.describe(result) == "on time (due 2026-10-07 23:59 +08:00, extended)"


def test_a_due_date_is_shown_in_its_own_zone():
    due = Due(at=datetime(2026, 3, 1, 9, 0, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))))
    result = lateness(due, "amy", due.at + timedelta(hours=1), None)
    assert late.describe(result) == "handed in 1 hour late (due 2026-03-01 09:00:30 -03:30)"
