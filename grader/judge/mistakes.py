"""What the judge found, as data, and the one place where it becomes words for the student.

A gradient's verdict and a written derivative's reading carry a `Mistake` and the numbers its
message needs (the gradient's name, the batch size, the shapes); nothing that decides a score
reads the rendered text. `describe`, `summarize` and `summarize_readings` render that data from
the templates below as `Words`: English text that keeps its template and numbers, so a
rewording changes no score and the report says the same diagnosis in Chinese from the catalog
(grader/locale/zh.po).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from grader.i18n import N_, Words, say

NAMES = ("dW1", "db1", "dW2", "db2")


class Mistake(Enum):
    """A diagnosis the judge can make of one gradient or one written derivative."""

    NONE = "none"                              # right
    SIGMOID_DERIVATIVE = "sigmoid_derivative"  # σ'(h) = h_sigmoid ⊙ (1 − h_sigmoid) left out
    FACTOR_TWO = "factor_two"                  # d||r||²/dr = 2r, the 2 left out
    OFF_BY_N = "off_by_n"                      # the mean (MSE) instead of the Frobenius sum
    SIGN = "sign"                              # Y − Y_pred instead of Y_pred − Y
    TRANSPOSED = "transposed"                  # the right numbers, transposed
    BIAS_NOT_SUMMED = "bias_not_summed"        # one bias gradient per sample, not their sum
    SHAPE = "shape"                            # a shape that fits nothing known
    NOT_FINITE = "not_finite"                  # NaN or infinity
    MISMATCH = "mismatch"                      # wrong, and no known mistake explains it
    WRONG_COUNT = "wrong_count"                # `gradients` returned other than four values
    UNREADABLE = "unreadable"                  # a written derivative outside the grammar
    MISSING = "missing"                        # no written derivative for this gradient


# A layout in which a written derivative is accepted as right: the same numbers, arranged
# another way. latex.py decides by these values, never by the text.
ACCEPTED_LAYOUTS = frozenset({Mistake.TRANSPOSED, Mistake.BIAS_NOT_SUMMED})


@dataclass(frozen=True)
class Verdict:
    """The judge's verdict on one gradient: its mistake and the numbers its message needs."""

    name: str                           # dW1, db1, dW2, db2
    relative_error: float               # to the reference; inf when it cannot be compared
    mistake: Mistake = Mistake.NONE
    n: int = 0                          # the batch size of the problem it was judged on
    shape: tuple[int, ...] = ()         # the shape handed in
    expected: tuple[int, ...] = ()      # the reference's shape
    returned: int = len(NAMES)          # how many values `gradients` returned

    @property
    def correct(self) -> bool:
        """Right, in the layout the reference uses or one that differs only by size-1 axes."""
        return self.mistake is Mistake.NONE


@dataclass(frozen=True)
class Reading:
    """The verdict on one written derivative (or an intermediate definition it uses)."""

    target: str                         # dW1, db1, dW2, db2, or the name a definition defines
    latex: str                          # the right-hand side as written
    verdict: str                        # right, wrong, unreadable; "definition" for a name
    check: Verdict | None = None        # wrong: the verdict on its value
    layouts: frozenset[Mistake] = field(default_factory=frozenset)  # right, laid out so
    reason: str = ""                    # unreadable: what the reader could not read

    @property
    def mistake(self) -> Mistake:
        """What is wrong with it: the value's mistake, UNREADABLE, or NONE."""
        if self.verdict == "unreadable":
            return Mistake.UNREADABLE
        return self.check.mistake if self.check is not None else Mistake.NONE


# ----------------------------------------------------------------------------- words

# Mistakes several gradients share: one phrase after the names it applies to.
_SHARED = {
    Mistake.SIGMOID_DERIVATIVE: N_("the sigmoid derivative h_sigmoid ⊙ (1 − h_sigmoid) is "
                                   "missing from the chain rule"),
    Mistake.FACTOR_TWO: N_("the factor 2 from the square is missing (f = ||Y − Y_pred||², so "
                           "df/dY_pred = 2(Y_pred − Y))"),
    Mistake.OFF_BY_N: N_("every gradient is off by a factor of n = {n}: the loss is the "
                         "Frobenius sum ||Y − Y_pred||²_F, not the mean (MSE)"),
    Mistake.SIGN: N_("the sign is reversed: the gradient points uphill (Y − Y_pred instead of "
                     "Y_pred − Y)"),
    Mistake.WRONG_COUNT: N_("`gradients` returned {returned} values; it must return dW1, db1, "
                            "dW2, db2"),
}
# Mistakes of one gradient: a sentence that names it.
_OWN = {
    Mistake.NONE: N_("{name} right"),
    Mistake.NOT_FINITE: N_("{name} contains NaN or infinity"),
    Mistake.TRANSPOSED: N_("{name} is transposed: shape {shape}, expected {expected}"),
    Mistake.BIAS_NOT_SUMMED: N_("{name} is not summed over the batch: the bias is shared by all "
                                "{n} samples, so its gradient is the sum of the per-sample "
                                "gradients (shape {expected}, got {shape})"),
    Mistake.SHAPE: N_("{name} has shape {shape}, expected {expected}"),
    Mistake.MISMATCH: N_("{name} does not match the derivative (relative error {error:.2g})"),
}
# What a reading says without naming its gradient: its name goes first where it is listed.
_UNNAMED = {
    Mistake.UNREADABLE: N_("could not read: {reason}"),
    Mistake.MISSING: N_("not found"),
}
_LAYOUT = {Mistake.TRANSPOSED: N_("written transposed"),
           Mistake.BIAS_NOT_SUMMED: N_("per-sample bias convention")}
_NAMED = N_("{names}: {text}")
_RIGHT_IN = N_("{name} right ({layouts})")
_LIST = ", "
_JOIN = "; "

# A shared mistake of the whole `gradients` function: told on its own without a name.
_WHOLE = frozenset({Mistake.WRONG_COUNT})
# The verdict fields a shared phrase shows: verdicts with the same mistake and the same values
# of these fields are told together ("dW1, db1: ...").
_SHOWS = {Mistake.OFF_BY_N: ("n",), Mistake.WRONG_COUNT: ("returned",)}

TEMPLATES = {**_SHARED, **_OWN, **_UNNAMED}


def _fields(verdict: Verdict) -> dict[str, object]:
    return {"name": verdict.name, "n": verdict.n, "shape": list(verdict.shape),
            "expected": list(verdict.expected), "error": verdict.relative_error,
            "returned": verdict.returned}


def _phrase(verdict: Verdict) -> Words:
    """The shared phrase of a verdict's mistake, filled with only the fields it shows."""
    return Words(_SHARED[verdict.mistake], _fields(verdict))


def _shared(verdict: Verdict, names: str) -> Words:  # names: one, or a Words.join of several
    return say(_NAMED, names=names, text=_phrase(verdict))


def describe(found: Verdict | Reading) -> Words:
    """The student's feedback for one verdict or reading, rendered from its data alone: an
    English `Words` that the report says again in the student's language."""
    if isinstance(found, Reading):
        return _describe_reading(found)
    if found.mistake in _WHOLE:
        return _phrase(found)
    if found.mistake in _SHARED:
        return _shared(found, found.name)
    return Words(_OWN[found.mistake], _fields(found))


def _describe_reading(reading: Reading) -> Words:
    if reading.verdict == "definition":
        return Words("")
    if reading.verdict == "unreadable":
        return say(_UNNAMED[Mistake.UNREADABLE], reason=reading.reason)
    if reading.check is not None:
        return describe(reading.check)
    if reading.layouts:
        layouts = Words.join(sorted(_LAYOUT[m] for m in reading.layouts), _LIST)
        return say(_RIGHT_IN, name=reading.target, layouts=layouts)
    return say(_OWN[Mistake.NONE], name=reading.target)


def summarize(wrong: Iterable[Verdict]) -> Words:
    """One line for these wrong verdicts (one per gradient), a shared mistake told once for
    all the gradients it applies to, in the order the mistakes were first met."""
    groups: dict[tuple[object, ...], list[Verdict]] = {}
    for verdict in wrong:
        if verdict.mistake in _SHARED:
            key: tuple[object, ...] = (verdict.mistake, *(
                getattr(verdict, name) for name in _SHOWS.get(verdict.mistake, ())))
        else:
            key = (verdict.mistake, verdict.name)
        groups.setdefault(key, []).append(verdict)
    return Words.join(
        _shared(group[0], Words.join([v.name for v in group], _LIST))
        if group[0].mistake in _SHARED
        else describe(group[0]) for group in groups.values())


def summarize_readings(best: Mapping[str, Reading], names: Iterable[str] = NAMES) -> Words:
    """One line on the written derivatives: each one missing, wrong, unreadable, or accepted in
    another layout, named; the plainly right ones go unmentioned."""
    notes: list[str] = []
    for name in names:
        reading = best.get(name)
        if reading is None:
            notes.append(say(_NAMED, names=name, text=say(_UNNAMED[Mistake.MISSING])))
        elif reading.verdict != "right" or reading.layouts:
            text = describe(reading)
            notes.append(say(_NAMED, names=name, text=text)
                         if reading.mistake in _UNNAMED else text)
    return Words.join(notes)


#: What a student's code raising one of these while the grader asked about it means, in words.
_UNDEFINED = ("NameError", "KeyError", "AttributeError", "ImportError", "ModuleNotFoundError",
              "UnboundLocalError")
_UNFIT = ("TypeError", "ValueError", "IndexError", "RuntimeError")
_WHILE = N_(" while the grader was {asked}")


def unanswered(asked: str, kind: str, raised: str) -> Words:
    """A rubric check that could not finish because a question to the notebook got no answer,
    said in words a student acts on, never the exception's text. `asked` is what the grader
    was asking ("calling `gradients`"; "" when unknown), `kind` the ProbeError's kind, and
    `raised` the name of the exception the student's code raised."""
    while_ = say(_WHILE, asked=asked) if asked else ""
    if kind == "timeout":
        template = N_("your notebook did not answer in time{while_}: the run was ended")
    elif kind in ("closed", "malformed"):
        template = N_("your notebook's run ended, or answered something unreadable,{while_}; "
                      "run it from the top to see why")
    elif raised in _UNDEFINED:
        template = N_("something this check needs is not defined in your notebook{while_}: "
                      "check the names the homework asks for and run the notebook from the top")
    elif raised in _UNFIT:
        template = N_("your code did not accept the inputs this check gives it{while_} (their "
                      "shapes or types): try it on inputs of other sizes")
    else:
        template = N_("your code stopped with an error{while_}; run the notebook from the top "
                      "to see it")
    return say(template, while_=while_)


def unfinished() -> Words:
    """A rubric check that raised in the grader's own code (on what the notebook returned, or
    a rubric's bug): said so, never in the exception's text."""
    return say(N_("the grader could not finish this check on what your notebook returned (this "
                  "is not a verdict on your work): the course staff will look at it"))
