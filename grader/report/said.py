"""How a page says a stored English sentence in the student's language.

A run's reason, its notes and a hand-in's notes reach the report as the English text other
modules stored (grader/sandbox, grader/run, grader/results.Handin.notes), without the template
they were made from. Their templates are listed here as messages, so the report's catalog
(grader/locale/zh/report.po) translates them and `html` recognises a stored sentence by the
template that makes it, as `i18n.text` does. What it filled in is said in the language too when
a catalog knows it; anything else a sentence carries (an exception's text, a file's or a
student's name, a path) is code or a name, and is shown as `<code>`, never translated. A
sentence no template makes shows as it was stored.

The status words of the pills (a run's outcome, an item's status, a derivation's verdict, a
class page's flag) are messages with a context before `|` ("item|failed"), since the same
English word is two words in Chinese (a run that failed, a test that failed).
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable
from typing import Any

from markupsafe import Markup, escape

from grader import i18n
from grader.i18n import N_

#: Sentences other modules store for the report: recognised by these templates.
STORED = (
    # grader/results.py, Handin.notes
    N_("{file} was matched by content to {notebook}"),
    N_("{file} was graded as {notebook}: the only notebook handed in"),
    N_("{file} was matched by its name to {notebook}"),
    N_("handed in late ({when}), as {source} says"),
    N_("handed in late, as {source} says"),
    N_("the LMS"),
    N_("also handed in, not graded (the latest attempt counts): {files}"),
    N_("not graded (not a notebook): {files}"),
    # grader/sandbox/session.py: the run's reason and notes
    N_("ran over {seconds} s"),
    N_("the sandbox answered something else than a run"),
    N_("the sandbox ended without answering"),
    N_("a cell ran over its time limit"),
    N_("cell {index}: {error}"),
    N_("the kernel was killed in cell {index}: over the memory limit"),
    N_("the kernel was killed: over the memory limit"),
    N_("the kernel died in cell {index}"),
    N_("the kernel died"),
    N_("the sandbox could not be built: {said}"),
    N_("the grader has no GPU: .cuda() calls ran on the CPU (the run took {seconds} s)"),
    N_("left out symlink {path}"),
    N_("left out special file {path}"),
    N_("not sandboxed: resource limits only"),
    # grader/sandbox/agent.py: a cell not run
    N_("the notebook ran over its time limit"),
    # grader/sandbox/probes.py: a question to the notebook that got no answer in time (what
    # was asked, "calling `gradients`", is the judge's "{verb} `{target}`", in judge.po)
    N_("time ran out {what}: no answer within {seconds} s; the run was ended"),
    N_("calling"),
    N_("reading"),
    N_("listing the models"),
    N_("running the model"),
    N_("loading and running"),
    N_("asking for the torch version"),
    N_("checking the layers of"),
    N_("listing the files"),
    N_("reading the file"),
    N_("evaluating an expression read from the notebook"),
    N_("stopping what the notebook left running"),
    N_("ending the run"),
    # grader/judge/grade.py, grader/run/pool.py, grader/run/dask.py: the grader failed
    N_("the grader failed on this submission ({error}); it is graded again on the next run"),
    N_("the grading process died ({how}); it is graded again on the next run"),
    N_("the grading process died ({how}) (SIGKILL: perhaps the machine ran out of memory); "
       "it is graded again on the next run"),
    N_("killed by signal {signal}"),
    N_("exit code {code}"),
    N_("the worker grading it was lost {times} times (its process died, or its Slurm job was "
       "cancelled, pre-empted or out of time or memory); it is graded again on the next run"),
    N_("the grading on the cluster failed ({error}); it is graded again on the next run"),
    N_("{error}; a submission must hold plain files only; links are never followed; it is "
       "graded again on the next run"),
    N_("it is graded again on the next run"),
)

#: The pills' words, each with its context (shown in English without it).
WORDS = (
    # a run's outcome (grader.results.Outcome)
    N_("run|completed"), N_("run|error"), N_("run|timeout"), N_("run|killed"),
    N_("run|failed"), N_("run|rejected"),
    # a rubric item's status (grader.results.ItemStatus)
    N_("item|passed"), N_("item|partial"), N_("item|failed"), N_("item|error"),
    # a derivation written in markdown (grader.judge.latex)
    N_("verdict|right"), N_("verdict|wrong"), N_("verdict|unreadable"),
    N_("verdict|definition"),
    # what the class page flags
    N_("flag|completed"), N_("flag|error"), N_("flag|timeout"), N_("flag|killed"),
    N_("flag|failed"), N_("flag|rejected"), N_("flag|loaded"), N_("flag|gap"),
    N_("flag|similar"),
)


def word(value: object, kind: str, lang: str) -> str:
    """A pill's word (an outcome, a status, a verdict) in LANG: the catalog's for
    "KIND|VALUE", else VALUE as it is."""
    text = str(value)
    if lang == i18n.DEFAULT:
        return text
    found = i18n.translate(f"{kind}|{text}", lang)
    return text if found == f"{kind}|{text}" else found


def html(value: object, lang: str,
         catalogs: Iterable[gettext.NullTranslations] = ()) -> Markup:
    """A stored sentence (or `Words`) in LANG as safe HTML: recognised by a template of the
    catalogs, what it filled in said in LANG where a catalog knows it, else shown as code;
    in English, or when no template makes it, the sentence as it was stored."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if lang == i18n.DEFAULT or not text:
        return escape(text)
    if isinstance(text, i18n.Words):
        return escape(text.render(lang, catalogs))
    return _said(text, lang, tuple(catalogs), top=True)


def feedback(value: str, structure: Any, lang: str,
             catalogs: Iterable[gettext.NullTranslations] = ()) -> Markup:
    """A rubric item's (or a derivation's) feedback in LANG as safe HTML: from the structure
    the gradebook kept (`i18n.feedback`), else recognised as `html` recognises a sentence."""
    if lang == i18n.DEFAULT or not value:
        return escape(value or "")
    words = i18n.Words.from_json(structure) if structure else None
    if words is not None and str(words) == value:
        return escape(i18n.feedback(value, structure, lang, catalogs))
    return html(value, lang, catalogs)


def _said(text: str, lang: str, catalogs: tuple[gettext.NullTranslations, ...],
          top: bool = False) -> Markup:
    found = i18n.translate(text, lang, catalogs)
    if found != text:
        return escape(found)
    for template in i18n.patterns(catalogs, lang):
        match = template.pattern.fullmatch(text)
        if match is None:
            continue
        found_parts = match.groupdict()
        parts = {name: _said(part, lang, catalogs) for name, part in found_parts.items()}
        if not template.worded and all(parts[name] in (escape(part), _code(part))
                                       for name, part in found_parts.items()):
            continue  # "{verb} `{target}`" is no sentence unless a part of it is one
        try:
            return Markup(escape(i18n.bare(i18n.translate(template.text, lang, catalogs)))
                          ).format(**parts)
        except (KeyError, IndexError, ValueError):
            break
    if top or not re.search(r"[A-Za-z]", text):
        return escape(text)
    return _code(text)


def _code(text: str) -> Markup:
    return Markup("<code>{}</code>").format(text)
