"""Every text a student reads, in English or in Chinese, from message catalogs.

The grader decides in data (a `Mistake` and its numbers, an item's score) and says it in words
only at the end, so the same result can be shown in either language. A sentence the grader
or a rubric makes is a `Words`: an English string (what the gradebook's `feedback` column and
the TA's CSV hold) that also remembers its template and arguments, so that a page rendered in
Chinese translates the template and fills in the same arguments.

The catalogs are gettext `.po` files, read with Babel:

    grader/locale/zh/*.po                the grader's own words (judge.po, report.po, check.po)
    assignments/<hw>/locale/zh.po        a course's rubric titles and messages (optional)

The English template is the message id, so English needs no catalog, and a text nobody
translated shows in English rather than not at all. `N_` marks a template for extraction
(`make messages` lists what a catalog lacks); `say` makes a `Words` and marks its template.

    say("{name} has shape {shape}, expected {expected}", name="dW1", shape=[3, 4], ...)
"""

from __future__ import annotations

import functools
import gettext
import io
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LANGS = ("en", "zh")
DEFAULT = "en"
#: The environment variable a student sets for `grade check` and the in-notebook check.
ENV = "TORCHGRADE_LANG"
LOCALE = Path(__file__).parent / "locale"
#: What the page's `<html lang>` says for each language.
HTML_LANG = {"en": "en", "zh": "zh-Hans"}

#: A joined list's separator per language: English `; ` and `, ` become Chinese `；` and `、`.
_SEPARATORS = {"zh": {"; ": "；", ", ": "、", " ": ""}}
_JOIN = "\0join"


class LanguageError(ValueError):
    """A language the grader has no catalog for."""


def N_(template: str) -> str:  # noqa: N802 - gettext's own name for "mark, do not translate"
    """`template` unchanged: marks it as a message for the catalogs."""
    return template


def language(value: str | None) -> str:
    """`value` as one of LANGS ("zh-CN", "zh_Hans" and "ZH" are zh); None is the default."""
    if value is None or not str(value).strip():
        return DEFAULT
    code = str(value).strip().lower().replace("_", "-").split("-")[0]
    if code not in LANGS:
        raise LanguageError(f"no catalog for the language {value!r}: use one of "
                            f"{', '.join(LANGS)}")
    return code


def chosen(*values: str | None) -> str:
    """The first language given among `values` (a flag, then a course's setting), else the
    TORCHGRADE_LANG environment variable, else English."""
    for value in (*values, os.environ.get(ENV)):
        if value:
            return language(value)
    return DEFAULT


class Words(str):
    """An English sentence that remembers its template and arguments, to be said again in
    another language. It is a `str`, so an assertion message, a join or a CSV cell takes it
    as it is; `render(lang)` says it in LANG."""

    template: str
    args: dict[str, Any]

    def __new__(cls, template: str, args: Mapping[str, Any] | None = None) -> Words:
        values = dict(args or {})
        made = super().__new__(cls, _fill(template, values, "en", ()))
        made.template, made.args = template, values
        if _heard is not None:
            _heard[str(made)] = made
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its template and arguments (a grading worker sends results back), since
        its English alone may hold braces that are no fields."""
        return (Words, (self.template, self.args))

    def render(self, lang: str, catalogs: Iterable[gettext.NullTranslations] = ()) -> str:
        """This sentence in LANG, from the catalogs (an assignment's first, then the
        grader's); English where none has it."""
        return _fill(self.template, self.args, lang, tuple(catalogs))

    def to_json(self) -> dict[str, Any]:
        """The template and its arguments, for the gradebook."""
        return {"t": self.template, "a": {k: _jsonable(v) for k, v in self.args.items()}}

    @classmethod
    def from_json(cls, data: Any) -> Words | None:
        """A Words back from `to_json`, or None for anything else (the gradebook's text came,
        in part, from a submission: it is checked, not trusted)."""
        if not isinstance(data, dict) or not isinstance(data.get("t"), str) or \
                not isinstance(data.get("a", {}), dict):
            return None
        args = {str(k): _from_jsonable(v) for k, v in data.get("a", {}).items()}
        try:
            return cls(data["t"], args)
        except (KeyError, IndexError, ValueError, TypeError):
            return None

    @classmethod
    def join(cls, parts: Iterable[str], separator: str = "; ") -> Words:
        """PARTS (Words or plain text) as one sentence, the separator said per language."""
        return cls(_JOIN, {"sep": separator, "parts": list(parts)})


def say(template: str, /, **args: Any) -> Words:
    """A sentence for a student: TEMPLATE (English, with `{name}` fields, the catalogs'
    message id) filled in with ARGS. Arguments may be Words themselves."""
    return Words(template, args)


def _fill(template: str, args: Mapping[str, Any], lang: str,
          catalogs: tuple[gettext.NullTranslations, ...]) -> str:
    if template == _JOIN:
        separator = str(args.get("sep", "; "))
        separator = _SEPARATORS.get(lang, {}).get(separator, separator)
        return separator.join(_said(part, lang, catalogs) for part in args.get("parts", []))
    values = {k: _said(v, lang, catalogs) for k, v in args.items()}
    try:
        return _FORMAT.format(translate(template, lang, catalogs), **values)
    except (KeyError, IndexError, ValueError, TypeError):  # a translation that lost a field
        return _FORMAT.format(template, **{k: _said(v, DEFAULT, ()) for k, v in args.items()})


class _Fields(string.Formatter):
    """str.format that fills named fields only: `{a.b}` and `{a[0]}` are refused, so a
    template can never reach an attribute of its arguments."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise KeyError(field_name)
        return kwargs[field_name], field_name


_FORMAT = _Fields()


def _said(value: Any, lang: str, catalogs: tuple[gettext.NullTranslations, ...]) -> Any:
    if isinstance(value, Words):
        return value.render(lang, catalogs)
    if isinstance(value, str) and lang != DEFAULT:
        return translate(value, lang, catalogs)  # a bare word from a table: "mean", "right"
    return value


def translate(text: str, lang: str, catalogs: Iterable[gettext.NullTranslations] = ()) -> str:
    """TEXT (an English message id, or a plain string such as a rubric's title) in LANG: the
    first catalog that has it, else TEXT itself."""
    if lang == DEFAULT or not text:
        return text
    for catalog in (*catalogs, translations(lang)):
        found = catalog.gettext(text)
        if found != text:
            return found
    return text


def text(value: str, lang: str, catalogs: Iterable[gettext.NullTranslations] = ()) -> str:
    """Any stored English sentence in LANG: a message id as it is, else one that a template of
    the catalogs makes (a run's reason, a note, feedback from before the structure was kept),
    its filled-in parts said in LANG too; else VALUE unchanged. A template with no words of
    its own ("{names}: {text}") counts only when a part of it is said in LANG, so that the
    colons of an exception's text are never taken for a sentence."""
    if lang == DEFAULT or not value:
        return value
    if isinstance(value, Words):
        return value.render(lang, catalogs)
    found = translate(value, lang, catalogs)
    if found != value:
        return found
    catalogs = tuple(catalogs)
    for template in patterns(catalogs, lang):
        match = template.pattern.fullmatch(value)
        if match is None:
            continue
        parts = {k: text(v, lang, catalogs) for k, v in match.groupdict().items()}
        if not template.worded and parts == match.groupdict():
            continue
        try:
            return _FORMAT.format(bare(translate(template.text, lang, catalogs)), **parts)
        except (KeyError, IndexError, ValueError, TypeError):
            return value
    return value


@dataclass(frozen=True)
class Template:
    """A catalog template with fields, as a pattern that matches the sentences it makes."""

    text: str
    pattern: re.Pattern[str]
    worded: bool  # it has words of its own, not only punctuation between its fields


@functools.cache
def patterns(catalogs: tuple[gettext.NullTranslations, ...], lang: str) -> list[Template]:
    """Every template with fields in the catalogs (the course's, then the grader's), the
    most specific (most literal text) first."""
    found = []
    for catalog in (*catalogs, translations(lang)):
        for template in getattr(catalog, "_catalog", {}):
            names = fields(template) if isinstance(template, str) and template else set()
            if names and all(name.isidentifier() for name in names):
                literal = "".join(part for part, _, _, _ in string.Formatter().parse(template))
                found.append((len(literal), Template(template, _pattern(template), bool(
                    re.search("[A-Za-z]", literal)))))
    return [template for _, template in sorted(found, key=lambda pair: -pair[0])]


def _pattern(template: str) -> re.Pattern[str]:
    pattern, seen = "", set()
    for literal, name, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if name is not None:
            pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
            seen.add(name)
    return re.compile(pattern, re.DOTALL)


def bare(template: str) -> str:
    """TEMPLATE without format specs (`{error:.2g}` is `{error}`), for filling it with values
    read back as text."""
    return "".join(literal.replace("{", "{{").replace("}", "}}") + (
        "{" + name + "}" if name is not None else "")
        for literal, name, _, _ in string.Formatter().parse(template))


def feedback(value: str, said: Any, lang: str,
             catalogs: Iterable[gettext.NullTranslations] = ()) -> str:
    """A stored item's feedback in LANG: from its structure when the gradebook kept one, else
    its text looked up as a message id (a rubric's literal message), else as it is."""
    if lang == DEFAULT:
        return value
    words = Words.from_json(said) if said else None
    if words is not None and str(words) == value:
        return words.render(lang, catalogs)
    return text(value, lang, catalogs)


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The grader's own catalog for LANG, every `grader/locale/<lang>/*.po` in one
    (NullTranslations for English)."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return _compiled(tuple(sorted((LOCALE / language(lang)).glob("*.po"))))


@functools.cache
def catalog(path: Path) -> gettext.NullTranslations:
    """The `.po` file at PATH as gettext translations (NullTranslations when there is none)."""
    return _compiled((path,) if path.is_file() else ())


def _compiled(paths: tuple[Path, ...]) -> gettext.NullTranslations:
    """The `.po` files PATHS as one catalog, compiled in memory with Babel, so the `.po`
    files are the only copy kept (the first file that translates a message wins)."""
    if not paths:
        return gettext.NullTranslations()
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    merged = Catalog()
    for path in paths:
        with path.open("rb") as handle:
            for message in read_po(handle):
                if message.id and message.string and message.id not in merged:
                    merged.add(message.id, message.string)
    buffer = io.BytesIO()
    write_mo(buffer, merged)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def course_catalogs(folder: Path | None, lang: str) -> tuple[gettext.NullTranslations, ...]:
    """The catalog a course ships with an assignment (`<folder>/locale/<lang>.po`), if any."""
    if folder is None or lang == DEFAULT:
        return ()
    return (catalog(Path(folder) / "locale" / f"{lang}.po"),)


class Voice:
    """How the grader speaks to one homework's students outside a page (`grade check`, the
    Gradescope export): in LANG, from the grader's catalog and the course's own (the rubric's
    titles and messages, `<folder>/locale/<lang>.po`)."""

    def __init__(self, lang: str = DEFAULT, folder: Path | None = None) -> None:
        self.lang = language(lang)
        self.catalogs = course_catalogs(folder, self.lang)

    def text(self, value: str) -> str:
        """A stored sentence or a `Words` (a run's reason, a note) in the language."""
        return text(value, self.lang, self.catalogs)

    def title(self, item: Any) -> str:
        """An item's title (`heading`) in the language."""
        return translate(item.heading, self.lang, self.catalogs)

    def feedback(self, item: Any) -> str:
        """An item's feedback in the language, from its structure when the gradebook kept one."""
        return feedback(item.feedback, item.said, self.lang, self.catalogs)


def fields(template: str) -> set[str]:
    """The `{name}` fields of TEMPLATE (a translation must use the same ones)."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in
                string.Formatter().parse(template) if name}
    except ValueError:  # a literal text with a lone brace (LaTeX): no template
        return set()


# ---------------------------------------------------------------- what a rubric test said

_heard: dict[str, Words] | None = None


class Listening:
    """Remembers every Words made while it is open, by its English text, so that the rubric
    runner finds the structure of a message that reached it as text (pytest turns an
    assertion's message into a string)."""

    def __enter__(self) -> dict[str, Words]:
        global _heard
        self._before, _heard = _heard, {}
        return _heard

    def __exit__(self, *exc: object) -> None:
        global _heard
        _heard = self._before


def heard(text: str, said: Mapping[str, Words]) -> Words | None:
    """The Words whose English is TEXT among those SAID, or None (a plain string)."""
    if isinstance(text, Words):
        return text
    return said.get(text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Words):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return Words.from_json(value)
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value
