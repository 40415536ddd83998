"""Making a student's HTML safe to show: what their notebook printed, wrote in markdown or
produced as output is untrusted, and must never run in a TA's or a student's browser.

Two layers. Here, an allowlist sanitiser (nh3) keeps formatting tags and drops scripts, event
handlers, styles, frames, forms and every URL that would fetch something (an image may only be an
inline `data:image/...`). In the page, a Content-Security-Policy without any script source stops
whatever the first layer missed. The sanitiser also keeps the page quiet: a blocked fetch would
be a console error and a request, so the fetch is removed before the browser ever sees it.
"""

from __future__ import annotations

import html

import latex2mathml.converter
import nh3

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
       "form-action 'none'; base-uri 'none'")

MATHML_TAGS = {"math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msub", "msup",
               "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable",
               "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose", "semantics"}
MATHML_ATTRIBUTES = {"display", "mathvariant", "stretchy", "fence", "form", "separator",
                     "lspace", "rspace", "columnalign", "accent", "accentunder", "linethickness",
                     "width", "height", "depth", "displaystyle", "scriptlevel", "movablelimits"}
TAGS = (set(nh3.ALLOWED_TAGS) - {"area", "map"}) | MATHML_TAGS
ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items() if tag in TAGS},
    "*": {"class", "title"},
    **dict.fromkeys(MATHML_TAGS, MATHML_ATTRIBUTES),
}
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript",
                        "svg", "canvas", "audio", "video", "textarea", "select"}
IMAGE_PREFIXES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;")


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Drop every URL that would load something; keep plain links to the web."""
    if tag == "img" and name == "src":
        return value if value.lower().startswith(IMAGE_PREFIXES) else None
    if name in ("href", "cite"):
        lowered = value.strip().lower()
        return value if lowered.startswith(("https://", "http://", "#")) else None
    return value


def clean(fragment: str) -> str:
    """An HTML fragment from a student's notebook, with nothing left that runs or fetches."""
    return nh3.clean(fragment, tags=TAGS, clean_content_tags=DROPPED_WITH_CONTENT,
                     attributes=ATTRIBUTES, attribute_filter=_attribute,
                     url_schemes={"http", "https", "data"}, strip_comments=True,
                     link_rel="noopener noreferrer nofollow")


def math(latex: str) -> str:
    """A LaTeX expression as MathML (rendered by the browser itself, offline); an expression
    the converter cannot read is shown as its source."""
    try:
        converted = latex2mathml.converter.convert(latex)
    except Exception:  # noqa: BLE001 - any student text: show the source instead
        return f"<code>{html.escape(latex)}</code>"
    return clean(converted)
