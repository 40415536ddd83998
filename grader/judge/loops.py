"""A notebook's own mini-batch loop (W5): read here, its batching run in the sandbox.

The W5 template's contract is `minibatches(data_size, batch_size)` and `batch_gradients(...)`,
but the course's own notebook defines neither: it writes the loop out,

    for epoch in range(EPOCH):
        random_indx = np.random.permutation(data_size)
        for batch_i in range(data_size // batch_size):
            indx = random_indx[batch_i*batch_size:(batch_i+1)*batch_size]
            loss = loss_func(net(x[indx]), y[indx])
            loss.backward()
            for para in net.parameters():
                para.data -= lr * para.grad

so a judge that only calls the contract gives a right loop nothing. This module reads such a
loop with `ast`, never running it in the trusted process, and judges two things a TA would:

1. The batching (`check_batching`). Where the permutation is drawn (inside the epoch loop, or
   once before it) is read. The batch loop's iterable and its index expression are evaluated in
   the sandbox (protocol.EVALUATE: a fresh namespace holding only the judge's values, never the
   notebook's variables) on the judge's own data size, which is not a multiple of the batch
   size, with the judge's own permutation bound to the notebook's name for it: every index once,
   batches of the declared size. The permutation call itself is evaluated twice on that size:
   a permutation of every point, a new order each time.
2. The batch gradient (`judge_batch_loss`), from the code alone: the loss `.backward()` is called
   on is a mean over the batch (`.mean()`, a `*Loss()` with its default reduction, or a sum
   divided by the batch size), and the loop zeroes the gradients between updates.

What it finds is a `BatchLoop`; each judgement is a `LoopVerdict` (the fraction earned and the
feedback, in words; never an exception's text).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.i18n import N_, Words, say
from grader.judge.derived import _OUTSIDE, _parse
from grader.sandbox import ProbeError

__all__ = ["BatchLoop", "LoopVerdict", "find_loop", "check_batching", "judge_batch_loss",
           "DATA_SIZE", "BATCH_SIZE"]

#: The judge's epoch: a data size that is not a multiple of the batch size, so a loop that
#: drops the last, shorter batch shows it (the course's own `data_size = 100` hides it).
DATA_SIZE = 103
BATCH_SIZE = 10
#: Calls that draw a random order of the points.
_PERMUTATIONS = frozenset({"permutation", "randperm"})
_SHUFFLES = frozenset({"shuffle"})
#: A name that says it is the batch size, or the data size.
_BATCH_NAME = re.compile(r"(?:mini_?)?batch_?size|batchsize|bs|b_?size|size_?b|n_?batch", re.I)
_DATA_NAME = re.compile(r"data_?size|n_?data|n_?samples?|n|N|num_?(?:data|samples?|points)",
                        re.I)
#: Builtins and modules an evaluated expression may name (kernel_probe allows the same).
_ALLOWED = frozenset({"abs", "int", "len", "list", "max", "min", "range", "round", "slice",
                      "sum", "tuple", "zip", "np", "numpy", "torch", "math", "True", "False",
                      "None"})
#: How the loss is reduced when a `*Loss()` or `mse_loss` is called without `reduction=`.
_DEFAULT_REDUCTION = "mean"
EVALUATE_SECONDS = 30


@dataclass(frozen=True)
class BatchLoop:
    """The notebook's mini-batch loop, as read (never run here); "" for what was not found."""

    batch_header: str = ""       # `for batch_i in range(data_size // batch_size):`
    epoch_header: str = ""       # the loop around it, "" when there is none
    permutation: str = ""        # `random_indx = np.random.permutation(data_size)`
    permutation_call: str = ""   # `np.random.permutation(data_size)`; "" for an in-place shuffle
    order: str = ""              # the notebook's name for the permuted indices (`random_indx`)
    per_epoch: bool = False      # the permutation is drawn inside the epoch loop
    index: str = ""              # `random_indx[batch_i*batch_size:(batch_i+1)*batch_size]`
    target: str = ""             # the batch loop's variable(s), as written
    iterable: str = ""           # what the batch loop walks, as written
    data_name: str = ""          # the notebook's name for the data size, "" when none
    batch_name: str = ""         # the notebook's name for the batch size, "" when none
    constants: dict[str, int] = field(default_factory=dict)  # the notebook's integer names
    loss: str = ""               # the loss `.backward()` is called on, filled in one step
    reduction: str = ""          # "mean", "sum", or "" when it cannot be read
    backward: bool = False       # `.backward()` is called inside the batch loop
    zeroing: str = ""            # the statement that zeroes the gradients in the loop, as written
    zeroed_outside: str = ""     # one that does it only outside the batch loop
    update: str = ""             # the update statement (`optimizer.step()`, `p.data -= ...`)
    data_loader: str = ""        # a DataLoader(...) call that does the batching instead

    def __bool__(self) -> bool:
        return bool(self.batch_header or self.data_loader)


@dataclass(frozen=True)
class LoopVerdict:
    """What one item earns from the notebook's loop (a fraction of its points) and why."""

    earned: float
    feedback: str
    rows: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- reading


def _text(node: ast.AST) -> str:
    return " ".join(ast.unparse(node).split())


def _last(node: ast.expr) -> str:
    """The last part of a called name: `np.random.permutation` -> `permutation`."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _walk(body: Sequence[ast.stmt], loops: tuple[ast.For | ast.While, ...] = ()
          ) -> Iterator[tuple[ast.stmt, tuple[ast.For | ast.While, ...]]]:
    """Every statement in the order written, with the loops around it (function bodies
    skipped: a loop in a function the notebook never calls says nothing)."""
    for statement in body:
        yield statement, loops
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        inner = (*loops, statement) if isinstance(statement, (ast.For, ast.While)) else loops
        for name in ("body", "orelse", "finalbody"):
            yield from _walk(getattr(statement, name, []) or [], inner)
        for handler in getattr(statement, "handlers", []) or []:
            yield from _walk(handler.body, inner)


def _own(statement: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of a statement, not those of the statements nested in it."""
    if isinstance(statement, (ast.For, ast.While, ast.If, ast.With)):
        parts: list[ast.AST] = [getattr(statement, "target", None) or statement,
                                getattr(statement, "iter", None) or statement]
        if isinstance(statement, (ast.While, ast.If)):
            parts = [statement.test]
        if isinstance(statement, ast.With):
            parts = list(statement.items)
        for part in parts:
            yield from ast.walk(part)
        return
    yield from ast.walk(statement)


def _constants(statement: ast.stmt, found: dict[str, int]) -> None:
    """`data_size = 100`, `n_hidden, batch_size = 10, 100`: the notebook's integer names."""
    if not isinstance(statement, ast.Assign):
        return
    pairs: list[tuple[ast.expr, ast.expr]] = []
    for target in statement.targets:
        if isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple) \
                and len(target.elts) == len(statement.value.elts):
            pairs += list(zip(target.elts, statement.value.elts, strict=True))
        else:
            pairs.append((target, statement.value))
    for target, value in pairs:
        if isinstance(target, ast.Name):
            try:
                number = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                found.pop(target.id, None)
                continue
            if isinstance(number, (int, float)) and not isinstance(number, bool) \
                    and float(number).is_integer() and abs(number) < 1e12:
                found[target.id] = int(number)
            else:
                found.pop(target.id, None)


def _permutation(statement: ast.stmt) -> tuple[str, ast.Call] | None:
    """(the name holding the order, the call) where this statement draws a random order."""
    for node in _own(statement):
        if isinstance(node, ast.Call) and _last(node.func) in _PERMUTATIONS:
            name = ""
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name):
                name = statement.targets[0].id
            return name, node
        if isinstance(node, ast.Call) and _last(node.func) in _SHUFFLES and node.args \
                and isinstance(node.args[0], ast.Name):
            return node.args[0].id, node
    return None


def _uses(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _inside(loop: ast.AST, node: ast.AST) -> bool:
    return any(n is node for n in ast.walk(loop))


def find_loop(cells: Sequence[str]) -> BatchLoop:
    """The notebook's mini-batch loop, read from its code cells (never run): the batch loop
    is the first loop that indexes a random order of the points (or walks one), preferring
    one that calls `.backward()`; what is found around it is read as the module says."""
    statements: list[tuple[ast.stmt, tuple[ast.For | ast.While, ...]]] = []
    for source in cells:
        parsed = _parse(source)
        if parsed is not None:
            statements += list(_walk(parsed[0].body))
    constants: dict[str, int] = {}
    assigned: dict[str, ast.expr] = {}
    orders: list[tuple[str, ast.Call, ast.stmt, tuple[ast.For | ast.While, ...]]] = []
    loader = ""
    for statement, loops in statements:
        if not loops:
            _constants(statement, constants)
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, statement.value)
        drawn = _permutation(statement)
        if drawn:
            orders.append((*drawn, statement, loops))
        for node in _own(statement):
            if isinstance(node, ast.Call) and _last(node.func) == "DataLoader" and not loader:
                loader = _text(node)
    candidates = []
    for statement, loops in statements:
        if not isinstance(statement, ast.For):
            continue
        for name, call, where, _ in orders:
            index = _index_of(statement, name, call) if name or call else None
            if index is not None:
                backward = any(isinstance(n, ast.Call) and _last(n.func) == "backward"
                               for n in ast.walk(statement))
                candidates.append((not backward, len(candidates), statement, loops, name,
                                   call, where, index))
                break
    if not candidates:
        return BatchLoop(data_loader=loader, constants=constants)
    _, _, loop, loops, name, call, where, index = min(candidates, key=lambda c: c[:2])
    epoch = next((outer for outer in reversed(loops) if isinstance(outer, ast.For)), None)
    per_epoch = epoch is None or _inside(epoch, where)
    permutation_call = call if _last(call.func) in _PERMUTATIONS else None
    data_name = ""
    if permutation_call is not None and permutation_call.args \
            and isinstance(permutation_call.args[0], ast.Name):
        data_name = permutation_call.args[0].id
    free = {n.id for part in (loop.iter, index) for n in ast.walk(part)
            if isinstance(n, ast.Name)}
    batch_name = next((n for n in sorted(free) if _BATCH_NAME.fullmatch(n)), "")
    if not data_name:
        data_name = next((n for n in sorted(free) if _DATA_NAME.fullmatch(n)
                          and n in constants), "")
    loss, reduction, backward = _loss(loop, assigned, batch_name)
    zeroing = _zeroing(loop)
    outside = "" if zeroing else next(
        (z for s, _ in statements if not _inside(loop, s) and (z := _zeroing(s))), "")
    update = next((_text(s) for s in ast.walk(loop) if isinstance(s, (ast.AugAssign, ast.Expr))
                   and (_is_step(s) or _is_manual(s))), "")
    header = f"for {_text(loop.target)} in {_text(loop.iter)}:"
    return BatchLoop(
        batch_header=header,
        epoch_header=f"for {_text(epoch.target)} in {_text(epoch.iter)}:" if epoch else "",
        permutation=_text(where), permutation_call=_text(permutation_call)
        if permutation_call is not None else "", order=name, per_epoch=per_epoch,
        index=_text(index), target=_text(loop.target), iterable=_text(loop.iter),
        data_name=data_name, batch_name=batch_name, constants=constants, loss=loss,
        reduction=reduction, backward=backward, zeroing=zeroing, zeroed_outside=outside,
        update=update, data_loader=loader)


def _index_of(loop: ast.For, name: str, call: ast.Call) -> ast.expr | None:
    """The batch: the first `order[...]` in the loop's body, or the loop's own variable when
    it walks the order itself (`for idx in order.split(B)`)."""
    for node in _shallow(loop.body):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id == name and name:
            return node
    if (name and _uses(loop.iter, name)) or _inside(loop.iter, call):
        return loop.target
    return None


def _shallow(body: Sequence[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes of these statements, not those of the loops nested in them: a subscript
    there belongs to the inner loop."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.For, ast.While)):
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _is_step(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) \
        and _last(statement.value.func) == "step"


def _is_manual(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.AugAssign) and isinstance(statement.op, ast.Sub) \
        and any(isinstance(n, ast.Attribute) and n.attr == "grad"
                for n in ast.walk(statement.value))


def _zeroing(root: ast.AST) -> str:
    """The first statement under `root` that zeroes gradients, as written ("" when none)."""
    for node in ast.walk(root):
        if isinstance(node, ast.Call) and _last(node.func) == "zero_grad":
            return _text(node)
        if isinstance(node, ast.Call) and _last(node.func) in ("zero_", "fill_", "detach_") \
                and isinstance(node.func, ast.Attribute) \
                and any(isinstance(n, ast.Attribute) and n.attr == "grad"
                        for n in ast.walk(node.func.value)):
            return _text(node)
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "grad" for t in node.targets):
            return _text(node)
    return ""


def _loss(loop: ast.For, assigned: dict[str, ast.expr], batch_name: str
          ) -> tuple[str, str, bool]:
    """(the loss `.backward()` is called on, its reduction, whether there is a backward)."""
    local: dict[str, ast.expr] = {}
    for node in ast.walk(loop):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    local[target.id] = node.value
    for node in ast.walk(loop):
        if isinstance(node, ast.Call) and _last(node.func) == "backward" \
                and isinstance(node.func, ast.Attribute):
            value = node.func.value
            if isinstance(value, ast.Name):
                value = local.get(value.id) or assigned.get(value.id) or value
            return _text(value), _reduction(value, {**assigned, **local}, batch_name), True
    return "", "", False


def _reduction(value: ast.expr, assigned: dict[str, ast.expr], batch_name: str) -> str:
    """"mean", "sum" or "" for a loss expression: a `.mean()`, a `*Loss()` or `mse_loss` and
    their `reduction=`, a sum divided by the batch size (its name, `len(...)`, `.shape[0]`,
    `.size(0)` or the number)."""
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div):
        inner = _reduction(value.left, assigned, batch_name)
        if inner == "sum" and _is_batch_size(value.right, batch_name):
            return "mean"
        return inner
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mult):
        for one, other in ((value.left, value.right), (value.right, value.left)):
            if isinstance(one, ast.BinOp) and isinstance(one.op, ast.Div) \
                    and _is_batch_size(one.right, batch_name) \
                    and _reduction(other, assigned, batch_name) == "sum":
                return "mean"
        return _reduction(value.left, assigned, batch_name) or \
            _reduction(value.right, assigned, batch_name)
    if isinstance(value, ast.Call):
        name = _last(value.func)
        if name in ("mean", "sum"):
            return name
        keywords = {k.arg: k.value for k in value.keywords}
        if name.endswith("_loss") or name.endswith("Loss"):
            given = keywords.get("reduction")
            return str(given.value) if isinstance(given, ast.Constant) else _DEFAULT_REDUCTION
        made = assigned.get(value.func.id) if isinstance(value.func, ast.Name) \
            else value.func
        if isinstance(made, ast.Call) and _last(made.func).endswith("Loss"):
            given = {k.arg: k.value for k in made.keywords}.get("reduction")
            return str(given.value) if isinstance(given, ast.Constant) \
                else _DEFAULT_REDUCTION
    return ""


def _is_batch_size(node: ast.expr, batch_name: str) -> bool:
    if isinstance(node, ast.Name):
        return node.id == batch_name or bool(_BATCH_NAME.fullmatch(node.id))
    if isinstance(node, ast.Call) and _last(node.func) in ("len", "size", "numel"):
        return True
    if isinstance(node, ast.Subscript) and _last(node.value) == "shape":
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))


# ----------------------------------------------------------------------------- judging


def _expression(loop: BatchLoop, text: str) -> tuple[str, list[str]]:
    """`text` with the notebook's integer names other than the data and batch sizes written in
    as numbers, and the names left unbound (nothing the sandbox could give a value)."""
    tree = ast.parse(text, mode="eval")
    bound = {loop.order, loop.data_name, loop.batch_name} - {""}
    targets = {n.id for n in ast.walk(ast.parse(loop.target or "_", mode="eval"))
               if isinstance(n, ast.Name)}

    class Fill(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            if node.id not in bound and node.id in loop.constants:
                return ast.copy_location(ast.Constant(loop.constants[node.id]), node)
            return node

    tree = ast.fix_missing_locations(Fill().visit(tree))
    unbound = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
                     - bound - targets - _ALLOWED)
    unsafe = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                     and (n.attr.startswith("_") or n.attr in _OUTSIDE)})
    return ast.unparse(tree), unbound + [f".{a}" for a in unsafe]


def _sizes(loop: BatchLoop) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    if loop.data_name:
        arrays[loop.data_name] = np.array(DATA_SIZE)
    if loop.batch_name:
        arrays[loop.batch_name] = np.array(BATCH_SIZE)
    return arrays


def _ask(student: Any, expression: str, arrays: dict[str, np.ndarray], torch: bool
         ) -> np.ndarray | None:
    try:
        return np.asarray(student.evaluate(expression, arrays, torch=torch,
                                           timeout=EVALUATE_SECONDS))
    except (ProbeError, ValueError, TypeError):
        return None


def check_batching(student: Any, loop: BatchLoop, evidence: dict[str, Any] | None = None
                   ) -> LoopVerdict:
    """"One epoch of mini-batches visits every point once", judged on the notebook's loop: a
    quarter each for a permutation of every point, drawn anew each epoch, every index once
    (the last, shorter batch included), and batches of the declared size."""
    if not loop:
        return LoopVerdict(0.0, say(N_(
            "no `minibatches` function and no mini-batch loop found: the grader looked for a "
            "loop indexing a random order of the points (`np.random.permutation(data_size)`, "
            "`torch.randperm(n)`, `np.random.shuffle`) or a DataLoader")))
    if not loop.batch_header:
        return _loader(loop)
    uses_torch = "torch" in f"{loop.permutation} {loop.iterable} {loop.index}"
    notes: list[str] = []  # Words
    earned = 0.0
    rows: dict[str, Any] = {"loop": loop.batch_header, "epoch": loop.epoch_header,
                            "permutation": loop.permutation, "index": loop.index,
                            "data_size": DATA_SIZE, "batch_size": BATCH_SIZE}
    # a permutation of every point, a new order each call
    if loop.permutation_call:
        call, unbound = _expression(loop, loop.permutation_call)
        if unbound:
            notes.append(say(N_("`{call}` uses {names}, which the grader cannot give a value: "
                                "the order it draws was not checked"),
                             call=loop.permutation_call, names=_names(unbound)))
        else:
            arrays = {k: v for k, v in _sizes(loop).items() if k == loop.data_name}
            draws = [_ask(student, call, arrays, uses_torch) for _ in range(2)]
            if any(d is None for d in draws):
                notes.append(say(N_("`{call}` could not be evaluated on {name} = {size}"),
                                 call=loop.permutation_call, size=DATA_SIZE,
                                 name=loop.data_name or say(N_("the data size"))))
            elif not all(np.array_equal(np.sort(np.ravel(d)), np.arange(DATA_SIZE))
                         for d in draws if d is not None):
                notes.append(say(N_("`{call}` on {size} points is not an order of all {size} of "
                                    "them"), call=loop.permutation_call, size=DATA_SIZE))
            elif np.array_equal(draws[0], draws[1]):
                notes.append(say(N_("`{call}` gives the same order every time"),
                                 call=loop.permutation_call))
            else:
                earned += 0.25
    else:
        earned += 0.25  # an in-place shuffle of the notebook's own indices
    # a new order each epoch
    if loop.per_epoch:
        earned += 0.25
    else:
        notes.append(say(N_("the permutation (`{permutation}`) is drawn once, before the epoch "
                            "loop (`{epoch}`): every epoch visits the points in the same order; "
                            "draw it inside the epoch loop"),
                         permutation=loop.permutation, epoch=loop.epoch_header))
    # every index once, batches of the declared size
    batches, problem = _batches(student, loop, uses_torch)
    if problem:
        notes.append(problem)
    else:
        seen, sizes = batches
        rows["batch_sizes"] = sizes.tolist()
        counts = np.bincount(seen[(seen >= 0) & (seen < DATA_SIZE)], minlength=DATA_SIZE)
        missing, twice = int(np.sum(counts == 0)), int(np.sum(counts > 1))
        if missing == DATA_SIZE % BATCH_SIZE and not twice and "//" in loop.iterable \
                and missing:
            notes.append(say(N_("`{loop}` drops the last, shorter batch: on {size} points in "
                                "batches of {batch} the last {missing} are never visited (the "
                                "notebook's own data size hides it when it is a multiple of "
                                "the batch size); walk range(0, data_size, batch_size) or "
                                "round the count up"), loop=loop.batch_header, size=DATA_SIZE,
                             batch=BATCH_SIZE, missing=missing))
        elif missing or twice or np.any((seen < 0) | (seen >= DATA_SIZE)):
            notes.append(say(N_("one epoch of {size} points in batches of {batch} leaves out "
                                "{missing} points and visits {twice} more than once"),
                             size=DATA_SIZE, batch=BATCH_SIZE, missing=missing, twice=twice))
        else:
            earned += 0.25
        declared = BATCH_SIZE if loop.batch_name else int(sizes[0]) if sizes.size else 0
        if sizes.size and np.all(sizes[:-1] == declared) and 0 < sizes[-1] <= declared:
            earned += 0.25
        else:
            notes.append(say(N_("batch sizes {sizes}: every batch but the last must hold "
                                "|B| = {declared} points"), sizes=sizes.tolist()[:12],
                             declared=declared))
    if evidence is not None:
        evidence["batch_loop"] = rows
    feedback = Words.join(notes) if notes else say(N_(
        "the loop's batches visit every point once per epoch, in a new order each epoch "
        "(judged on {size} points in batches of {batch})"), size=DATA_SIZE, batch=BATCH_SIZE)
    return LoopVerdict(earned, feedback, rows)


def _names(names: Sequence[str]) -> str:
    """The names, in backticks, as a list (a Words: a Chinese page lists them with 、)."""
    return Words.join([f"`{n}`" for n in names], ", ")


def _batches(student: Any, loop: BatchLoop, uses_torch: bool
             ) -> tuple[tuple[np.ndarray, np.ndarray], str]:
    """(every index visited in order, the batch sizes), or why they could not be had."""
    index, unbound_index = _expression(loop, loop.index)
    iterable, unbound_iterable = _expression(loop, loop.iterable)
    unbound = sorted(set(unbound_index) | set(unbound_iterable))
    if unbound:
        return (np.zeros(0), np.zeros(0)), say(N_(
            "the batches (`{index}` over `{iterable}`) use {names}, which the grader cannot "
            "give a value: whether they visit every point was not checked"),
            index=loop.index, iterable=loop.iterable, names=_names(unbound))
    arrays = _sizes(loop)
    if loop.order:
        arrays[loop.order] = np.random.default_rng().permutation(DATA_SIZE).astype(np.int64)
    each = f"np.ravel(np.asarray({index}))"
    seen = _ask(student, f"np.concatenate([np.zeros(0, dtype=np.int64)] + [{each} for "
                         f"{loop.target} in {iterable}]).astype(np.int64)", arrays, uses_torch)
    sizes = _ask(student, f"np.array([0] + [np.size({each}) for {loop.target} in {iterable}],"
                          " dtype=np.int64)[1:]", arrays, uses_torch)
    if seen is None or sizes is None:
        return (np.zeros(0), np.zeros(0)), say(N_(
            "the batches (`{index}` over `{iterable}`) could not be evaluated on {size} points "
            "in batches of {batch}"), index=loop.index, iterable=loop.iterable, size=DATA_SIZE,
            batch=BATCH_SIZE)
    return (seen.astype(np.int64).ravel(), sizes.astype(np.int64).ravel()), ""


def _loader(loop: BatchLoop) -> LoopVerdict:
    """A DataLoader does the batching: read from its keywords alone."""
    tree = ast.parse(loop.data_loader, mode="eval").body
    keywords = {k.arg: k.value for k in getattr(tree, "keywords", [])}

    def on(name: str) -> bool:
        value = keywords.get(name)
        return isinstance(value, ast.Constant) and value.value is True

    earned, notes = 0.5, []
    if on("shuffle"):
        earned += 0.25
    else:
        notes.append(say(N_("`{loader}` does not shuffle: every epoch visits the points in the "
                            "same order (shuffle=True)"), loader=loop.data_loader))
    if on("drop_last"):
        notes.append(say(N_("drop_last=True leaves out the last, shorter batch every epoch")))
    else:
        earned += 0.25
    return LoopVerdict(earned, Words.join(notes) if notes else say(N_(
        "`{loader}` draws a new order each epoch and visits every point once"),
        loader=loop.data_loader))


def judge_batch_loss(loop: BatchLoop) -> LoopVerdict:
    """"The batch gradient is the mean over the batch", judged on the notebook's loop from its
    code: half for a loss that is the batch mean, half for gradients zeroed between updates
    (autograd adds each `.backward()` to what `.grad` holds)."""
    if not loop.backward:
        if loop.batch_header:
            return LoopVerdict(0.0, say(N_(
                "no `batch_gradients` function and no `loss.backward()` in `{loop}` found: the "
                "grader looked for the loss of each batch and its backward pass"),
                loop=loop.batch_header))
        return LoopVerdict(0.0, say(N_(
            "no `batch_gradients` function and no `loss.backward()` found: the grader looked "
            "for the loss of each batch and its backward pass")))
    notes = []
    earned = 0.0
    if loop.reduction == "mean":
        earned += 0.5
    elif loop.reduction == "sum":
        notes.append(say(N_("the loss (`{loss}`) is the batch sum, not the mean: its gradient "
                            "is |B| times the batch-mean gradient (use .mean(), or divide by "
                            "the batch size)"), loss=loop.loss))
    else:
        notes.append(say(N_("the loss (`{loss}`) is not read as a mean over the batch: the "
                            "grader looked for .mean(), a *Loss() with its default reduction, "
                            "or a sum divided by the batch size"), loss=loop.loss))
    if loop.zeroing:
        earned += 0.5
    elif loop.zeroed_outside:
        notes.append(say(N_("the gradients are zeroed only outside the batch loop "
                            "(`{zeroing}`): each step adds this batch's gradient to all the "
                            "earlier ones"), zeroing=loop.zeroed_outside))
    else:
        notes.append(say(N_("the gradients are never zeroed between updates: each step adds "
                            "this batch's gradient to all the earlier ones (call "
                            "optimizer.zero_grad() or p.grad.zero_() each step)")))
    return LoopVerdict(earned, Words.join(notes) if notes else say(N_(
                       "the loss is the batch mean (`{loss}`) and the gradients are zeroed "
                       "each step (`{zeroing}`)"), loss=loop.loss, zeroing=loop.zeroing),
                       {"loss": loop.loss, "reduction": loop.reduction,
                        "zeroing": loop.zeroing, "update": loop.update})
