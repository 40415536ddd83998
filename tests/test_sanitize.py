"""The sanitiser between a student's output and the reader's browser."""

from __future__ import annotations

import pytest

from grader.report import sanitize

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><circle r=1></svg>",
    "<iframe src='javascript:alert(1)'></iframe>",
    "<a href='javascript:alert(1)'>x</a>",
    "<a href=' JaVaScRiPt:alert(1)'>x</a>",
    "<object data='x.swf'></object><embed src='x'>",
    "<form action='http://127.0.0.1:9/'><input name=q></form>",
    "<div style=\"background:url(http://127.0.0.1:9/)\">x</div>",
    "<img src='http://127.0.0.1:9/beacon.png'>",
    "<img src='data:image/svg+xml;base64,PHN2Zz48L3N2Zz4='>",
    "<link rel=stylesheet href='http://127.0.0.1:9/x.css'>",
    "<meta http-equiv='refresh' content='0;url=http://127.0.0.1:9/'>",
    "<base href='http://127.0.0.1:9/'>",
    "<math><maction actiontype='statusline' onclick='alert(1)'>x</maction></math>",
    "<scr<script>ipt>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_that_runs_or_fetches_survives(attack):
    cleaned = sanitize.clean(attack).lower()
    for needle in ("<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "<object",
                   "<embed", "<form", "style=", "127.0.0.1", "<link", "<meta", "<base",
                   "svg+xml"):
        assert needle not in cleaned, (attack, cleaned)


def test_formatting_and_inline_images_are_kept():
    kept = sanitize.clean('<table class="dataframe"><tr><td><b>1</b></td></tr></table>'
                          '<img src="data:image/png;base64,iVBORw0KGgo=" alt="plot">'
                          '<a href="https://pytorch.org">docs</a>')
    assert '<table class="dataframe">' in kept and "<b>1</b>" in kept
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in kept
    assert 'href="https://pytorch.org"' in kept and 'rel="noopener noreferrer nofollow"' in kept


def test_latex_becomes_mathml_and_unreadable_latex_stays_text():
    html = sanitize.math(r"\frac{\partial f}{\partial W_1} = X^T \delta")
    assert html.startswith("<math") and "<mfrac>" in html
    assert sanitize.math(r"\frac{") == "<code>\\frac{</code>"  # unbalanced: shown as written
    assert "<script" not in sanitize.math(r"\text{<script>alert(1)</script>}")


def test_the_policy_allows_no_script_and_no_fetch():
    assert "default-src 'none'" in sanitize.CSP and "script-src" not in sanitize.CSP
    assert "img-src data:" in sanitize.CSP
