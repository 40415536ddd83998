"""A TA's overrides in a real gradebook: they count instead of the machine's score, survive a
`--force` regrade and a rubric change (a new result key), are audited in order, refuse what a TA
got wrong with the names the gradebook knows, and are never lost when their item is."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from grader import exports
from grader.gradebook import (
    NAME_CHARS,
    REASON_CHARS,
    Gradebook,
    OverrideError,
    clean_result,
    result_key,
)
from grader.results import Item, Outcome, Override, Result, RunRecord, StoredResult

HW, NB = "W4", "W4_Homework.ipynb"


def items(gradients: float = 0.0, *, shapes: bool = True, title: str = "") -> list[Item]:
    found = [Item("test_gradients", gradients, 3.0, "wrong sign", False,
                  "passed" if gradients == 3.0 else "failed", title)]
    if shapes:
        found.append(Item("test_shapes", 2.0, 2.0, "", False, "passed",
                          "The model's output has the right shape"))
    return found


def result(student: str = "alice", found: list[Item] | None = None, notebook: str = NB
           ) -> Result:
    return Result(student, notebook, "bytes", RunRecord("completed"),
                  items() if found is None else found, {"gpu": None})


def key(student: str = "alice", digest: str = "d1", notebook: str = NB) -> str:
    return result_key(student, notebook, "bytes", "1", digest)


@pytest.fixture
def book(tmp_path: Path) -> Gradebook:
    gradebook = Gradebook(tmp_path / "gradebook.sqlite")
    for student in ("alice", "bob"):
        gradebook.store(HW, key(student), result(student))
    yield gradebook
    gradebook.close()


def current(book: Gradebook, student: str = "alice") -> StoredResult:
    (row,) = [r for r in book.results(HW) if r.student == student]
    return row


def gradients(book: Gradebook, student: str = "alice") -> Item:
    return next(i for i in current(book, student).items if i.name == "test_gradients")


def test_an_override_counts_instead_of_the_machine_and_keeps_its_score(book: Gradebook):
    before = current(book)
    assert before.total == 2.0 and gradients(book).override is None
    override = book.set_override(HW, "alice", NB, "test_gradients", 2.5, "sign convention "
                                 "of the handout was ambiguous", "ta-kim")
    assert (override.score, override.machine, override.by) == (2.5, 0.0, "ta-kim")
    row = current(book)
    item = gradients(book)
    assert (item.score, item.machine, item.override) == (2.5, 0.0, override)
    assert item.max == 3.0 and item.status == "failed" and not item.drifted
    assert (row.total, row.max) == (4.5, 5.0)  # recomputed from the items, not the column
    shapes = row.items[1]
    assert (shapes.score, shapes.override, shapes.machine) == (2.0, None, None)
    assert current(book, "bob").total == 2.0  # another student's result is untouched
    assert book.overrides(HW) == [override] and book.overrides("W5") == []


def test_every_export_reads_the_overridden_total(book: Gradebook, tmp_path: Path):
    book.set_override(HW, "alice", NB, "test_gradients", 3, "regraded by hand", "ta-kim")
    exports.write("canvas", book.results(HW), tmp_path)
    rows = (tmp_path / "canvas.csv").read_text().splitlines()
    assert rows[2:] == ["alice,,,alice,,5", "bob,,,bob,,2"]


def test_an_override_survives_a_force_regrade_and_a_rubric_change(book: Gradebook):
    override = book.set_override(HW, "alice", NB, "test_gradients", 2.5, "ambiguous", "kim")
    book.store(HW, key(), result())  # `--force`: the same key written again
    assert gradients(book).score == 2.5 and not gradients(book).drifted
    # a rubric change: a new digest, a new key; the item keeps its name, gains a title
    book.store(HW, key(digest="d2"), result(found=items(0.0, title="Gradients flow")))
    assert current(book).key == key(digest="d2")
    item = gradients(book)
    assert (item.score, item.machine, item.title, item.drifted) == (2.5, 0.0, "Gradients flow",
                                                                    False)
    assert current(book).total == 4.5 and book.overrides() == [override]


def test_a_regrade_that_changes_the_machine_score_under_an_override_drifts(book: Gradebook):
    book.set_override(HW, "alice", NB, "test_gradients", 2.5, "ambiguous", "kim")
    book.store(HW, key(digest="d2"), result(found=items(3.0)))
    item = gradients(book)
    assert (item.score, item.machine, item.override.machine) == (2.5, 3.0, 0.0)
    assert item.drifted and current(book).total == 4.5
    # setting it again is the TA's decision against the machine score of now
    book.set_override(HW, "alice", NB, "test_gradients", 3.0, "fixed by the regrade", "kim")
    assert not gradients(book).drifted and gradients(book).override.machine == 3.0


def test_drifted_is_only_true_under_an_override_whose_machine_score_moved():
    override = Override(HW, "a", NB, "t", 1.0, "r", "kim", 0.0, 0.5)
    plain = Item("t", 0.5, 1.0, "", False, "partial")
    assert not plain.drifted
    assert not Item("t", 1.0, 1.0, "", False, "partial", override=override, machine=0.5).drifted
    assert Item("t", 1.0, 1.0, "", False, "passed", override=override, machine=1.0).drifted


def test_clearing_restores_the_machine_score(book: Gradebook):
    book.set_override(HW, "alice", NB, "test_gradients", 2.5, "ambiguous", "kim")
    book.clear_override(HW, "alice", NB, "test_gradients", "set on the wrong student", "lee")
    item = gradients(book)
    assert (item.score, item.machine, item.override) == (0.0, None, None)
    assert current(book).total == 2.0 and book.overrides() == []


def test_the_log_holds_every_change_in_order(book: Gradebook):
    book.set_override(HW, "alice", NB, "test_gradients", 2.5, "ambiguous", "kim")
    book.set_override(HW, "alice", NB, "test_gradients", 3.0, "on second look", "lee")
    book.clear_override(HW, "alice", NB, "test_gradients", "appeal withdrawn", "kim")
    book.set_override(HW, "bob", NB, "test_shapes", 1.0, "copied shapes", "lee")
    log = book.override_log(HW)
    assert [(e.student, e.item, e.old, e.new, e.by, e.reason) for e in log] == [
        ("alice", "test_gradients", 0.0, 2.5, "kim", "ambiguous"),     # old: the machine's
        ("alice", "test_gradients", 2.5, 3.0, "lee", "on second look"),  # old: the override
        ("alice", "test_gradients", 3.0, None, "kim", "appeal withdrawn"),  # None: cleared
        ("bob", "test_shapes", 2.0, 1.0, "lee", "copied shapes")]
    assert [e.id for e in log] == sorted(e.id for e in log)
    assert all(isinstance(e.at, float) and e.at > 1e9 for e in log)
    assert [e.at for e in log] == sorted(e.at for e in log)
    assert book.override_log("W5") == []


def test_an_item_may_be_named_by_its_title_or_heading_in_any_case(book: Gradebook):
    by_title = book.set_override(HW, "alice", NB, "the model's OUTPUT has the right shape", 1,
                                 "printed, not returned", "kim")
    by_heading = book.set_override(HW, "Bob", "w4_homework", "GRADIENTS", 1, "partial", "kim")
    assert (by_title.item, by_heading.item) == ("test_shapes", "test_gradients")
    assert (by_heading.student, by_heading.notebook) == ("bob", NB)


def test_the_homework_may_be_left_out_unless_two_hold_the_notebook(book: Gradebook):
    assert book.set_override(None, "alice", NB, "test_shapes", 1, "r", "kim").hw == HW
    book.store("W4-late", key(), result())
    with pytest.raises(OverrideError, match=r"several homeworks \(W4, W4-late\): give"):
        book.set_override(None, "alice", NB, "test_shapes", 1, "r", "kim")
    assert book.set_override("w4-LATE", "alice", NB, "test_shapes", 0, "r", "kim").hw == \
        "W4-late"


@pytest.mark.parametrize("args, message", [
    (("W9", "alice", NB, "test_shapes", 1), r"no homework 'W9' in the gradebook; the "
     r"homeworks are: W4$"),
    ((HW, "alicia", NB, "test_shapes", 1), r"no student 'alicia' in W4; the students are: "
     r"alice, bob$"),
    ((HW, "alice", "W5.ipynb", "test_shapes", 1), r"no notebook 'W5.ipynb' of alice in W4; "
     r"the notebooks are: W4_Homework.ipynb$"),
    ((HW, "alice", NB, "test_loss", 1), r"no item 'test_loss' of alice's W4_Homework.ipynb "
     r"\(W4\); the items are: test_gradients, test_shapes$"),
    ((HW, "alice", NB, "test_shapes", 2.5), r"2.5 is more than test_shapes of alice's "
     r"W4_Homework.ipynb \(W4\) is worth: give 0 to 2 points"),
    ((HW, "alice", NB, "test_shapes", -1), r"cannot be negative"),
    ((HW, "alice", NB, "test_shapes", float("nan")), r"finite number of points, not nan"),
    ((HW, "alice", NB, "test_shapes", float("inf")), r"finite number of points, not inf"),
    ((HW, "alice", NB, "test_shapes", True), r"must be a number of points, not 'True'"),
    ((HW, "alice", NB, "test_shapes", "2"), r"must be a number of points, not '2'"),
])
def test_what_a_ta_got_wrong_is_refused_naming_what_is_known(book: Gradebook, args: tuple,
                                                              message: str):
    with pytest.raises(OverrideError, match=message) as caught:
        book.set_override(*args, "a reason", "kim")
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    assert book.overrides() == [] and book.override_log() == []


@pytest.mark.parametrize("reason, by, message", [
    ("", "kim", "needs a reason"), ("  \t ", "kim", "needs a reason"),
    ("ok", "", "needs the name of who sets it")])
def test_an_override_without_a_reason_or_an_author_is_refused(book: Gradebook, reason: str,
                                                               by: str, message: str):
    with pytest.raises(OverrideError, match=message):
        book.set_override(HW, "alice", NB, "test_shapes", 1, reason, by)
    assert book.overrides() == [] and book.override_log() == []


def test_a_list_of_known_names_is_capped(tmp_path: Path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    for n in range(30):
        book.store(HW, key(f"s{n:02}"), result(f"s{n:02}"))
    with pytest.raises(OverrideError) as caught:
        book.set_override(HW, "nobody", NB, "test_shapes", 1, "r", "kim")
    assert str(caught.value).endswith("s00, s01, s02, s03, s04, s05, s06, s07, s08, s09, "
                                      "… and 20 more")
    book.close()


def test_an_empty_gradebook_says_to_grade_first(tmp_path: Path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    with pytest.raises(OverrideError, match="holds no results: grade the class first"):
        book.set_override(HW, "alice", NB, "test_shapes", 1, "r", "kim")
    book.close()


def test_clearing_what_is_not_overridden_is_refused(book: Gradebook):
    with pytest.raises(OverrideError, match=r"alice's W4_Homework.ipynb \(W4\) has no "
                                            r"override to clear"):
        book.clear_override(HW, "alice", NB, "test_shapes", "r", "kim")
    book.set_override(HW, "alice", NB, "test_gradients", 1, "r", "kim")
    with pytest.raises(OverrideError, match=r"no item 'test_shapes' overridden in alice's "
                                            r"W4_Homework.ipynb \(W4\); the items are: "
                                            r"test_gradients$"):
        book.clear_override(HW, "alice", NB, "test_shapes", "r", "kim")
    with pytest.raises(OverrideError, match="needs a reason"):
        book.clear_override(HW, "alice", NB, "test_gradients", "", "kim")
    assert len(book.overrides()) == 1 and len(book.override_log()) == 1


def test_an_override_of_a_dropped_item_is_orphaned_then_applies_again(book: Gradebook):
    override = book.set_override(HW, "alice", NB, "test_shapes", 1, "printed it", "kim")
    assert book.orphaned_overrides() == []
    book.store(HW, key(digest="d2"), result(found=items(0.0, shapes=False)))  # item dropped
    assert [i.name for i in current(book).items] == ["test_gradients"]
    assert current(book).total == 0.0
    assert book.overrides() == [override] and book.orphaned_overrides(HW) == [override]
    assert book.orphaned_overrides("W5") == []
    book.store(HW, key(digest="d3"), result())  # the rubric brings it back
    assert current(book).items[1].score == 1.0 and current(book).total == 1.0
    assert book.orphaned_overrides() == []


def test_an_override_under_a_rejected_result_is_kept_not_applied(book: Gradebook):
    override = book.set_override(HW, "alice", NB, "test_gradients", 3, "r", "kim")
    book.store_rejected(HW, "alice", NB, "not a notebook")
    row = current(book)
    assert (row.outcome, row.items, row.total) == (Outcome.REJECTED, [], 0.0)
    assert book.orphaned_overrides() == [override]
    with pytest.raises(OverrideError, match=r"no rubric items to override: it was rejected "
                                            r"\(not a notebook\)"):
        book.set_override(HW, "alice", NB, "test_gradients", 3, "r", "kim")
    book.store(HW, key(digest="d2"), result())
    assert current(book).total == 5.0 and book.orphaned_overrides() == []


def test_an_orphaned_override_can_be_cleared(book: Gradebook):
    book.set_override(HW, "alice", NB, "test_shapes", 1, "r", "kim")
    book.store(HW, key(digest="d2"), result(found=items(0.0, shapes=False)))
    book.clear_override(HW, "alice", NB, "test_shapes", "item left the rubric", "kim")
    assert book.overrides() == [] and book.override_log()[-1].new is None


def test_a_rubric_that_lowers_an_items_worth_caps_the_override(book: Gradebook):
    book.set_override(HW, "alice", NB, "test_shapes", 2, "r", "kim")
    lower = [items()[0], Item("test_shapes", 0.0, 1.0, "", False, "failed")]
    book.store(HW, key(digest="d2"), result(found=lower))
    shapes = current(book).items[1]
    assert (shapes.score, shapes.max, shapes.override.score) == (1.0, 1.0, 2.0)
    assert current(book).total == 1.0


def test_an_overridden_item_stored_again_stores_the_machine_score(book: Gradebook):
    book.set_override(HW, "alice", NB, "test_gradients", 2.5, "r", "kim")
    again = clean_result(result(found=current(book).items))
    assert [i.score for i in again.items] == [0.0, 2.0]
    assert all(i.override is None and i.machine is None for i in again.items)


def test_hostile_text_in_a_reason_or_author_is_one_line_and_capped(book: Gradebook):
    reason = "\x1b[2J\r\nforged line\0 \ud800" + "x" * (1 << 20)
    override = book.set_override(HW, "alice", NB, "test_gradients", 1, reason, "kim\x1b[31m\n"
                                 + "y" * (1 << 20))
    for text, limit in ((override.reason, REASON_CHARS), (override.by, NAME_CHARS)):
        assert len(text) < limit + 60 and "more characters left out" in text
        assert text.isprintable() and "\x1b" not in text and "\n" not in text
        text.encode("utf-8")
    assert override.reason.startswith("\\x1b[2J\\r\\nforged line\\x00 \ufffdxxx")
    assert override.by.startswith("kim\\x1b[31m\\nyyy")
    (logged,) = book.override_log()
    assert (logged.reason, logged.by) == (override.reason, override.by)
    assert book.overrides() == [override]


def test_set_and_log_are_one_transaction(book: Gradebook):
    raw = sqlite3.connect(book.path)
    raw.execute("CREATE TRIGGER refuse BEFORE INSERT ON override_log BEGIN"
                " SELECT RAISE(ABORT, 'disk full'); END")
    raw.commit()
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        book.set_override(HW, "alice", NB, "test_gradients", 1, "r", "kim")
    assert book.overrides() == []  # the override was not written without its log line
    raw.execute("DROP TRIGGER refuse")
    raw.commit()
    book.set_override(HW, "alice", NB, "test_gradients", 1, "r", "kim")
    raw.execute("CREATE TRIGGER refuse BEFORE INSERT ON override_log BEGIN"
                " SELECT RAISE(ABORT, 'disk full'); END")
    raw.commit()
    with pytest.raises(sqlite3.IntegrityError):
        book.clear_override(HW, "alice", NB, "test_gradients", "r", "kim")
    assert len(book.overrides()) == 1
    raw.close()


def test_an_older_gradebook_gains_the_override_tables(tmp_path: Path):
    path = tmp_path / "gradebook.sqlite"
    Gradebook(path).close()
    raw = sqlite3.connect(path)
    raw.executescript("DROP TABLE overrides; DROP TABLE override_log;")
    raw.close()
    book = Gradebook(path)
    book.store(HW, key(), result())
    assert book.set_override(HW, "alice", NB, "test_shapes", 0, "r", "kim").score == 0.0
    assert math.isclose(current(book).total, 0.0)
    book.close()
