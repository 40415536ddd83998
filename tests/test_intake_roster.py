"""The class roster: Canvas gradebook exports and plain id,name,email files, each written here
byte for byte as the LMS or a spreadsheet writes it; matching hand-ins to people; and every
broken file refused with a message naming the file, the line and what was expected."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.intake.roster import Person, Roster, RosterError, load

BOM = "\ufeff"

# A Canvas export as lib/gradebook_exporter.rb writes it: the Manual Posting row (name and ID
# blank), the Points Possible row (four spaces in front), a custom column, assignment columns
# with their ids, the score columns, and the test student last.
CANVAS_HEADER = ("Student,ID,SIS User ID,SIS Login ID,Section,Notes,W4 Homework (58213),"
                 "W5 Homework (58214),Current Score,Unposted Current Score,Final Score,"
                 "Unposted Final Score")
CANVAS_ROWS = [
    ",,,,,,Manual Posting,,,,,",
    "    Points Possible,,,,,(read only),10.00,10.00,(read only),(read only),(read only),"
    "(read only)",
    '"Smith, John",4001,20231001,jsmith@uni.edu,CS 101 Lab A,,9.00,,90.00,90.00,45.00,45.00',
    '"Núñez, José",4002,20231002,jnunez,CS 101 Lab B,,N/A,7.50,75.00,75.00,37.50,37.50',
    "张伟,4003,20231003,zwei,CS 101 Lab A and CS 101 Lab B,,EX,,,,,",
    '"Student, Test",4999,,8f3c2a91d0b4,CS 101 Lab A,,,,,,,',
]


def write(path: Path, lines: list[str], *, bom: bool = True, newline: str = "\r\n") -> Path:
    """The file as Canvas or Excel leaves it: a BOM, CRLF, a line break after the last row."""
    text = (BOM if bom else "") + newline.join(lines) + newline
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture
def canvas(tmp_path: Path) -> Roster:
    return load(write(tmp_path / "2025-09-30T1200_Grades-CS_101.csv",
                      [CANVAS_HEADER, *CANVAS_ROWS]))


def ids(people) -> list[str]:
    return [p.id for p in people]


# ---------------------------------------------------------------------------- Canvas exports


def test_canvas_export_holds_the_students_only(canvas):
    assert canvas.source == "canvas"
    assert ids(canvas.people) == ["4001", "4002", "4003"]  # no posting, points or test rows


def test_canvas_export_keeps_every_column_the_grade_import_needs(canvas):
    assert canvas.people[0] == Person(id="4001", name="Smith, John", sis_user_id="20231001",
                                      sis_login_id="jsmith@uni.edu", section="CS 101 Lab A")
    assert canvas.people[1].name == "Núñez, José"
    assert canvas.people[2].name == "张伟"
    assert canvas.people[2].section == "CS 101 Lab A and CS 101 Lab B"


@pytest.mark.parametrize("header, row", [
    # a user who may not see SIS data gets no SIS User ID column
    ("Student,ID,SIS Login ID,Section,W4 (1)", '"Smith, John",4001,jsmith,Lab A,9'),
    # an account that turns on integration ids, and a trusted root account
    ("Student,ID,SIS User ID,SIS Login ID,Integration ID,Root Account,Section,W4 (1)",
     '"Smith, John",4001,20231001,jsmith,int-77,uni.instructure.com,Lab A,9'),
])
def test_canvas_optional_identity_columns(tmp_path, header, row):
    roster = load(write(tmp_path / "grades.csv",
                        [header, "    Points Possible,,,,,,,10", row]))
    person = roster.people[0]
    assert (person.id, person.sis_login_id, person.section) == ("4001", "jsmith", "Lab A")
    assert person.sis_user_id == ("20231001" if "SIS User ID" in header else "")


def test_canvas_export_with_semicolons(tmp_path):
    """Canvas writes `;` between fields for a user whose settings ask for it (a locale whose
    decimal mark is a comma), and then writes numbers as 9,5."""
    roster = load(write(tmp_path / "grades.csv", [
        "Student;ID;SIS User ID;SIS Login ID;Section;W4 Homework (58213)",
        "    Points Possible;;;;;10,00",
        '"Smith, John";4001;20231001;jsmith;Lab A;9,50',
        "Student, Test;4999;;abc;Lab A;",
    ]))
    assert roster.people == (Person("4001", "Smith, John", "20231001", "jsmith", "Lab A"),)


def test_canvas_export_with_last_and_first_name_columns(tmp_path):
    """The export option that splits the name gives LastName and FirstName instead of Student."""
    roster = load(write(tmp_path / "grades.csv", [
        "LastName,FirstName,ID,SIS User ID,SIS Login ID,Section,W4 (1)",
        "    Points Possible,,,,,,10",
        "Smith,John,4001,20231001,jsmith,Lab A,9",
        "Student,Test,4999,,abc,Lab A,",
    ]))
    assert [(p.id, p.name) for p in roster.people] == [("4001", "Smith, John")]
    assert roster.find("x", "smithjohn") == roster.people[0]


def test_canvas_name_guarded_against_excel_formulas(tmp_path):
    """Canvas writes a name starting with `=` as `="=..."`; the roster shows the name itself."""
    roster = load(write(tmp_path / "grades.csv", [
        "Student,ID,SIS User ID,SIS Login ID,Section",
        '"=""=Eve, Ann""",4005,,eve,Lab A',
    ]))
    assert roster.people[0].name == "=Eve, Ann"


# ---------------------------------------------------------------------------- plain files


@pytest.mark.parametrize("header, row, expected", [
    ("id,name,email", "s01,Ann Lee,ann@uni.edu", Person("s01", "Ann Lee", email="ann@uni.edu")),
    ("Student_ID,Full Name,E-mail", "s01,Ann Lee,ann@uni.edu",
     Person("s01", "Ann Lee", email="ann@uni.edu")),
    ("USERNAME,Display Name", "alee,Ann Lee", Person("alee", "Ann Lee")),
    ("email,login,name", "ann@uni.edu,alee,Ann Lee",
     Person("alee", "Ann Lee", email="ann@uni.edu")),
    ("Name,ID,Section,Favourite colour", "Ann Lee,s01,Lab B,teal",
     Person("s01", "Ann Lee", section="Lab B")),
])
def test_plain_header_names_the_columns(tmp_path, header, row, expected):
    roster = load(write(tmp_path / "roster.csv", [header, row], bom=False, newline="\n"))
    assert roster.source == "plain"
    assert roster.people == (expected,)


def test_plain_file_from_a_spreadsheet(tmp_path):
    """A BOM, CRLF, blank lines (some of them Excel's empty rows of commas), a quoted name."""
    roster = load(write(tmp_path / "roster.csv", [
        "", "id,name,email,notes", "s01,José Núñez,jose@uni.edu,", "", ",,,",
        's02,"Lee, Ann",,late joiner', "s03,张伟,zhang.wei@uni.edu,", "",
    ]))
    assert ids(roster.people) == ["s01", "s02", "s03"]
    assert roster.people[0].name == "José Núñez"
    assert roster.people[2] == Person("s03", "张伟", email="zhang.wei@uni.edu")


def test_plain_file_keeps_a_second_login_column(tmp_path):
    roster = load(write(tmp_path / "roster.csv", ["id,username,name", "20231001,alee,Ann Lee"]))
    assert roster.people[0] == Person("20231001", "Ann Lee", sis_login_id="alee")
    assert roster.find("alee") == roster.people[0]


# ---------------------------------------------------------------------------- find


@pytest.mark.parametrize("student, expected", [
    ("4002", "4002"),               # Canvas user id, as Canvas download names carry it
    ("20231002", "4002"),           # SIS user id, as Gradescope's sid
    ("jnunez", "4002"),             # SIS login id, as a Blackboard username
    ("JSmith@Uni.edu", "4001"),     # an email, in any case
    ("jsmith", "4001"),             # the local part of the roster's email login
    ("jnunez@uni.edu", "4002"),     # an email whose local part is the roster's login
    (" zwei ", "4003"),
])
def test_find_by_identity(canvas, student, expected):
    found = canvas.find(student)
    assert found is not None and found.id == expected


def test_find_by_plain_email(tmp_path):
    roster = load(write(tmp_path / "r.csv", ["id,name,email", "s01,Ann Lee,ann.lee@uni.edu",
                                            "s02,Bo Chen,bo@uni.edu"]))
    assert roster.find("ann.lee@uni.edu").id == "s01"
    assert roster.find("ann.lee").id == "s01"
    assert roster.find("bo").id == "s02"


NFD = unicodedata.normalize("NFD", "núñezjosé")  # as a macOS file name hands it back


@pytest.mark.parametrize("display, expected", [
    ("Smith, John", "4001"), ("John Smith", "4001"), ("smithjohn", "4001"),
    ("  SMITH ,  john ", "4001"), ("Smith John", "4001"), ("johnsmith", "4001"),
    ("Núñez, José", "4002"), ("José Núñez", "4002"), ("nunezjose", "4002"),
    ("núñezjosé", "4002"), (NFD, "4002"), ("JOSE NUNEZ", "4002"),
    ("张伟", "4003"), ("张 伟", "4003"),
])
def test_find_by_display_name(canvas, display, expected):
    found = canvas.find("unknown-user", display)
    assert found is not None and found.id == expected


def test_find_by_name_in_a_plain_roster(tmp_path):
    roster = load(write(tmp_path / "r.csv", ["id,name", "s01,Mary Ann van Berg", "s02,Bo Chen"]))
    for spelled in ("Mary Ann van Berg", "vanbergmaryann", "Van Berg, Mary Ann", "chenbo"):
        assert roster.find("x", spelled) is not None, spelled
    assert roster.find("x", "vanbergmaryann").id == "s01"


def test_student_is_tried_as_a_name_without_a_display_name(canvas):
    assert canvas.find("John Smith").id == "4001"
    assert canvas.find("smithjohn").id == "4001"


@pytest.mark.parametrize("student, display", [
    ("9999", "Doe, Jane"), ("", ""), ("", "Smith"), ("jsmith@other.org", "Doe, Jane"),
])
def test_find_nobody(canvas, student, display):
    assert canvas.find(student, display) is None


def test_two_people_of_one_name_are_ambiguous(tmp_path):
    roster = load(write(tmp_path / "r.csv", [
        "Student,ID,SIS User ID,SIS Login ID,Section",
        '"Smith, John",4001,,jsmith1,Lab A', '"Smith, John",4002,,jsmith2,Lab B',
    ]))
    for spelled in ("smithjohn", "John Smith", "Smith, John"):
        assert roster.find("x", spelled) is None
    assert roster.find("4002", "smithjohn").id == "4002"  # the identity settles it


def test_an_identity_two_people_share_is_settled_by_the_name():
    """A Canvas user id may equal another student's university number."""
    roster = Roster((Person("123", "Smith, John"), Person("4002", "Lee, Ann", sis_user_id="123")),
                    "canvas")
    assert roster.find("123") is None
    assert roster.find("123", "leeann").id == "4002"
    assert roster.find("123", "smithjohn").id == "123"
    assert roster.find("123", "Doe, Jane") is None


def test_name_order_tells_li_wei_from_wei_li():
    canvas = Roster((Person("1", "Li, Wei"), Person("2", "Wei, Li")), "canvas")
    assert canvas.find("x", "liwei").id == "1"      # Canvas's download name: last name first
    assert canvas.find("x", "Wei Li").id == "1"     # written first name first
    assert canvas.find("x", "Li, Wei").id == "1"
    assert canvas.find("x", "Li Wei").id == "2"
    plain = Roster((Person("1", "Wei Li"), Person("2", "Li Wei")), "plain")
    assert plain.find("x", "liwei") is None         # which is the last name is not known


# ---------------------------------------------------------------------------- missing


def test_missing_lists_people_with_nothing_handed_in_in_roster_order(canvas):
    assert ids(canvas.missing([])) == ["4001", "4002", "4003"]
    assert ids(canvas.missing(["4002"])) == ["4001", "4003"]
    assert ids(canvas.missing(["4003", "4001", "4002", "4999"])) == []


def test_missing_counts_any_of_a_persons_identities(canvas):
    assert ids(canvas.missing(["JSMITH@uni.edu", "20231003"])) == ["4002"]
    assert ids(canvas.missing(["", "nobody"])) == ["4001", "4002", "4003"]


def test_missing_of_what_find_found(canvas):
    handed_in = [("4001", "smithjohn"), ("x", "nunezjose"), ("4999", "studenttest")]
    found = [canvas.find(s, d) for s, d in handed_in]
    assert [p.id if p else None for p in found] == ["4001", "4002", None]
    assert ids(canvas.missing(p.id for p in found if p)) == ["4003"]


# ---------------------------------------------------------------------------- broken files


def refused(path: Path) -> str:
    with pytest.raises(RosterError) as caught:
        load(path)
    error = caught.value
    assert isinstance(error, GraderError) and error.exit_code == 2
    message = str(error)
    assert "\n" not in message and path.name in message
    return message


@pytest.mark.parametrize("content, expected", [
    (b"s01,Ann Lee,ann@uni.edu\n", ["line 1", "'s01,Ann Lee,ann@uni.edu' is not a roster header",
                                    "id,name,email", "Student,ID"]),
    (b"\r\n\r\nCourse roster CS 101\r\nid,name\r\n", ["line 3", "'Course roster CS 101'"]),
    (b"", ["is empty"]),
    (b"\xef\xbb\xbf\r\n\r\n", ["is empty"]),
    (b"id,name,email\r\n\r\n", ["line 1", "no students"]),
    (b"id,name\ns01,Ann\ns02,Bo\ns01,Cy\n", ["line 4", "'s01' is already on line 2",
                                             "listed once"]),
    (b"id,name\nS01,Ann\ns01,Bo\n", ["line 3", "already on line 2"]),
    (b"id,name\ns01,Ann\n,Bo\n", ["line 3", "'Bo' has no id"]),
    (b"id,name\ns01,Ann\ns02,Jos\xe9\n", ["line 3", "0xe9 is not UTF-8", "CSV UTF-8"]),
    (b"id,name\ns01,\"Ann\ns02,Bo\n", ["line 2", "not valid CSV"]),
    (b"id,name\ns01,Ann\x00\n", ["line 2", "NUL"]),
    (b"PK\x03\x04\x14\x00\x06\x00", ["Excel workbook", "CSV UTF-8"]),
    (b"\xff\xfei\x00d\x00", ["UTF-16"]),
])
def test_broken_roster_is_refused_with_its_line(tmp_path, content, expected):
    path = tmp_path / "roster.csv"
    path.write_bytes(content)
    message = refused(path)
    for part in expected:
        assert part in message


def test_canvas_row_without_an_id_is_refused(tmp_path):
    path = write(tmp_path / "grades.csv", [CANVAS_HEADER, *CANVAS_ROWS[:3], '"Lee, Ann",,,,'])
    assert "line 5: 'Lee, Ann' has no id" in refused(path)


def test_canvas_duplicate_id_is_refused(tmp_path):
    path = write(tmp_path / "grades.csv", [CANVAS_HEADER, *CANVAS_ROWS[:3], CANVAS_ROWS[2]])
    assert "line 5: id '4001' is already on line 4" in refused(path)


def test_a_roster_that_is_not_there(tmp_path):
    assert "cannot be read" in refused(tmp_path / "roster.csv")
    assert "is a folder" in refused(tmp_path)
