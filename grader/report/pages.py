"""The HTML pages: one per student and homework, one per class, one per similar pair.

Every page is a single self-contained file (its stylesheet inline, plots as inline SVG or PNG
data, MathML for formulas) with a Content-Security-Policy that allows no script and no fetch, so
it opens offline from `file://` and a student's output can never run in the reader's browser.
Pages are built from stored results (`grader.results.StoredResult`), never from a live run.
"""

from __future__ import annotations

import gettext
import json
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jinja2

from grader import i18n
from grader.i18n import N_
from grader.report import charts, said, sanitize
from grader.report import notebook as nbview
from grader.results import Item, Outcome, StoredResult

PARAMETERS = ("dW1", "db1", "dW2", "db2")
PROBLEM_OUTCOMES = frozenset(Outcome) - {Outcome.COMPLETED}


@cache
def environment(lang: str = i18n.DEFAULT) -> jinja2.Environment:
    """The templates in LANG: their static text from the grader's catalog (Jinja's i18n
    extension), and filters that say a page's dynamic text (titles, feedback, reasons, notes,
    the pills' words, units) in LANG. One environment per language."""
    lang = i18n.language(lang)
    env = jinja2.Environment(loader=jinja2.PackageLoader("grader.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.Undefined, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)
    env.globals["csp"] = sanitize.CSP
    env.globals["stylesheet"] = resources.files("grader.report").joinpath(
        "templates/style.css").read_text()
    env.globals["html_lang"] = i18n.HTML_LANG[lang]
    env.filters["seconds"] = lambda v: _seconds(v, lang)
    env.filters["pts"] = lambda v: f"{float(v):.2f}".rstrip("0").rstrip(".") if v is not None \
        else "—"
    env.filters["megabytes"] = lambda b: f"{b / 2**20:.0f} MB" if b else "—"
    env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) \
        if t else "—"
    env.filters["word"] = lambda value, kind: said.word(value, kind, lang)
    env.filters["said"] = jinja2.pass_context(
        lambda context, value: said.html(value, lang, _catalogs(context)))
    env.filters["translated"] = jinja2.pass_context(
        lambda context, text: i18n.translate(str(text), lang, _catalogs(context)))
    env.filters["item_title"] = jinja2.pass_context(
        lambda context, item: i18n.translate(item.heading, lang, _catalogs(context)))
    env.filters["feedback"] = jinja2.pass_context(
        lambda context, item: said.feedback(item.feedback, item.said, lang, _catalogs(context)))
    env.filters["derivation"] = jinja2.pass_context(
        lambda context, d: said.feedback(str(d.get("feedback") or ""), d.get("said"), lang,
                                         _catalogs(context)))
    return env


def _catalogs(context: Any) -> tuple[gettext.NullTranslations, ...]:
    """The course's catalogs a page was rendered with (its rubric's titles and messages)."""
    return tuple(context.get("catalogs") or ())


def _seconds(value: float | None, lang: str = i18n.DEFAULT) -> str:
    if value is None:
        return "—"
    if value < 600:
        shown = f"{value:.2f}" if value < 10 else f"{value:.0f}"
        return i18n.say(N_("{value} s"), value=shown).render(lang)
    return i18n.say(N_("{value} min"), value=f"{value / 60:.1f}").render(lang)


# ----------------------------------------------------------------------------- student page


@dataclass
class NotebookSection:
    """One graded notebook on a student's page."""

    result: StoredResult
    record: dict[str, Any]
    cells: list[dict[str, Any]]
    tracebacks: list[dict[str, Any]]
    evidence: dict[str, Any]
    notebook_html: str
    training: dict[str, Any] | None = None  # seconds, times the solution's, baseline, device

    @property
    def device(self) -> str:
        env = self.record.get("environment") or {}
        return str(env.get("gpu") or ("CPU" if env else self.result.device or "—"))


def _gradient_table(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Relative error per batch size (rows) and parameter (columns)."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for e in errors:
        key = (int(e.get("batch", 0)), int(e.get("hidden", 0)))
        row = rows.setdefault(key, {"batch": key[0], "hidden": key[1], "cells": {}})
        row["cells"][str(e.get("parameter"))] = (float(e.get("relative_error", float("nan"))),
                                                 bool(e.get("correct")))
    return [rows[k] for k in sorted(rows)]


def _evidence_view(evidence: dict[str, Any], lang: str = i18n.DEFAULT) -> dict[str, Any]:
    """What the templates draw from a rubric's evidence; unknown keys are listed as data."""
    view: dict[str, Any] = {}
    if errors := evidence.get("gradient_errors"):
        view["gradient_table"] = _gradient_table(errors)
    if derivations := evidence.get("derivations"):  # in the order the student wrote them
        view["derivations"] = [{**d, "math": sanitize.math(
            f"{_target_latex(str(d.get('target')))} = {d.get('latex', '')}")}
            for d in derivations]
    if fit := evidence.get("fit"):
        view["fit"] = {**fit, "svg": charts.fit(fit.get("x", []), fit.get("y", []),
                                                fit.get("prediction", []),
                                                _own(N_("fresh points and the notebook's fit"),
                                                      lang),
                                                empty=_own(N_("no finite predictions to "
                                                               "draw"), lang)),
                       "ratio": fit.get("mse", 0) / fit["noise_floor"]
                       if fit.get("noise_floor") else None}
    if accuracy := evidence.get("accuracy"):
        view["accuracy"] = accuracy
    if confusion := evidence.get("confusion"):
        view["confusion"] = {"counts": confusion, "levels": charts.heat_levels(confusion)}
    if wrong := evidence.get("misclassified"):
        view["misclassified"] = [{**w, "png": charts.png(w.get("image", []))} for w in wrong]
    known = {"gradient_errors", "derivations", "fit", "accuracy", "confusion", "misclassified"}
    view["other"] = {k: json.dumps(v)[:2000] for k, v in evidence.items()
                     if k not in known and not k.startswith("_")}
    return view


def _target_latex(target: str) -> str:
    """dW1 as ∂f/∂W_1; an intermediate name such as delta_2 as \\delta_2."""
    if target in PARAMETERS:
        return rf"\frac{{\partial f}}{{\partial {target[1:-1]}_{target[-1]}}}"
    return re.sub(r"^(alpha|beta|gamma|delta|epsilon|sigma|theta|lambda|mu|nabla)", r"\\\1",
                  target)


def _own(template: str, lang: str) -> str:
    """A text of the report's own (marked with N_) in LANG."""
    return i18n.translate(template, lang)


def notebook_section(result: StoredResult, notebook_text: str | None,
                     baseline: Timing | None = None,
                     lang: str = i18n.DEFAULT) -> NotebookSection:
    """One stored result, with its stored executed notebook, ready to draw (its plots'
    labels in LANG); with the solution's training time (`baseline`), its own as a multiple
    of it."""
    record = result.record if isinstance(result.record, dict) else {}
    nb = nbview.parse(notebook_text)
    cells = nbview.timings(nb, record.get("cells") or [])
    return NotebookSection(
        result=result, record=record, cells=cells,
        tracebacks=nbview.tracebacks(nb),
        evidence=_evidence_view(result.evidence or {}, i18n.language(lang)),
        notebook_html=nbview.render(nb, i18n.language(lang)), training=_training(cells, baseline))


@dataclass(frozen=True)
class Timing:
    """The training cells' time of a run: seconds (GPU work waited for) and where."""

    seconds: float
    device: str


def training_time(result: StoredResult, notebook_text: str | None) -> Timing | None:
    """The seconds a run spent in cells that train (a backward pass, an optimiser step, an
    epoch loop), or None when none trained."""
    record = result.record if isinstance(result.record, dict) else {}
    cells = nbview.timings(nbview.parse(notebook_text), record.get("cells") or [])
    return _timing(cells, result.device or "cpu")


def _timing(cells: list[dict[str, Any]], device: str) -> Timing | None:
    seconds = [float(c.get("synced_seconds") or c.get("seconds") or 0) for c in cells
               if c.get("training")]
    return Timing(round(sum(seconds), 3), device) if seconds else None


def _training(cells: list[dict[str, Any]], baseline: Timing | None) -> dict[str, Any] | None:
    own = _timing(cells, "")
    if own is None:
        return None
    times = own.seconds / baseline.seconds if baseline and baseline.seconds > 0 else None
    return {"seconds": own.seconds, "times": times,
            "baseline": baseline.seconds if baseline else None,
            "device": baseline.device if baseline else ""}


def student_page(student: str, hw: str, title: str, sections: Sequence[NotebookSection],
                 lang: str = i18n.DEFAULT,
                 catalogs: Iterable[gettext.NullTranslations] = ()) -> str:
    """A student's page for one homework, in LANG: every notebook's score, why points were
    lost, and what the grader measured. CATALOGS are the course's (`i18n.course_catalogs`),
    for its rubric's titles and messages. Evidence the page cannot draw costs its drawings,
    not the page."""
    lang = i18n.language(lang)
    catalogs = tuple(catalogs)
    total = sum(s.result.total for s in sections)
    top = sum(s.result.max for s in sections)
    template = environment(lang).get_template("student.html")
    values = dict(student=student, hw=hw, title=i18n.translate(title, lang, catalogs),
                  sections=sections, total=total, max=top, generated=time.time(),
                  parameters=PARAMETERS, catalogs=catalogs)
    try:
        return template.render(**values)
    except Exception as exc:  # noqa: BLE001 - a rubric's odd evidence must not cost the page
        for section in sections:
            section.evidence = {"other": {_own(N_("evidence not drawn"), lang):
                                          f"{type(exc).__name__}: {exc}"}}
        return template.render(**values)


# ----------------------------------------------------------------------------- class page


@dataclass
class ClassStudent:
    name: str          # as shown (anonymised when asked)
    link: str          # the page's file name, relative to the class page
    results: list[StoredResult]

    @property
    def total(self) -> float:
        return sum(r.total for r in self.results)

    @property
    def max(self) -> float:
        return sum(r.max for r in self.results)


@dataclass
class ClassView:
    hw: str
    title: str
    students: list[ClassStudent]
    pairs: list[Any] = field(default_factory=list)
    more_pairs: int = 0  # pairs above the threshold beyond those listed
    pair_link: Callable[[int], str] = lambda k: f"pair-{k}.html"
    max_gap: float = 0.02
    training: list[float] = field(default_factory=list)  # multiples of the solution's time


def _item_rates(results: list[StoredResult]) -> list[dict[str, Any]]:
    by_item: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for result in results:
        for item in result.items:
            by_item[(result.notebook, item.name)].append(item)
    rates = []
    for (notebook, name), items in by_item.items():
        full = sum(1 for i in items if i.max and i.score >= i.max)
        worth = sum(i.max for i in items)
        rates.append({"notebook": notebook, "name": items[-1].heading, "test": name,
                      "count": len(items),
                      "passed": full / len(items),
                      "mean": sum(i.score for i in items) / worth if worth else None,
                      "hidden": any(i.hidden for i in items)})
    return rates


def _flags(view: ClassView) -> list[dict[str, Any]]:
    """What the class page lists to look at: each with its notebook (or None) and what, a
    stored sentence or `Words` the page says in its language."""
    flags: list[dict[str, Any]] = []
    for s in view.students:
        for result in s.results:
            if result.outcome in PROBLEM_OUTCOMES:
                flags.append({"student": s.name, "link": s.link, "kind": str(result.outcome),
                              "notebook": result.notebook,
                              "what": result.reason or str(result.outcome)})
            loaded = (result.evidence or {}).get("loaded_weights")
            if isinstance(loaded, list) and loaded:
                flags.append({"student": s.name, "link": s.link, "kind": "loaded",
                              "notebook": result.notebook, "what": i18n.say(N_(
                                  "the model's weights were loaded from {files}, handed in "
                                  "with it, not trained in the run"),
                                  files=", ".join(map(str, loaded)))})
            accuracy = (result.evidence or {}).get("accuracy") or {}
            gap = _gap(accuracy)
            if gap is not None and gap > view.max_gap:
                flags.append({"student": s.name, "link": s.link, "kind": "gap",
                              "notebook": None, "what": i18n.say(
                                  N_("test {test} but hold-out {holdout} (gap {gap})"),
                                  test=f"{accuracy['test']:.4f}",
                                  holdout=f"{accuracy['holdout']:.4f}", gap=f"{gap:.4f}")})
    for k, pair in enumerate(view.pairs):
        flags.append({"student": f"{pair.a} & {pair.b}", "link": view.pair_link(k),
                      "kind": "similar", "notebook": None,
                      "what": i18n.say(N_("code {score} similar"), score=f"{pair.score:.0%}")})
    return flags


def _gap(accuracy: dict[str, Any]) -> float | None:
    try:
        return float(accuracy["test"]) - float(accuracy["holdout"])
    except (KeyError, TypeError, ValueError):
        return None


def _leaderboard(view: ClassView) -> list[dict[str, Any]]:
    board = []
    for s in view.students:
        for result in s.results:
            accuracy = (result.evidence or {}).get("accuracy")
            if accuracy and accuracy.get("test") is not None:
                board.append({"student": s.name, "link": s.link, "notebook": result.notebook,
                              "test": float(accuracy["test"]),
                              "holdout": accuracy.get("holdout"), "gap": _gap(accuracy)})
    return sorted(board, key=lambda b: -b["test"])


def class_page(view: ClassView, lang: str = i18n.DEFAULT,
               catalogs: Iterable[gettext.NullTranslations] = ()) -> str:
    """The class at a glance, in LANG: scores, item pass rates, accuracy, runtimes, and what
    to look at. CATALOGS are the course's, for its title and its items' titles."""
    lang = i18n.language(lang)
    catalogs = tuple(catalogs)
    results = [r for s in view.students for r in s.results]
    totals = [s.total for s in view.students]
    top = max((s.max for s in view.students), default=1.0) or 1.0
    runtimes = [float(r.wall_seconds) for r in results if r.wall_seconds]
    outcomes: dict[str, int] = defaultdict(int)
    for r in results:
        outcomes[str(r.outcome)] += 1
    return environment(lang).get_template("class.html").render(
        view=view, title=i18n.translate(view.title, lang, catalogs), catalogs=catalogs,
        generated=time.time(), outcomes=dict(outcomes),
        histogram=charts.histogram(totals, 0, top, _own(N_("total scores"), lang),
                                   bins=min(10, max(1, int(top)))) if totals else "",
        runtime_chart=charts.histogram(runtimes, 0, max(runtimes), _own(N_("runtimes"), lang),
                                       unit=" s") if runtimes else "",
        median_total=statistics.median(totals) if totals else None, top=top,
        median_runtime=statistics.median(runtimes) if runtimes else None,
        rates=_item_rates(results), leaderboard=_leaderboard(view), flags=_flags(view),
        training_chart=charts.histogram(
            view.training, 0, max(view.training),
            _own(N_("training time as a multiple of the solution's"), lang), unit="×")
        if view.training else "",
        median_training=statistics.median(view.training) if view.training else None)


def pair_page(hw: str, pair: Any, back: str, lang: str = i18n.DEFAULT) -> str:
    """Two students' code side by side, the matching regions marked; in LANG."""
    return environment(i18n.language(lang)).get_template("pair.html").render(
        hw=hw, pair=pair, back=back, generated=time.time(),
        a_parts=_marked(pair.a_code, pair.a_spans), b_parts=_marked(pair.b_code, pair.b_spans))


def _marked(code: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, bool]]:
    """The code cut into (text, matched) pieces, for <mark> in the template (escaped there)."""
    parts, at = [], 0
    for start, end in sorted(spans):
        start, end = max(start, at), min(end, len(code))
        if start >= end:
            continue
        parts += [(code[at:start], False), (code[start:end], True)]
        at = end
    parts.append((code[at:], False))
    return [p for p in parts if p[0]]
