"""Text that came from a submission, made safe to store and to print.

A student controls file names, exception messages, outputs and every answer of the sandbox.
Such text may hold lone surrogates (not valid Unicode: SQLite, UTF-8 files and terminals refuse
them), terminal escape sequences and newlines (which can rewrite or forge the lines a TA reads),
or be megabytes long. `clean_text` is for what is stored, `one_line` for what is printed.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories never printed as they are: controls (ESC, CR, NUL ...), format characters
#: (bidirectional overrides, zero-width), line and paragraph separators, surrogates.
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def clean_text(value: object, limit: int) -> str:
    """`value` as valid Unicode of at most `limit` characters: a surrogate pair becomes its
    character, a lone surrogate becomes U+FFFD, NUL becomes U+FFFD, and a longer text is cut
    with a note saying how much was left out."""
    text = valid_unicode(value if isinstance(value, str) else str(value)).replace("\0", "\ufffd")
    if len(text) > limit:
        cut = len(text) - limit
        text = f"{text[:limit]}… ({cut} more characters left out)"
    return text


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
    text = value if isinstance(value, str) else str(value)
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
