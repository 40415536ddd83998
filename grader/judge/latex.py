"""Gradient expressions written in markdown: found, parsed, and evaluated on random matrices.

Students give the W4 derivatives as LaTeX in a markdown cell. This module reads them without
running anything: it finds `∂f/∂W1 = ...` lines in the notebook's markdown, parses a practical
grammar into a tree, and evaluates the tree with numpy on inputs the judge draws, so the result
can be compared with the reference gradients like any other answer.

Grammar, loosest binding first:
    expr    := term (('+' | '-') term)*
    term    := unary (product unary)*        product: implicit, \\cdot, \\times (matrix product
                                             where the shapes allow, else scalar or elementwise),
                                             \\odot, \\circ, * (elementwise)
    unary   := '-' unary | postfix
    postfix := primary ('^T' | '^\\top' | "'" | '_{...}')*
    primary := number | symbol | (expr) | [expr] | \\{expr\\} | \\frac{expr}{expr}
             | \\sigma(expr) | \\sigma'(expr) | sigmoid(expr) | \\sum_i expr | \\mathbf{1}
Symbols: X, Y, W_1, b_1, W_2, b_2, h (= X W_1 + b_1), h_{sigmoid} (also H, A, a, \\sigma(h)),
Y_{pred} (also \\hat{Y}, \\hat{y}), n (the batch size), and any name defined on another line
(\\delta_2 = ..., G = ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nbformat
import numpy as np

from grader.i18n import N_, say
from grader.judge.mistakes import ACCEPTED_LAYOUTS, NAMES, Reading, describe


class Unreadable(ValueError):
    """The expression uses something this grammar does not know: 'could not read', never a
    crash. Its argument is the student's reason, a `Words`."""

    @property
    def reason(self) -> str:
        """What the reader could not read, in words (the Words it was raised with)."""
        return self.args[0] if self.args and isinstance(self.args[0], str) else str(self)


@dataclass(frozen=True)
class Expression:
    target: str    # dW1, db1, dW2, db2, or the name of an intermediate definition
    latex: str     # the right-hand side as written


# ----------------------------------------------------------------------------- finding

_MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\$(.+?)\$|(\\begin\{(?:aligned|align\*?|"
                   r"equation\*?|gathered|split)\}.+?\\end\{(?:aligned|align\*?|equation\*?|"
                   r"gathered|split)\})", re.S)
_PARAM = r"([Wwb])\s*_?\s*\{?\s*([12])\s*\}?"
_TARGETS = [
    re.compile(r"^\\frac\s*\{\s*\\partial\s*[fLlJ]\s*\}\s*\{\s*\\partial\s*" + _PARAM + r"\s*\}$"),
    re.compile(r"^\\frac\s*\{\s*d\s*[fLlJ]\s*\}\s*\{\s*d\s*" + _PARAM + r"\s*\}$"),
    re.compile(r"^\\partial\s*[fLlJ]\s*/\s*\\partial\s*" + _PARAM + r"$"),
    re.compile(r"^\\nabla\s*_\s*\{?\s*" + _PARAM + r"\s*\}?\s*[fLlJ]?$"),
    re.compile(r"^(?:\\partial|d|\\mathrm\{d\})\s*" + _PARAM + r"$"),
]
_NAME = re.compile(r"^\\?[A-Za-z]+(?:\s*_\s*(?:\{[^{}]*\}|[A-Za-z0-9]))?"
                   r"(?:\s*\^\s*\{?\\?prime\}?)?$")


def find(markdown: list[str]) -> list[Expression]:
    """Every `left = right` line in the math of these markdown cells, in order."""
    found: list[Expression] = []
    for text in markdown:
        for match in _MATH.finditer(text):
            body = next(g for g in match.groups() if g)
            body = re.sub(r"\\(?:begin|end)\{[a-z*]+\}", "", body)
            for line in re.split(r"\\\\|\n", body):
                found += _equation(line.replace("&", ""))
    return found


def _equation(line: str) -> list[Expression]:
    parts = [p.strip() for p in line.split("=")]
    if len(parts) < 2 or not parts[0]:
        return []
    left = parts[0]
    for pattern in _TARGETS:
        match = pattern.match(left)
        if match:
            target = f"d{match.group(1).upper() if match.group(1) in 'Ww' else 'b'}" \
                     f"{match.group(2)}"
            return [Expression(target, rhs) for rhs in parts[1:] if rhs]
    if _NAME.match(left):
        return [Expression(_canonical(left), parts[1])] if parts[1] else []
    return []


def _canonical(name: str) -> str:
    """One spelling per symbol: `\\delta_{2}`, `\\delta_2` and `δ_2` are all `delta_2`."""
    name = re.sub(r"\\(?:text|mathrm|operatorname|mathit|mathbf|boldsymbol)\s*\{([^{}]*)\}",
                  r"\1", name)
    name = name.replace("\\", "").replace("{", "").replace("}", "").replace(" ", "")
    return name.replace("^prime", "'")


# ----------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<num>\d+(?:\.\d+)?)
  | (?P<cmd>\\[A-Za-z]+|\\[{}|,;!\s])
  | (?P<word>[A-Za-z]+)
  | (?P<op>[-+*/^_'()\[\]{}|])
  | (?P<space>\s+)
""", re.X)

_SKIP = {"\\left", "\\right", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\,", "\\;", "\\!",
         "\\ ", "\\quad", "\\qquad", "\\limits", "\\displaystyle"}
_OPEN = {"(": ")", "[": "]", "\\{": "\\}", "{": "}", "|": "|"}
_PRODUCT = {"\\cdot": "product", "\\times": "product", "\\odot": "hadamard",
            "\\circ": "hadamard", "*": "hadamard"}


def tokenize(text: str) -> list[str]:
    text = re.sub(r"\\(?:text|mathrm|operatorname|mathit)\s*\{([^{}]*)\}", r"\1", text)
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise Unreadable(say(N_("unexpected character {character}"),
                                 character=repr(text[position])))
        position = match.end()
        kind, value = match.lastgroup, match.group()
        if kind == "space" or value in _SKIP:
            continue
        tokens.append(value)
    return tokens


# ----------------------------------------------------------------------------- parsing

Node = tuple  # ("num", v) | ("sym", name) | ("ones",) | (op, child, ...)


class Parser:
    def __init__(self, tokens: list[str], known: frozenset[str] = frozenset()) -> None:
        self.tokens = tokens
        self.at = 0
        self.known = known  # names defined on earlier lines: `dH`, `G`, `delta`

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise Unreadable(_expected(expected, token))
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise Unreadable(say(N_("could not read from {rest}"),
                                 rest=repr("".join(self.tokens[self.at:]))))
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = ("add" if op == "+" else "sub", node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while True:
            token = self.peek()
            if token in _PRODUCT:
                self.take()
                node = (_PRODUCT[token], node, self.unary())
            elif token == "/":
                self.take()
                node = ("div", node, self.unary())
            elif token is not None and self._starts_primary(token):
                node = ("product", node, self.unary())
            else:
                return node

    def _starts_primary(self, token: str) -> bool:
        return (token[0].isalnum() or token in _OPEN and token not in ("|", "{")
                or token in ("\\frac", "\\sigma", "\\sum", "\\mathbf", "\\mathbb", "\\hat",
                             "\\delta", "\\Delta", "\\vec", "\\boldsymbol", "\\nabla")
                or (token.startswith("\\") and token[1:].isalpha() and token not in _PRODUCT))

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token == "^":
                self.take()
                sup = self._group_text()
                if sup in ("T", "\\top", "\\intercal", "t"):
                    node = ("transpose", node)
                elif sup in ("2",):
                    node = ("square", node)
                else:
                    raise Unreadable(say(N_("unknown superscript {superscript}"),
                                         superscript=repr(sup)))
            elif token == "'":
                self.take()
                node = ("transpose", node)
            elif token == "_" and node[0] != "sym":
                self.take()
                self._group_text()  # `(Y_pred - Y)_i`: an index, the batch sum comes from \sum
            else:
                return node

    def _group_text(self) -> str:
        if self.peek() == "{":
            self.take()
            parts = []
            while self.peek() not in ("}", None):
                parts.append(self.take())
            self.take("}")
            return "".join(parts)
        return self.take()

    def primary(self) -> Node:
        token = self.take()
        if token[0].isdigit():
            if token == "1" and self.peek() == "^":
                return ("ones",)
            return ("num", float(token))
        if token in _OPEN and token != "{" or token == "{":
            node = self.expr()
            self.take(_OPEN[token])
            return node
        if token == "\\frac":
            top = self._braced()
            return ("div", top, self._braced())
        if token in ("\\mathbf", "\\mathbb", "\\vec", "\\boldsymbol"):
            inner = self._group_text()
            if inner == "1":
                return ("ones",)
            return self._symbol(inner)
        if token == "\\hat":
            inner = self._group_text()
            if inner.lower() == "y":
                return ("sym", "Y_pred")
            raise Unreadable(say(N_("unknown symbol \\hat{{{inner}}}"), inner=inner))
        if token == "\\sum":
            if self.peek() == "_":
                self.take()
                self._group_text()
            if self.peek() == "^":
                self.take()
                self._group_text()
            return ("sum", self.term())
        if token in ("\\sigma", "sigmoid", "sigma"):
            derivative = False
            if self.peek() == "'" or (self.peek() == "^" and self.tokens[self.at + 1:self.at + 2]
                                      in (["\\prime"], ["{"])):
                derivative = self._prime()
            argument = self._call_argument()
            return ("dsigmoid" if derivative else "sigmoid", argument)
        if token.isalpha() and len(token) > 1 and token not in self.known \
                and token not in _ALIASES:
            self.tokens[self.at - 1:self.at] = list(token)  # `XW` is X times W, as in maths
            self.at -= 1
            return self.primary()
        return self._symbol(token)

    def _prime(self) -> bool:
        if self.peek() == "'":
            self.take()
            return True
        self.take("^")
        return self._group_text() in ("\\prime", "'")

    def _call_argument(self) -> Node:
        opener = self.take()
        if opener not in _OPEN:
            raise Unreadable(say(N_("σ must be applied to a bracketed argument")))
        node = self.expr()
        self.take(_OPEN[opener])
        return node

    def _braced(self) -> Node:
        self.take("{")
        node = self.expr()
        self.take("}")
        return node

    def _symbol(self, token: str) -> Node:
        name = token.lstrip("\\")
        if self.peek() == "_":
            self.take()
            name += "_" + self._group_text().replace("\\", "")
        return ("sym", name)


# ----------------------------------------------------------------------------- evaluation

_ALIASES = {
    "X": "X", "x": "X", "Y": "Y", "y": "Y",
    "W_1": "W1", "W1": "W1", "w_1": "W1", "W_2": "W2", "W2": "W2", "w_2": "W2",
    "b_1": "b1", "b1": "b1", "b_2": "b2", "b2": "b2",
    "h": "h", "z": "h", "z_1": "h", "h_sigmoid": "hs", "H": "hs", "A": "hs", "a": "hs",
    "h_sig": "hs", "a_1": "hs", "h_s": "hs",
    "Y_pred": "Yp", "Y_p": "Yp", "y_pred": "Yp", "Y_hat": "Yp", "O": "Yp",
}


def environment(X: np.ndarray, Y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray,
                b2: np.ndarray) -> dict[str, np.ndarray]:
    h = X @ W1 + b1
    hs = 1 / (1 + np.exp(-h))
    return {"X": X, "Y": Y, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "h": h, "hs": hs,
            "Yp": hs @ W2 + b2}


def evaluate(node: Node, env: dict[str, np.ndarray], defined: dict[str, Node],
             n: int, depth: int = 0) -> np.ndarray:
    if depth > 50:
        raise Unreadable(say(N_("a definition refers to itself")))

    def ev(child: Node) -> np.ndarray:
        return evaluate(child, env, defined, n, depth + 1)

    kind = node[0]
    if kind == "num":
        return np.asarray(node[1])
    if kind == "ones":
        return np.ones((n, 1))
    if kind == "sym":
        name = node[1]
        if name in defined:
            return ev(defined[name])
        if name in ("n", "N", "m"):
            return np.asarray(float(n))  # the batch size
        key = _ALIASES.get(name) or _ALIASES.get(name.replace("_{", "_").rstrip("}"))
        if key is None:
            raise Unreadable(say(N_("unknown symbol {name}"), name=name))
        return env[key]
    ops: dict[str, Callable[..., np.ndarray]] = {
        "add": np.add, "sub": np.subtract, "div": _divide, "hadamard": _hadamard,
        "product": _product, "neg": np.negative, "transpose": _transpose,
        "square": np.square, "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
        "dsigmoid": lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s),
        "sum": lambda a: np.atleast_2d(a).sum(axis=0, keepdims=True),
    }
    try:
        return ops[kind](*[ev(child) for child in node[1:]])
    except Unreadable:
        raise
    except ValueError as exc:
        raise Unreadable(say(N_("the shapes do not fit ({error})"), error=str(exc))) from None


def _transpose(a: np.ndarray) -> np.ndarray:
    return np.atleast_2d(a).T if a.ndim < 2 else a.T


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    left, right = np.atleast_2d(a), b if b.ndim == 2 else b.reshape(1, -1)
    if left.shape[-1] == right.shape[0]:
        return left @ right
    return _hadamard(a, b)


def _hadamard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * b


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if b.ndim != 0:
        raise Unreadable(say(N_("division by a matrix")))
    return a / b


def _expected(expected: str | None, token: str | None) -> str:
    """What the parser wanted and what it found instead, in words."""
    if token is None:
        return say(N_("expected {expected}, found the end"), expected=expected) \
            if expected is not None else say(N_("expected more, found the end"))
    return say(N_("expected {expected}, found {found}"), expected=expected, found=token)


def parse(latex: str, known: frozenset[str] = frozenset()) -> Node:
    return Parser(tokenize(latex), known).parse()


# ----------------------------------------------------------------------------- judging


_RANK = {"right": 0, "wrong": 1, "unreadable": 2}
SHAPES = ((5, 3), (7, 4), (6, 2))  # (n, hidden): n != hidden keeps products unambiguous


def markdown_cells(run: Any) -> list[str]:
    """The text of the run's markdown cells, in order (none when there is no notebook)."""
    cells = nbformat.reads(run.notebook, as_version=4).cells if run.notebook else []
    return [cell.source for cell in cells if cell.cell_type == "markdown"]


def read_markdown(markdown: list[str], rng: np.random.Generator) -> list[Reading]:
    """Every expression found in these markdown cells, in order, each with its verdict; a
    definition (`\\delta_2 = ...`) that later lines use has the verdict "definition"."""
    from grader.judge import gradients  # the judge's own comparison and diagnoses

    expressions = find(markdown)
    definitions: dict[str, Node] = {}
    known = frozenset(e.target for e in expressions if e.target not in NAMES)
    readings = []
    for expression in expressions:
        try:
            tree = parse(expression.latex, known)
        except Unreadable as exc:
            readings.append(Reading(expression.target, expression.latex, "unreadable",
                                    reason=exc.reason))
            continue
        if expression.target not in NAMES:
            definitions.setdefault(expression.target, tree)
            readings.append(Reading(expression.target, expression.latex, "definition"))
            continue
        readings.append(_check(expression, tree, definitions, rng, gradients))
    return readings


def best(readings: list[Reading]) -> dict[str, Reading]:
    """The best reading of each parameter's derivative: right over wrong over unreadable."""
    chosen: dict[str, Reading] = {}
    for reading in readings:
        if reading.target in NAMES and (
                reading.target not in chosen
                or _RANK[reading.verdict] < _RANK[chosen[reading.target].verdict]):
            chosen[reading.target] = reading
    return chosen


def judge_markdown(markdown: list[str], rng: np.random.Generator) -> dict[str, Reading]:
    """The best reading of each parameter's derivative found in these markdown cells."""
    return best(read_markdown(markdown, rng))


def evidence(readings: list[Reading]) -> list[dict[str, Any]]:
    """The rows the report draws for `evidence["derivations"]`: each expression as written,
    with its verdict and feedback (and the feedback's structure, to say it in Chinese)."""
    rows = []
    for r in readings:
        feedback = describe(r)
        rows.append({"target": r.target, "latex": r.latex, "verdict": r.verdict,
                     "feedback": feedback, "said": feedback.to_json()})
    return rows


def _check(expression: Expression, tree: Node, definitions: dict[str, Node],
           rng: np.random.Generator, gradients: Any) -> Reading:
    """Right when the value is right on every shape tried, also when it is laid out in one of
    the accepted layouts (noted in the reading); else the first mistake met."""
    import torch

    index = NAMES.index(expression.target)
    layouts = set()
    for n, hidden in SHAPES:
        problem = gradients.random_problem(rng, n, hidden)
        try:
            value = evaluate(tree, environment(*problem), definitions, n)
        except Unreadable as exc:
            return Reading(expression.target, expression.latex, "unreadable",
                           reason=exc.reason)
        verdict = gradients.judge_one(expression.target, index, value,
                                      *[torch.from_numpy(a) for a in problem])
        if verdict.correct:
            continue
        if verdict.mistake not in ACCEPTED_LAYOUTS:
            return Reading(expression.target, expression.latex, "wrong", check=verdict)
        layouts.add(verdict.mistake)
    return Reading(expression.target, expression.latex, "right", layouts=frozenset(layouts))
