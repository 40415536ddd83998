"""The gradebook with a real SQLite file: one result per student even for identical files,
hostile values checked before they are stored, and gradebooks of older versions."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from grader import exports
from grader.gradebook import Gradebook, clean_result, evidence_json, result_key
from grader.results import CellRecord, Item, ItemStatus, Outcome, Result, RunRecord


def result(student: str, content_hash: str = "same-bytes", score: float = 3.0) -> Result:
    return Result(student, "W4_Homework.ipynb", content_hash, RunRecord("completed"),
                  [Item("test_gradients", score, 3.0, "", False, "passed")], {"gpu": None})


def test_identical_files_of_two_students_are_two_results(tmp_path: Path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    keys = {s: result_key(s, "W4_Homework.ipynb", "same-bytes", "1", "d")
            for s in ("alice", "bob")}
    assert keys["alice"] != keys["bob"]
    assert keys["alice"] == result_key("alice", "W4_Homework.ipynb", "same-bytes", "1", "d")
    assert keys["alice"] != result_key("alice", "W5_Save_Model.ipynb", "same-bytes", "1", "d")
    for student, key in keys.items():
        book.store("W4", key, result(student))
    rows = book.results("W4")
    assert [r.student for r in rows] == ["alice", "bob"]
    exports.write("canvas", rows, tmp_path)
    canvas = (tmp_path / "canvas.csv").read_text().splitlines()
    assert canvas[2:] == ["alice,,,alice,,3", "bob,,,bob,,3"]
    book.close()


def test_an_older_gradebook_with_shared_keys_opens_and_is_regraded(tmp_path: Path):
    path = tmp_path / "gradebook.sqlite"
    old = Gradebook(path)
    old_key = "same-bytes:1:d"  # what older versions keyed by: the content alone
    old.store("W4", old_key, result("alice"))
    old.store("W4", old_key, result("bob"))  # replaced alice's row; her pointer stayed
    old.store("W4", "other:1:d", result("carol", "other"))
    old.close()

    book = Gradebook(path)
    assert book.dropped == 1  # alice's pointer to bob's row
    assert [r.student for r in book.results("W4")] == ["bob", "carol"]  # never bob twice
    new_key = result_key("alice", "W4_Homework.ipynb", "same-bytes", "1", "d")
    assert not book.has(new_key)
    book.store("W4", new_key, result("alice"))
    assert [r.student for r in book.results("W4")] == ["alice", "bob", "carol"]
    book.close()
    assert Gradebook(path).dropped == 0


def hostile() -> Result:
    run = RunRecord("completed\x1b[2J", "cell 1: ValueError: \ud800" + "x" * 100_000,
                    [CellRecord(1, float("nan"), "ValueError: \udcff", False, None)],
                    notebook='{"cells": ["\ud83d\ude00 \udc00"]}', wall_seconds=float("inf"),
                    notes=["note \ud800"], peak_memory=-5)
    items = [Item("test_\ud800", float("nan"), 3.0, "feedback \udfff", False, "bogus")]
    environment = {"torch": ["2.0"], "cuda": "yes", "gpu": ["NVIDIA H100", {"x": 1}],
                   "peak_memory": 2.5, "injected": "x"}
    evidence = {"text": "\ud800", "nested": [{"k\udc00": 1.5}], "nan": float("nan")}
    return Result("eve\ud800", "W4_Homework.ipynb", "h", run, items, environment, evidence)


def test_hostile_values_are_checked_before_they_are_stored(tmp_path: Path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.store("W4", "k", hostile())  # raised sqlite3 and UnicodeEncodeError before
    (row,) = book.results("W4")
    assert row.student == "eve\ufffd" and row.outcome == Outcome.FAILED
    assert row.reason.startswith("cell 1: ValueError: \ufffd")
    assert len(row.reason) < 2_100 and "more characters left out" in row.reason
    assert row.device == "cpu"  # a GPU "name" that is a list is no name
    record = row.record
    assert record["environment"] == {"torch": None, "gpu": None, "cuda": False,
                                     "peak_memory": None}
    assert record["cells"][0]["seconds"] == 0.0 and record["wall_seconds"] == 0.0
    assert record["notes"] == ["note \ufffd"] and record["peak_memory"] is None
    assert row.items[0].name == "test_\ufffd" and row.items[0].score == 0.0
    assert row.items[0].status is ItemStatus.ERROR
    assert row.evidence["text"] == "\ufffd" and math.isnan(row.evidence["nan"])
    assert book.attachment("k", "notebook") == '{"cells": ["\U0001f600 \ufffd"]}'
    raw = sqlite3.connect(tmp_path / "gradebook.sqlite")
    for (text,) in raw.execute("SELECT reason || student || record FROM results"):
        text.encode("utf-8")  # every text stored is valid UTF-8
    raw.close()
    book.close()


def test_clean_result_keeps_what_is_well_formed():
    good = result("alice")
    good.environment = {"torch": "2.4.0", "cuda": True, "gpu": "NVIDIA H100",
                        "peak_memory": 1024}
    assert clean_result(good) == good


def test_evidence_that_json_cannot_hold_is_left_out_not_the_result():
    assert json.loads(evidence_json({"f": object()}))["unstorable"].startswith("evidence holds")
    deep: list = []
    for _ in range(100):
        deep = [deep]
    assert "nested deeper" in json.loads(evidence_json({"d": deep}))["unstorable"]


def test_a_grader_failure_is_graded_again_a_final_failure_is_not(tmp_path: Path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.store("W4", "a", Result.failed("alice", "W4_Homework.ipynb", "h", "the grader failed"))
    book.store("W4", "b", Result.failed("bob", "W4_Homework.ipynb", "h", "could not run",
                                        grader_error=False))
    book.store("W4", "c", result("carol"))
    assert (book.has("a"), book.has("b"), book.has("c"), book.has("d")) == (
        False, True, True, False)
    book.close()
