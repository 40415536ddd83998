"""Gradients a notebook derives in code: found and read here, evaluated in the sandbox.

The course's own W4 notebooks define no `gradients` function: students compute the gradients
as free-standing assignments next to autograd, and compare them with it by eye,

    hs = torch.sigmoid(x.mm(w1) + b1)
    yp = hs.mm(w2) + b2
    w1_grad = -2 * x.t().mm((y - yp).mm(w2.t()).mul(hs).mul(1 - hs))
    print(torch.allclose(w1_grad, w1.grad))

so a judge that only calls `gradients` gives a right derivation nothing. This module reads such
code, never running it in the trusted process:

1. Finding. Every code cell is parsed (`ast`), its statements walked in the order they run
   (loop and `with` bodies included). A gradient is an assignment to a name that says so
   (`w1_grad`, `grad_w1`, `dW1`, `dw1`, `db2`, ...), or any value compared with a parameter's
   `.grad` (`torch.allclose(g, w1.grad)`, `(g - w1.grad).abs()`, `g == w1.grad`). A value
   compared with `.grad` is the student's own choice of answer and wins; otherwise the last
   assignment does. One that reads `.grad`, calls `.backward()` or `torch.autograd` is
   autograd's answer: it earns nothing, and the feedback says so.
2. Reading. The expression's intermediate names (`yp`, `hs`, `delta`, ...) are replaced by what
   they were assigned at that point, and calls of the notebook's small functions (`sigmoid`,
   `forward`) by their bodies, until only the inputs and parameters are left. Which of the
   notebook's names are X, Y, W1, b1, W2 and b2 is read from its forward pass (`sigmoid(x @ w1
   + b1)`, then `... @ w2 + b2`, then `yp - y`), and only where that says nothing from the
   names themselves. A hidden activation or prediction the notebook never assigns (`hs` set
   inside a function) is bound to the judge's own.
3. Evaluating. The expression, rewritten in the judge's names, goes to the sandbox
   (protocol.EVALUATE): it is evaluated in a namespace holding numpy, torch and the judge's
   arrays only, never the notebook's variables, so a stale value cannot answer. Arrays are
   float64 tensors when the expression uses torch, numpy arrays when it uses numpy.
4. Judging. The values are judged here as `gradients`' are (gradients.judge_one, the same
   diagnoses), on fresh inputs of the notebook's own sizes and of another, under the
   notebook's bias convention and the others (shared or per sample), the best kept.

The verdicts are `Reading`s, like those of derivations written in markdown, and are put in
words by mistakes.py alone.
"""

from __future__ import annotations

import ast
import bisect
import copy
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nbformat
import numpy as np
import torch

from grader.i18n import N_, Words, say
from grader.judge.gradients import first_wrong, judge_one, random_problem
from grader.judge.mistakes import NAMES, Reading, Verdict, summarize, summarize_readings
from grader.sandbox import ProbeError, protocol
from reference import twolayer

__all__ = ["Found", "CodeGradients", "CodeVerdicts", "code_cells", "find", "check",
           "summarize_code", "ROLES"]

#: The judge's names for the notebook's arrays, in the order `gradients` takes them, and for
#: a hidden activation and a prediction the notebook uses without assigning them.
ROLES = ("X", "Y", "W1", "b1", "W2", "b2")
HIDDEN, PREDICTION = "H", "P"
#: The parameter each gradient is of.
PARAMETER = dict(zip(NAMES, ("W1", "b1", "W2", "b2"), strict=True))
GRADIENT = {parameter: name for name, parameter in PARAMETER.items()}

#: A name that says it holds a gradient: `w1_grad`, `grad_w1`, `dW1`, `dL_dW1`, `db2`, ...
_PARAM = r"(w|weights?|b|bias(?:es)?)_?([0-9])"
_GRADIENT_NAME = re.compile(
    rf"(?:[a-z]+_)?(?:(?:d|grad|gradient|g|delta|partial|nabla|d[lfej]_?d|dloss_?d)_?{_PARAM}"
    rf"|{_PARAM}_?(?:grad|gradient|g|d|derivative|prime|diff))(?:_[a-z0-9]+)?", re.I)
_PARAMETER_NAME = re.compile(rf"{_PARAM}", re.I)
#: Names that say which array they are, used only where the forward pass says nothing.
_BY_NAME = {
    "X": re.compile(r"x|xs|x_?(?:data|train|tensor|t|in)|inputs?|data", re.I),
    "Y": re.compile(r"y|ys|y_?(?:data|train|true|tensor|t)|targets?|labels?", re.I),
    "W1": re.compile(r"(?:w|weights?)_?1", re.I), "b1": re.compile(r"(?:b|bias(?:es)?)_?1", re.I),
    "W2": re.compile(r"(?:w|weights?)_?2", re.I), "b2": re.compile(r"(?:b|bias(?:es)?)_?2", re.I),
}
#: Names of a hidden activation or a prediction, bound to the judge's own only when the
#: notebook never assigns them where the grader can see.
_UNASSIGNED = {
    HIDDEN: re.compile(r"h|hs|h_?sig(?:moid)?|sig_?h|h_?act|hidden|a_?1|h_?1|hidden_?out", re.I),
    PREDICTION: re.compile(r"y_?pred|yp|y_?hat|pred|y_?out|output|out", re.I),
}
#: Calls that make a fresh array: a name first assigned one is data or a parameter, not an
#: intermediate to fill in when the forward pass is read.
_MAKERS = frozenset({
    "randn", "rand", "randint", "normal", "uniform", "random", "standard_normal", "zeros",
    "ones", "empty", "full", "eye", "linspace", "arange", "tensor", "Tensor", "FloatTensor",
    "DoubleTensor", "as_tensor", "from_numpy", "array", "asarray", "Variable", "Parameter",
    "zeros_like", "ones_like", "randn_like", "rand_like", "normal_", "uniform_", "load"})
#: What reads autograd's answer: an expression using one of these is not a derivation.
_AUTOGRAD = frozenset({"grad", "backward", "requires_grad", "requires_grad_", "grad_fn",
                       "autograd"})
#: Calls and methods that compare two arrays (or print them side by side).
_COMPARE = frozenset({"allclose", "isclose", "equal", "array_equal", "assert_allclose",
                      "assert_close", "assert_equal", "assert_almost_equal",
                      "assert_array_almost_equal", "eq", "sub", "subtract", "dist", "print"})
#: Methods that keep an array's values: stripped to see which parameter's `.grad` is meant.
_SAME_VALUES = frozenset({"data", "detach", "numpy", "cpu", "clone", "double", "float",
                          "squeeze", "flatten", "view", "reshape", "view_as", "reshape_as"})
#: The modules an expression may reach in the sandbox, by the names the notebook gave them.
_MODULES = {"torch": "torch", "numpy": "numpy", "np": "numpy", "math": "math"}
_ROOTS = frozenset({"torch", "numpy", "math"})
#: Builtins an expression may name (kernel_probe.EXPRESSION_BUILTINS allows the same).
_BUILTINS = frozenset({"abs", "bool", "float", "int", "len", "list", "max", "min", "pow",
                       "range", "round", "slice", "sum", "tuple", "zip", "True", "False",
                       "None"})
#: Attributes that would reach past the arrays an expression is given (the kernel's modules,
#: the notebook's namespace): an expression using one, or any `_name`, is not evaluated.
_OUTSIDE = frozenset({"sys", "modules", "builtins", "os", "importlib", "import_module",
                      "inspect", "gc", "globals", "locals", "vars", "getattr", "eval", "exec",
                      "compile", "f_globals", "f_locals", "f_back", "subprocess", "pickle",
                      "load", "save", "hub"})
#: The most statements read of one notebook (a W4 notebook has a few hundred), and the
#: most assigned values searched for its forward pass.
_STATEMENTS = 20000
_VALUES = 1000
#: How far names are filled in: nested calls, and the nodes of the expression that results.
_DEPTH = 60
_NODES = 4000
#: The problems a notebook's gradients are judged on: its own sizes first, then this one.
OTHER_SIZE = (5, 3)
DEFAULT_SIZE = (7, 10)
EVALUATE_SECONDS = 30


@dataclass(frozen=True)
class Found:
    """One gradient the notebook computes in code, as read (never run here)."""

    gradient: str            # dW1, db1, dW2, db2
    target: str              # the notebook's name for it ("w1_grad"); "" for an inline value
    source: str              # the statement as written, on one line
    expression: str = ""     # filled in, in the judge's names (X, W1, ...); "" if it could not
    kind: str = "torch"      # what its arrays should be: "torch" or "numpy"
    autograd: bool = False   # it reads autograd's answer
    problem: str = ""        # why it cannot be evaluated, in words; "" when it can
    compared: bool = False   # the notebook compares it with the parameter's `.grad`

    @property
    def judged(self) -> bool:
        """Whether the sandbox is asked for its value."""
        return not self.autograd and not self.problem and bool(self.expression)


@dataclass(frozen=True)
class CodeGradients:
    """What the notebook's code says about its gradients: the one judged for each gradient,
    and which of the notebook's names are the judge's X, Y, W1, b1, W2, b2."""

    found: dict[str, Found] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.found)

    def own(self, role: str) -> list[str]:
        """The notebook's names for one of the judge's (several when it aliases one)."""
        return [name for name, mapped in self.names.items() if mapped == role]


@dataclass(frozen=True)
class CodeVerdicts:
    """The readings of each gradient found, and the bias convention they were judged in."""

    readings: dict[str, Reading]
    bias: str | None


# ----------------------------------------------------------------------------- the cells

def code_cells(run: Any) -> list[str]:
    """The text of the run's code cells, in order (none when there is no notebook)."""
    cells = nbformat.reads(run.notebook, as_version=4).cells if run.notebook else []
    return [str(cell.source) for cell in cells if cell.cell_type == "code"]


def _parse(source: str) -> tuple[ast.Module, str] | None:
    """A cell as Python, and the text parsed: its IPython lines (`%matplotlib`, `!pip`) made
    `pass`, a cell that starts indented dedented as Jupyter does; None when it is not
    Python."""
    lines = source.split("\n")
    first = lines[0] if lines else ""
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    if indent:
        lines = [line[len(indent):] if line.startswith(indent) else line for line in lines]
    if lines and lines[0].startswith("%%"):
        lines[0] = "pass"
    for magic in (("%", "!"), ("%", "!", "?")):  # `name?` only if the cell needs it
        kept = []
        for line in lines:
            stripped = line.lstrip()
            if stripped.startswith(magic) or ("?" in magic and stripped.endswith("?")):
                line = line[: len(line) - len(stripped)] + "pass"
            kept.append(line)
        text = "\n".join(kept)
        try:
            return ast.parse(text), text
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


# ----------------------------------------------------------------------------- bindings

class _History:
    """Every binding of every name, in the order the notebook makes them: the names in force
    at any point are read from it (`_Env`) without a copy per assignment, so a notebook of
    thousands of assignments costs the judge memory in proportion, not squared."""

    def __init__(self) -> None:
        self.entries: dict[str, list[tuple[int, Any]]] = {}
        self.time = 0

    def bind(self, name: str, entry: Any) -> None:
        self.time += 1
        self.entries.setdefault(name, []).append((self.time, entry))

    def now(self) -> _Env:
        return _Env(self, self.time)


@dataclass(frozen=True)
class _Env:
    """The names in force at one point of the notebook."""

    history: _History
    time: int

    def get(self, name: str) -> Any:
        found = self.history.entries.get(name)
        if not found:
            return None
        index = bisect.bisect_right(found, self.time, key=lambda entry: entry[0])
        return found[index - 1][1] if index else None


@dataclass(frozen=True)
class _Binding:
    """A name's value as assigned, with the names in force where it was assigned."""

    value: ast.expr
    env: _Env
    source: str = ""


@dataclass(frozen=True)
class _Function:
    node: ast.FunctionDef | ast.Lambda


@dataclass(frozen=True)
class _Module:
    path: str  # torch, numpy, torch.nn.functional, torch.sigmoid, ...


@dataclass(frozen=True)
class _Opaque:
    """A name the grader cannot follow: a loop variable, a class, an unpacked call."""


@dataclass
class _Candidate:
    """A value that may be a gradient: assigned to a gradient's name, or compared with a
    parameter's `.grad`."""

    key: str                 # its parameter: as named in the target ("w1"), or compared with
    target: str
    value: ast.expr
    env: _Env
    source: str
    order: int
    compared: bool


class _Unreadable(Exception):
    """A value the grader cannot fill in; its argument is the student's reason (Words)."""

    @property
    def reason(self) -> str:
        return self.args[0] if self.args and isinstance(self.args[0], str) else str(self)


#: Why a gradient found in code is not evaluated, in words.
_NESTS = N_("it nests too deeply once its names are filled in")
_GROWS = N_("it grows too long once its names are filled in")


def _statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a block in the order they run, compound ones opened (a loop body
    once); a `for` or `with` statement itself comes first, for the names it binds."""
    for statement in body:
        if isinstance(statement, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            yield statement
            yield from _statements(statement.body)
            yield from _statements(getattr(statement, "orelse", []))
        elif isinstance(statement, ast.While | ast.If):
            yield statement
            yield from _statements(statement.body)
            yield from _statements(statement.orelse)
        elif isinstance(statement, ast.Try):
            yield from _statements(statement.body)
            for handler in statement.handlers:
                yield from _statements(handler.body)
            yield from _statements(statement.orelse)
            yield from _statements(statement.finalbody)
        else:
            yield statement


def _names(node: ast.AST) -> Iterator[str]:
    """Every name a target binds."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id


def _dotted(node: ast.expr) -> str:
    """`torch.nn.functional.sigmoid` for that attribute chain on a name; "" otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def _chain(path: str) -> ast.expr:
    """The attribute chain for a dotted path."""
    parts = path.split(".")
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        node = ast.Attribute(node, part, ast.Load())
    return node


def _called(node: ast.AST) -> Iterator[str]:
    """The name or method of every call in a tree."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if isinstance(sub.func, ast.Name):
                yield sub.func.id
            elif isinstance(sub.func, ast.Attribute):
                yield sub.func.attr


def _uses_autograd(node: ast.AST) -> bool:
    return any(isinstance(sub, ast.Attribute) and sub.attr in _AUTOGRAD
               for sub in ast.walk(node))


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ----------------------------------------------------------------------------- reading

class _Reader:
    """Walks a notebook's statements once, keeping every name's binding as it stands at
    each point, and notes gradient candidates, `.grad` comparisons and parameters."""

    def __init__(self) -> None:
        self.history = _History()
        for name, path in _MODULES.items():
            self.history.bind(name, _Module(path))
        self.candidates: list[_Candidate] = []
        self.values: list[tuple[ast.expr, _Env]] = []   # every assigned value, for roles
        self.parameters: set[str] = set()              # names whose `.grad` is read
        self.first: dict[str, ast.expr] = {}          # each name's first assigned value
        self.uses_torch = False
        self.order = 0

    @property
    def env(self) -> _Env:
        """The names in force at this point of the walk."""
        return self.history.now()

    def read(self, cells: Sequence[str]) -> None:
        for cell in cells:
            parsed = _parse(cell)
            if parsed is None:
                continue
            tree, text = parsed
            lines = text.splitlines(keepends=True)
            for statement in _statements(tree.body):
                if self.order >= _STATEMENTS:
                    return
                self.statement(statement, lines)

    def statement(self, statement: ast.stmt, cell: list[str]) -> None:
        self.order += 1
        source = _one_line(_segment(cell, statement))
        if isinstance(statement, ast.Import | ast.ImportFrom):
            self.imports(statement)
            return
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            if isinstance(statement, ast.FunctionDef):
                self.bind(statement.name, _Function(statement))
            else:
                self.bind(statement.name, _Opaque())
            return
        if isinstance(statement, ast.ClassDef):
            self.bind(statement.name, _Opaque())
            return
        for part in _header(statement):
            self.comparisons(part, cell)
            self.note_parameters(part, statement)
        if isinstance(statement, ast.For | ast.AsyncFor):
            for name in _names(statement.target):
                self.bind(name, _Opaque())
        elif isinstance(statement, ast.With | ast.AsyncWith):
            for item in statement.items:
                if item.optional_vars is not None:
                    for name in _names(item.optional_vars):
                        self.bind(name, _Opaque())
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                self.assign(target, statement.value, source)
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            self.assign(statement.target, statement.value, source)
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            value = ast.BinOp(ast.Name(name, ast.Load()), statement.op, statement.value)
            self.assign(statement.target, value, source)

    def imports(self, statement: ast.Import | ast.ImportFrom) -> None:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    self.bind(alias.asname, _Module(alias.name))
                else:
                    root = alias.name.split(".")[0]
                    self.bind(root, _Module(root))
                self.uses_torch |= alias.name.split(".")[0] == "torch"
        elif statement.module and not statement.level:
            for alias in statement.names:
                if alias.name != "*":
                    self.bind(alias.asname or alias.name,
                              _Module(f"{statement.module}.{alias.name}"))
            self.uses_torch |= statement.module.split(".")[0] == "torch"

    def bind(self, name: str, entry: Any) -> None:
        self.history.bind(name, entry)

    def assign(self, target: ast.expr, value: ast.expr, source: str) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            if any(isinstance(t, ast.Starred) for t in target.elts):
                for name in _names(target):
                    self.bind(name, _Opaque())
                return
            for index, element in enumerate(target.elts):
                if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(
                        target.elts):
                    part = value.elts[index]
                else:  # `hs, yp = forward(x)`: filled in when the call is
                    part = ast.Subscript(value, ast.Constant(index), ast.Load())
                self.assign(element, part, source)
            return
        if not isinstance(target, ast.Name):
            return
        name = target.id
        binding = _Binding(value, self.env, source)
        if isinstance(value, ast.Lambda):
            self.bind(name, _Function(value))
            return
        if self.makes_object(value):
            self.bind(name, _Opaque())
            return
        self.values.append((value, self.env))
        self.first.setdefault(name, value)
        self.bind(name, binding)
        found = _GRADIENT_NAME.fullmatch(name)
        if found:
            self.candidates.append(_Candidate(
                _parameter_key(name), name, ast.Name(name, ast.Load()), self.env,
                source, self.order, False))

    def makes_object(self, value: ast.expr) -> bool:
        """Whether a value is a model, a layer or an optimizer (`nn.Sequential(...)`, a
        class of the notebook's): its own weights are nothing the judge can choose, so a
        gradient computed through it cannot be judged on the judge's inputs."""
        if not isinstance(value, ast.Call):
            return False
        dotted = _dotted(value.func)
        if not dotted:
            return False
        head, *rest = dotted.split(".")
        entry = self.env.get(head)
        if isinstance(entry, _Opaque) and not rest:
            return True  # a class of the notebook's
        path = ".".join([entry.path, *rest]) if isinstance(entry, _Module) else dotted
        last = path.split(".")[-1]
        return path.startswith("torch.") and last[:1].isupper() and last != "Parameter" \
            and path.split(".")[1] in ("nn", "optim")

    def note_parameters(self, part: ast.AST, statement: ast.stmt) -> None:
        """Names whose `.grad` is read, or that are made to require it, are parameters."""
        for node in ast.walk(part):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.attr in ("grad", "requires_grad", "requires_grad_"):
                self.parameters.add(node.value.id)
        if isinstance(statement, ast.Assign) and part is statement.value and any(
                isinstance(k, ast.keyword) and k.arg == "requires_grad"
                for k in ast.walk(part)):
            for target in statement.targets:
                self.parameters.update(_names(target))

    def comparisons(self, part: ast.AST, cell: list[str]) -> None:
        """Values compared with a parameter's `.grad`, anywhere in this part of a
        statement."""
        for node in ast.walk(part):
            for a, b in _pairs(node):
                for mine, theirs in ((a, b), (b, a)):
                    parameter = _grad_of(theirs)
                    if parameter is None or _grad_of(mine) is not None:
                        continue
                    if isinstance(mine, ast.Constant):
                        continue
                    shown = _segment(cell, mine)
                    target = mine.id if isinstance(mine, ast.Name) else ""
                    if isinstance(mine, ast.Name):
                        entry = self.env.get(mine.id)
                        shown = entry.source if isinstance(entry, _Binding) else mine.id
                    self.candidates.append(_Candidate(
                        parameter, target, mine, self.env,
                        _one_line(shown or ast.unparse(mine)), self.order, True))


def _segment(lines: list[str], node: ast.AST) -> str:
    """The text of a node, from its cell's lines (ast.get_source_segment, without splitting
    the cell again for every statement)."""
    start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    first, last = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
    if start is None or end is None or first is None or last is None or end > len(lines):
        return ""
    if start == end:
        return lines[start - 1].encode()[first:last].decode(errors="replace")
    head = lines[start - 1].encode()[first:].decode(errors="replace")
    tail = lines[end - 1].encode()[:last].decode(errors="replace")
    return "".join([head, *lines[start:end - 1], tail])


def _header(statement: ast.stmt) -> list[ast.AST]:
    """The parts of a statement that run when it is reached: a compound statement's header
    only (its body's statements come one by one after it)."""
    if isinstance(statement, ast.For | ast.AsyncFor):
        return [statement.iter]
    if isinstance(statement, ast.While | ast.If):
        return [statement.test]
    if isinstance(statement, ast.With | ast.AsyncWith):
        return [item.context_expr for item in statement.items]
    if isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
        return [statement.value] if statement.value is not None else []
    return [statement]


def _parameter_key(name: str) -> str:
    """The parameter a gradient's name is of, as letter and digit ("w1", "b2")."""
    found = _PARAMETER_NAME.findall(name)
    letter, digit = found[-1]
    return f"{letter[0].lower()}{digit}"


def _normal(name: str) -> str:
    """A parameter's name as letter and digit when it has that form ("W_1" -> "w1")."""
    found = _PARAMETER_NAME.fullmatch(name)
    return f"{found.group(1)[0].lower()}{found.group(2)}" if found else name.lower()


def _pairs(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
    """The two sides of a comparison, a difference, or a comparing call."""
    if isinstance(node, ast.Compare) and len(node.comparators) == 1:
        yield node.left, node.comparators[0]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        yield node.left, node.right
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else "")
        if name not in _COMPARE:
            return
        args = [a for a in node.args if not isinstance(a, ast.Constant | ast.JoinedStr)]
        if len(args) == 2:
            yield args[0], args[1]
        elif len(args) == 1 and isinstance(func, ast.Attribute) and name != "print" \
                and not _dotted(func.value).startswith(tuple(_ROOTS)):
            yield func.value, args[0]


def _grad_of(node: ast.expr) -> str | None:
    """The parameter whose `.grad` this is (`w1.grad`, `w1.grad.data.numpy()`), or None."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _SAME_VALUES:
            node = node.func.value
        elif isinstance(node, ast.Attribute) and node.attr == "data":
            node = node.value
        else:
            break
    if isinstance(node, ast.Attribute) and node.attr == "grad" and isinstance(
            node.value, ast.Name):
        return node.value.id
    return None


# ----------------------------------------------------------------------------- filling in

class _Filler:
    """Fills a value's names in with what they were assigned, down to the names `stops` maps
    (the roles), rewriting the notebook's module names to torch, numpy and math. Strict: a
    name that cannot be followed is noted in `unknown` (and kept); lenient: simply kept."""

    def __init__(self, stops: Mapping[str, str], strict: bool,
                 stop_also: Any = None) -> None:
        self.stops = stops
        self.strict = strict
        self.stop_also = stop_also  # (name, entry) -> bool: also kept as it is
        self.unknown: list[str] = []
        self.nodes = 0

    def fill(self, node: ast.expr, env: _Env, local: Mapping[str, ast.expr] | None = None,
             depth: int = 0) -> ast.expr:
        if depth > _DEPTH:
            raise _Unreadable(say(_NESTS))
        self.nodes += 1
        if self.nodes > _NODES:
            raise _Unreadable(say(_GROWS))
        if isinstance(node, ast.Name):
            return self.name(node.id, env, local, depth)
        if isinstance(node, ast.Call):
            called = self.function(node.func, env, local)
            if called is not None:
                return self.call(called, node, env, local, depth)
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp |
                      ast.GeneratorExp | ast.NamedExpr | ast.Await | ast.Yield |
                      ast.YieldFrom):
            raise _Unreadable(say(N_("it uses a lambda, a comprehension or `:=`, which the "
                                     "grader does not follow")))
        copied = self.children(node, env, local, depth)
        if isinstance(copied, ast.Subscript) and isinstance(copied.value, ast.Tuple | ast.List) \
                and isinstance(copied.slice, ast.Constant) and isinstance(copied.slice.value, int) \
                and -len(copied.value.elts) <= copied.slice.value < len(copied.value.elts):
            return copied.value.elts[copied.slice.value]
        return copied

    def children(self, node: ast.AST, env: _Env, local: Mapping[str, ast.expr] | None,
                 depth: int) -> Any:
        made = copy.copy(node)
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.expr):
                setattr(made, name, self.fill(value, env, local, depth))
            elif isinstance(value, list):
                setattr(made, name, [
                    self.fill(v, env, local, depth) if isinstance(v, ast.expr) else
                    self.children(v, env, local, depth) if isinstance(v, ast.keyword)
                    else v for v in value])
        return made

    def name(self, name: str, env: _Env, local: Mapping[str, ast.expr] | None,
             depth: int) -> ast.expr:
        if local is not None and name in local:
            return copy.deepcopy(local[name])
        entry = env.get(name)
        if isinstance(entry, _Module):
            return self.module(entry.path, name)
        if name in self.stops:
            return ast.Name(self.stops[name], ast.Load())
        if self.stop_also is not None and self.stop_also(name, entry):
            return ast.Name(name, ast.Load())
        if isinstance(entry, _Binding):
            filled = self.fill(entry.value, entry.env, None, depth + 1)
            # the names it was reached through, for the roles (`tgt = inp ** 2` is Y)
            filled._tg_names = [name, *getattr(filled, "_tg_names", [])]  # type: ignore[attr-defined]
            return filled
        if entry is None and name in _BUILTINS:
            return ast.Name(name, ast.Load())
        if entry is None and self.strict:
            for role, pattern in _UNASSIGNED.items():
                if pattern.fullmatch(name):
                    return ast.Name(role, ast.Load())
        if self.strict and name not in self.unknown:
            self.unknown.append(name)
        return ast.Name(name, ast.Load())

    def module(self, path: str, name: str) -> ast.expr:
        root = path.split(".")[0]
        root = _MODULES.get(root, root)
        if root not in _ROOTS:
            if self.strict and name not in self.unknown:
                self.unknown.append(name)
            return ast.Name(name, ast.Load())
        return _chain(".".join([root, *path.split(".")[1:]]))

    def function(self, func: ast.expr, env: _Env,
                 local: Mapping[str, ast.expr] | None) -> ast.FunctionDef | ast.Lambda | None:
        if not isinstance(func, ast.Name) or (local is not None and func.id in local):
            return None
        entry = env.get(func.id)
        return entry.node if isinstance(entry, _Function) else None

    def call(self, function: ast.FunctionDef | ast.Lambda, node: ast.Call, env: _Env,
             local: Mapping[str, ast.expr] | None, depth: int) -> ast.expr:
        """The value of a call of the notebook's own function: its body, with the call's
        arguments for its parameters, if it is assignments (and `if`s on constants) ending
        in a return."""
        arguments = function.args
        label = getattr(function, "name", "a lambda")
        if arguments.vararg or arguments.kwarg or arguments.kwonlyargs or any(
                isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            raise _Unreadable(say(N_("it calls `{function}` with arguments the grader does not "
                                     "follow"), function=label))
        params = [a.arg for a in [*arguments.posonlyargs, *arguments.args]]
        if len(node.args) > len(params):
            raise _Unreadable(say(N_("it calls `{function}` with too many arguments"),
                                  function=label))
        bound: dict[str, ast.expr] = {}
        for param, given in zip(params, node.args, strict=False):
            bound[param] = self.fill(given, env, local, depth + 1)
        for keyword in node.keywords:
            if keyword.arg not in params:
                raise _Unreadable(say(N_("it calls `{function}` with an argument it does not "
                                         "take"), function=label))
            bound[keyword.arg] = self.fill(keyword.value, env, local, depth + 1)
        defaults = dict(zip(params[len(params) - len(arguments.defaults):], arguments.defaults,
                            strict=True))
        for param in params:
            if param not in bound:
                if param not in defaults:
                    raise _Unreadable(say(N_("it calls `{function}` without all its arguments"),
                                          function=label))
                bound[param] = self.fill(defaults[param], env, None, depth + 1)
        if isinstance(function, ast.Lambda):
            return self.fill(function.body, env, bound, depth + 1)
        body = list(function.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        found = self.block(body, env, bound, depth + 1)
        if found is None:
            raise _Unreadable(say(N_("it calls `{function}`, whose body the grader cannot "
                                     "follow (only assignments and a return)"), function=label))
        return found

    def block(self, body: Sequence[ast.stmt], env: _Env, local: dict[str, ast.expr],
              depth: int) -> ast.expr | None:
        """The value a function body returns, or None when it does something else."""
        for statement in body:
            if isinstance(statement, ast.Return):
                return self.fill(statement.value, env, local, depth) if statement.value \
                    else None
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                if not self.local_assign(statement.targets[0], statement.value, env, local,
                                         depth):
                    return None
            elif isinstance(statement, ast.AugAssign) and isinstance(statement.target,
                                                                     ast.Name):
                value = ast.BinOp(ast.Name(statement.target.id, ast.Load()), statement.op,
                                  statement.value)
                local[statement.target.id] = self.fill(value, env, local, depth)
            elif isinstance(statement, ast.If):
                test = _constant(self.fill(statement.test, env, local, depth))
                if test is None:
                    return None
                found = self.block(statement.body if test else statement.orelse, env, local,
                                   depth)
                if found is not None:
                    return found
            elif isinstance(statement, ast.Expr | ast.Pass | ast.Global):
                continue  # a print, a docstring, `pass`
            else:
                return None
        return None

    def local_assign(self, target: ast.expr, value: ast.expr, env: _Env,
                     local: dict[str, ast.expr], depth: int) -> bool:
        if isinstance(target, ast.Name):
            local[target.id] = self.fill(value, env, local, depth)
            return True
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(
                target.elts) == len(value.elts):
            filled = [self.fill(v, env, local, depth) for v in value.elts]
            for element, made in zip(target.elts, filled, strict=True):
                if not isinstance(element, ast.Name):
                    return False
                local[element.id] = made
            return True
        return False


def _constant(node: ast.expr) -> bool | None:
    """The truth of a test made of constants (`deriv`, `deriv == True`, `not deriv`)."""
    if isinstance(node, ast.Constant):
        return bool(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _constant(node.operand)
        return None if inner is None else not inner
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(
            node.left, ast.Constant) and isinstance(node.comparators[0], ast.Constant):
        a, b = node.left.value, node.comparators[0].value
        compare = {ast.Eq: a == b, ast.NotEq: a != b, ast.Is: a is b, ast.IsNot: a is not b}
        return compare.get(type(node.ops[0]))
    return None


# ----------------------------------------------------------------------------- the forward pass

def _call_name(node: ast.expr) -> tuple[str, ast.Call | None]:
    """A call's dotted function ("torch.mm") or its method (".mm"), and the call."""
    if not isinstance(node, ast.Call):
        return "", None
    dotted = _dotted(node.func)
    if dotted.split(".")[0] in _ROOTS:
        return dotted, node
    if isinstance(node.func, ast.Attribute):
        return "." + node.func.attr, node
    return dotted, node


def _binary(node: ast.expr, op: type[ast.operator], functions: tuple[str, ...],
            methods: tuple[str, ...]) -> tuple[ast.expr, ast.expr] | None:
    """The two operands of `a <op> b`, of `f(a, b)` for one of `functions`, or of `a.m(b)` for
    one of `methods`; None for anything else."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, op):
        return node.left, node.right
    name, call = _call_name(node)
    if call is None:
        return None
    if name in functions and len(call.args) == 2:
        return call.args[0], call.args[1]
    if name in methods and len(call.args) == 1:
        assert isinstance(call.func, ast.Attribute)
        return call.func.value, call.args[0]
    return None


def _matmul(node: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    return _binary(node, ast.MatMult, ("torch.mm", "torch.matmul", "numpy.dot", "numpy.matmul"),
                   (".mm", ".matmul", ".dot"))


def _add(node: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    return _binary(node, ast.Add, ("torch.add", "numpy.add"), (".add",))


def _affine(node: ast.expr) -> tuple[ast.expr, ast.expr, ast.expr] | None:
    """(A, B, C) of `A @ B + C` in its spellings (`A.mm(B) + C`, `np.dot(A, B) + C`, ...)."""
    name, call = _call_name(node)
    if call is not None and name == "torch.addmm" and len(call.args) == 3:
        return call.args[1], call.args[2], call.args[0]
    added = _add(node)
    if added is None:
        return None
    left, right = added
    product = _matmul(left)
    if product is not None:
        return product[0], product[1], right
    product = _matmul(right)
    if product is not None:
        return product[0], product[1], left
    return None


def _sigmoid(node: ast.expr) -> ast.expr | None:
    """The argument of a sigmoid in its spellings (`torch.sigmoid(h)`, `h.sigmoid()`,
    `1 / (1 + torch.exp(-h))`), or None."""
    name, call = _call_name(node)
    if call is not None:
        if name in ("torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit") \
                and len(call.args) == 1:
            return call.args[0]
        if name in (".sigmoid", ".sigmoid_") and not call.args:
            assert isinstance(call.func, ast.Attribute)
            return call.func.value
        if name == "torch.reciprocal" and len(call.args) == 1:
            return _one_plus_exp(call.args[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _is_one(node.left):
        return _one_plus_exp(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and _is_minus_one(
            node.right):
        return _one_plus_exp(node.left)
    return None


def _is_one(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == 1


def _is_minus_one(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and node.value == -1) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_one(
            node.operand))


def _one_plus_exp(node: ast.expr) -> ast.expr | None:
    added = _add(node)
    if added is None:
        return None
    for one, other in (added, added[::-1]):
        if not _is_one(one):
            continue
        name, call = _call_name(other)
        if call is None:
            return None
        if name in ("torch.exp", "numpy.exp", "math.exp") and len(call.args) == 1:
            power = call.args[0]
        elif name == ".exp" and not call.args:
            assert isinstance(call.func, ast.Attribute)
            power = call.func.value
        else:
            return None
        if isinstance(power, ast.UnaryOp) and isinstance(power.op, ast.USub):
            return power.operand
        if isinstance(power, ast.BinOp) and isinstance(power.op, ast.Mult) and \
                _is_minus_one(power.left):
            return power.right
        return None
    return None


def _plain(node: ast.expr) -> list[str]:
    """The names a value was reached through, under value-keeping wrappers (`x.double()`,
    `w1.data`): `X` and `x` for `X = x.double()`; none for a value of several names."""
    names: list[str] = []
    while True:
        names += getattr(node, "_tg_names", [])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _SAME_VALUES and not node.args:
            node = node.func.value
        elif isinstance(node, ast.Attribute) and node.attr == "data":
            node = node.value
        else:
            break
    return [*names, node.id] if isinstance(node, ast.Name) else names


class _Roles:
    """The notebook's names for X, Y, W1, b1, W2, b2, from its forward pass."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def set(self, role: str, node: ast.expr) -> None:
        """The first place the forward pass shows a role names it, aliases and all."""
        if role in self.names.values():
            return
        for name in _plain(node):
            self.names.setdefault(name, role)

    def read(self, tree: ast.expr) -> None:
        outputs = []
        for node in ast.walk(tree):
            inner = _sigmoid(node)
            layer = _affine(inner) if inner is not None else None
            if layer is not None:
                self.set("X", layer[0])
                self.set("W1", layer[1])
                self.set("b1", layer[2])
            second = _affine(node)
            if second is not None:
                hidden = _sigmoid(second[0])
                if hidden is not None and _affine(hidden) is not None:
                    self.set("W2", second[1])
                    self.set("b2", second[2])
                    outputs.append(ast.dump(node))
        if not outputs:
            return
        for node in ast.walk(tree):
            for a, b in _sides(node):
                if ast.dump(a) in outputs:
                    self.set("Y", b)


def _sides(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
    """Both orders of the two sides of a difference or a two-argument call (a loss)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        yield node.left, node.right
        yield node.right, node.left
    elif isinstance(node, ast.Call) and len(node.args) == 2:
        yield node.args[0], node.args[1]
        yield node.args[1], node.args[0]


def _is_made(value: ast.expr) -> bool:
    return any(name in _MAKERS for name in _called(value))


# ----------------------------------------------------------------------------- find

def find(cells: Sequence[str]) -> CodeGradients:
    """The gradients the notebook computes in code, one per gradient (see the module's
    docstring): read from the text of its code cells, never run."""
    reader = _Reader()
    reader.read(cells)
    if not reader.candidates:
        return CodeGradients()
    names = _roles(reader)
    chosen: dict[str, Found] = {}
    ranks: dict[str, tuple[bool, bool, bool, int]] = {}
    for candidate in _latest(reader.candidates):
        gradient = _gradient(candidate, names)
        if gradient is None:
            continue
        found = _read(candidate, gradient, names, reader.uses_torch)
        rank = (not found.autograd, candidate.compared, not found.problem, candidate.order)
        if gradient not in ranks or rank > ranks[gradient]:
            chosen[gradient], ranks[gradient] = found, rank
    return CodeGradients({name: chosen[name] for name in NAMES if name in chosen}, names)


def _latest(candidates: list[_Candidate], each: int = 20) -> list[_Candidate]:
    """The last few candidates of each parameter, compared with `.grad` or not: the ones
    that can win, so a notebook assigning `w1_grad` in thousands of cells costs little."""
    kept: dict[tuple[str, bool], list[_Candidate]] = {}
    for candidate in reversed(candidates):
        group = kept.setdefault((candidate.key, candidate.compared), [])
        if len(group) < each:
            group.append(candidate)
    return sorted((c for group in kept.values() for c in group), key=lambda c: c.order)


def _roles(reader: _Reader) -> dict[str, str]:
    """The notebook's names for the judge's X, Y, W1, b1, W2, b2: from the forward pass
    (each assigned value with its intermediate names filled in), then from the names."""
    def data(name: str, entry: Any) -> bool:
        """Kept as it is when the forward pass is read: data and parameters."""
        if name in reader.parameters or entry is None or isinstance(entry, _Opaque):
            return True
        if isinstance(entry, _Binding):
            mentions = {n.id for n in ast.walk(entry.value) if isinstance(n, ast.Name)}
            return name in mentions or _is_made(entry.value)
        return False

    roles = _Roles()
    for value, env in reader.values[:_VALUES]:
        if set(roles.names.values()) >= set(ROLES):
            break
        try:
            roles.read(_Filler({}, strict=False, stop_also=data).fill(value, env))
        except (_Unreadable, RecursionError):
            continue
    names = dict(roles.names)
    seen = set(reader.first) | reader.parameters
    for role, pattern in _BY_NAME.items():
        if role in names.values():
            continue
        for name in sorted(seen):
            if name not in names and pattern.fullmatch(name):
                names[name] = role
    return names


def _gradient(candidate: _Candidate, names: Mapping[str, str]) -> str | None:
    """Which gradient a candidate is: its parameter's role, by the forward pass's names
    where the parameter is one of them, else by the letter and digit of its name."""
    key = candidate.key
    if candidate.compared:
        role = names.get(key)
        if role in GRADIENT:
            return GRADIENT[role]
        key = _normal(key)
    for name, role in names.items():
        if role in GRADIENT and _normal(name) == key:
            return GRADIENT[role]
    default = {"w1": "W1", "b1": "b1", "w2": "W2", "b2": "b2"}.get(key)
    return GRADIENT[default] if default is not None else None


def _read(candidate: _Candidate, gradient: str, names: Mapping[str, str],
          uses_torch: bool) -> Found:
    """A candidate, filled in: its expression in the judge's names, or why not."""
    base = Found(gradient, candidate.target, candidate.source, compared=candidate.compared)
    filler = _Filler(names, strict=True)
    try:
        tree = filler.fill(candidate.value, candidate.env)
    except _Unreadable as why:
        return _replace(base, problem=why.reason)
    except RecursionError:
        return _replace(base, problem=say(_NESTS))
    if _uses_autograd(tree):
        return _replace(base, autograd=True, problem=say(N_(
            "it is autograd's answer (it reads `.grad`), not a derivation")))
    outside = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                      and (node.attr in _OUTSIDE or node.attr.startswith("_"))})
    if outside:
        return _replace(base, problem=say(N_(
            "it reaches past its arrays (`{attribute}`), which the grader does not evaluate"),
            attribute=outside[0]))
    if filler.unknown:
        shown = Words.join([f"`{n}`" for n in filler.unknown[:3]], ", ")
        return _replace(base, problem=say(N_(
            "it uses {names}, which the grader could not trace back to X, Y, W1, b1, W2 and "
            "b2"), names=shown))
    try:
        text = ast.unparse(ast.fix_missing_locations(tree))
    except (RecursionError, ValueError):
        return _replace(base, problem=say(_NESTS))
    if len(text) > protocol.MAX_EXPRESSION_CHARS:
        return _replace(base, problem=say(_GROWS))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    kind = "torch" if "torch" in used or (uses_torch and "numpy" not in used) else "numpy"
    return _replace(base, expression=text, kind=kind)


def _replace(found: Found, **changes: Any) -> Found:
    return dataclasses.replace(found, **changes)


# ----------------------------------------------------------------------------- judging

def check(student: Any, found: CodeGradients, rng: np.random.Generator,
          evidence: dict[str, Any] | None = None) -> CodeVerdicts:
    """Each gradient found, evaluated in the sandbox on fresh problems (the notebook's own
    sizes, then OTHER_SIZE) under its bias convention and the others, and judged here; the
    convention under which most gradients are right is kept (the notebook's own on a tie).
    Its verdicts also go into `evidence["gradient_errors"]`, as `check_gradients`' do."""
    judged = [f for f in found.found.values() if f.judged]
    own_size, own_biases = _own_problem(student, found) if judged else (None, None)
    sizes = [own_size or DEFAULT_SIZE]
    if sizes[0] != OTHER_SIZE:
        sizes.append(OTHER_SIZE)
    order = [own_biases] if own_biases else []
    order += [(b, b) for b in ("row", "per-sample") if (b, b) not in order]
    best: tuple[int, tuple[str, str] | None, dict[str, list[_Judged] | None]] = (-1, None, {})
    for biases in order if judged else []:
        verdicts = {f.gradient: _verdicts(student, f, rng, biases, sizes) for f in judged}
        right = sum(1 for v in verdicts.values()
                    if v and not first_wrong([j.verdict for j in v]))
        if right > best[0]:
            best = (right, biases, verdicts)
        if right == len(judged):
            break
    _, biases, verdicts = best
    bias = None if biases is None else biases[0] if biases[0] == biases[1] else \
        say(N_("{b1} (b1) and {b2} (b2)"), b1=biases[0], b2=biases[1])
    readings = {}
    for name, each in found.found.items():
        judged_on = verdicts.get(name) or []
        readings[name] = _reading(each, [j.verdict for j in judged_on], sizes[0])
        for one in judged_on:
            if evidence is not None:
                evidence.setdefault("gradient_errors", []).append({
                    "batch": one.n, "hidden": one.hidden, "parameter": name,
                    "relative_error": one.verdict.relative_error,
                    "correct": one.verdict.correct})
    if evidence is not None:
        evidence["gradient_code"] = [
            {"gradient": f.gradient, "source": f.source, "verdict": readings[n].verdict}
            for n, f in found.found.items()]
    return CodeVerdicts(readings, bias)


@dataclass(frozen=True)
class _Judged:
    """A verdict, with the size of the problem it was made on."""

    n: int
    hidden: int
    verdict: Verdict


def _own_problem(student: Any, found: CodeGradients) -> tuple[
        tuple[int, int] | None, tuple[str, str] | None]:
    """The notebook's batch size and hidden width, and the conventions of its b1 and b2,
    from the shapes of its own X, W1, b1 and b2 (only their shapes: the values are never
    used)."""
    def shape(role: str) -> tuple[int, ...] | None:
        for name in found.own(role):
            try:
                return tuple(int(d) for d in student.value(name, timeout=20).shape)
            except ProbeError:
                continue
        return None

    x, w1 = shape("X"), shape("W1")
    n = x[0] if x and len(x) in (1, 2) else None
    hidden = w1[-1] if w1 and len(w1) == 2 else None
    b1, b2 = _convention(shape("b1")), _convention(shape("b2"))
    biases = None if b1 is None else (b1, b2 or b1)
    if n is None or not 1 <= n <= 5000:
        return None, biases
    if hidden is None or not 1 <= hidden <= 1000:
        hidden = DEFAULT_SIZE[1]
    return (n, hidden), biases


def _convention(shape: tuple[int, ...] | None) -> str | None:
    """A bias's convention from its shape: (H,) vector, (1, H) row, (n, H) per sample."""
    if shape is not None and len(shape) == 2:
        return "row" if shape[0] == 1 else "per-sample"
    return "vector" if shape is not None and len(shape) == 1 else None


def _problem(rng: np.random.Generator, n: int, hidden: int,
             biases: tuple[str, str]) -> list[np.ndarray]:
    """X, Y, W1, b1, W2, b2 drawn fresh (gradients.random_problem), b2 in its own
    convention where it differs from b1's."""
    problem = random_problem(rng, n, hidden, biases[0])
    if biases[1] != biases[0]:
        problem[5] = random_problem(rng, n, 1, biases[1])[5]
    return problem


def _verdicts(student: Any, found: Found, rng: np.random.Generator, biases: tuple[str, str],
              sizes: Sequence[tuple[int, int]]) -> list[_Judged] | None:
    """One verdict per size the expression could be evaluated at; None when it could not be
    at the first (the notebook's own) size: a size of its own written into the expression
    (`torch.ones(100, 1)`) is the notebook's business, not a wrong derivative."""
    verdicts: list[_Judged] = []
    index = NAMES.index(found.gradient)
    for k, (n, hidden) in enumerate(sizes):
        problem = _problem(rng, n, hidden, biases)
        value = _evaluate(student, found, problem)
        if value is None:
            if k == 0:
                return None
            continue
        tensors = [torch.from_numpy(a) for a in problem]
        verdicts.append(_Judged(n, hidden, judge_one(found.gradient, index, value, *tensors)))
    return verdicts


def _evaluate(student: Any, found: Found, problem: Sequence[np.ndarray]) -> np.ndarray | None:
    """The expression's value on this problem, asked of the sandbox with the arrays it uses
    (as torch tensors or numpy arrays, the other kind tried when the first raises); None when
    it raises for both, or gets no answer (a time limit ends the run, and the run's notes say
    which question it was: the reading says it could not be evaluated)."""
    arrays = dict(zip(ROLES, problem, strict=True))
    X, _, W1, b1, W2, b2 = (torch.from_numpy(a) for a in problem)
    hidden, prediction = twolayer.forward(X, W1, b1, W2, b2)
    arrays[HIDDEN], arrays[PREDICTION] = hidden.numpy(), prediction.numpy()
    used = {n.id for n in ast.walk(ast.parse(found.expression, mode="eval"))
            if isinstance(n, ast.Name)}
    bound = {name: array for name, array in arrays.items() if name in used}
    kinds = [found.kind == "torch", found.kind != "torch"]
    for as_torch in kinds:
        try:
            value = student.evaluate(found.expression, bound, torch=as_torch,
                                     timeout=EVALUATE_SECONDS)
        except ProbeError as exc:
            if exc.kind != "raised":
                return None
            continue
        if value.dtype.kind in "biuf":
            return np.asarray(value, dtype=np.float64)
    return None


def _reading(found: Found, verdicts: list[Verdict], size: tuple[int, int]) -> Reading:
    """The reading of one gradient: right, wrong (with its first wrong verdict), or why it
    could not be judged."""
    if found.problem:
        return Reading(found.gradient, found.source, "unreadable", reason=found.problem)
    if not verdicts:
        return Reading(found.gradient, found.source, "unreadable", reason=say(N_(
            "it could not be evaluated on the grader's inputs (n = {n} samples, {hidden} "
            "hidden units)"), n=size[0], hidden=size[1]))
    wrong = first_wrong(verdicts)
    if wrong:
        return Reading(found.gradient, found.source, "wrong", check=wrong[found.gradient])
    return Reading(found.gradient, found.source, "right")


def summarize_code(readings: Mapping[str, Reading]) -> str:
    """One line on the gradients found in code: the wrong ones by their mistakes (a mistake
    they share told once), then those missing or that could not be judged, and why."""
    wrong = [r.check for r in readings.values() if r.verdict == "wrong" and r.check]
    told = {v.name for v in wrong}
    # gradients missing, or not judged for the same reason, are named together, once
    grouped: dict[tuple[str, str], list[str]] = {}
    for name in NAMES:
        if name in told:
            continue
        reading = readings.get(name)
        reason = ("missing", "") if reading is None else (
            (reading.verdict, reading.reason) if reading.verdict == "unreadable" else (name, ""))
        grouped.setdefault(reason, []).append(name)
    # the names said together are a Words (a str), so a Chinese page lists them with 、
    together = {Words.join(names, ", "): readings.get(names[0]) for names in grouped.values()}
    rest = {key: reading for key, reading in together.items() if reading is not None}
    parts = [summarize(wrong), summarize_readings(rest, list(together))]
    return Words.join(part for part in parts if part)

