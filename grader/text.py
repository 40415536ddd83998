"""Text that came from a submission, made safe to store and to print.

A student controls file names, exception messages, outputs and every answer of the sandbox.
Such text may hold lone surrogates (not valid Unicode: SQLite, UTF-8 files and terminals refuse
them), terminal escape sequences and newlines (which can rewrite or forge the lines a TA reads),
or be megabytes long. `clean_text` is for what is stored, `one_line` for what is printed.

The locale is no help: under LANG=C or a Latin-1 locale, Python reads a file name such as
`作业4 (1).ipynb` as one surrogate per byte it could not decode (U+DC80-U+DCFF). Both functions
read such bytes as the UTF-8 they were (`from_undecoded_bytes`), so the name shows whatever the
locale, and `tolerant_output` keeps a console that cannot show a character from raising.
"""

from __future__ import annotations

import re
import sys
import unicodedata

#: Unicode categories never printed as they are: controls (ESC, CR, NUL ...), format characters
#: (bidirectional overrides, zero-width), line and paragraph separators, surrogates.
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}
#: A run of bytes Python could not decode (surrogateescape), not the low half of a pair.
_UNDECODED = re.compile("(?<![\ud800-\udbff])[\udc80-\udcff]+")


def clean_text(value: object, limit: int) -> str:
    """`value` as valid Unicode of at most `limit` characters: a surrogate pair becomes its
    character, a lone surrogate becomes U+FFFD, NUL becomes U+FFFD, and a longer text is cut
    with a note saying how much was left out."""
    text = str(value)
    text = valid_unicode(from_undecoded_bytes(text)).replace("\0", "\ufffd")
    if len(text) > limit:
        cut = len(text) - limit
        text = f"{text[:limit]}… ({cut} more characters left out)"
    return text


def from_undecoded_bytes(text: str) -> str:
    """`text` with each run of bytes that a non-UTF-8 locale left undecoded (surrogates
    U+DC80-U+DCFF, as Python's surrogateescape makes them) read as UTF-8; bytes that are not
    UTF-8 stay as they were."""
    if text.isascii():
        return text
    return _UNDECODED.sub(lambda run: bytes(ord(c) - 0xDC00 for c in run.group()).decode(
        "utf-8", "surrogateescape"), text)


def valid_unicode(text: str) -> str:
    """`text` with every surrogate pair joined into its character and every lone surrogate
    replaced by U+FFFD, so that it encodes as UTF-8."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def one_line(value: object, limit: int = 300) -> str:
    """`value` as one printable line: every control or invisible character (ESC, CR, a newline,
    a bidirectional override) shown escaped as `\\x1b`, `\\n`, `\\u202e`, and at most `limit`
    characters, so that nothing a student wrote can move the cursor or add a line."""
    text = from_undecoded_bytes(value if isinstance(value, str) else str(value))
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable():
        return text
    return "".join(_escaped(c) if unicodedata.category(c) in _HIDDEN else c for c in text)


def _escaped(char: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def tolerant_output() -> None:
    """Let stdout and stderr print any text: a character the console's encoding lacks (a
    Chinese file name on a cp1252 Windows console or a pipe under LANG=C) is written as an
    escape such as `\\u4f5c` instead of raising UnicodeEncodeError in the middle of a result."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")
