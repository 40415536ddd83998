"""The table of requests both sides of the sandbox share (protocol.OPERATIONS): the grader
builds and checks by it, the agent and the kernel dispatch by it, and nothing else is asked."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

from grader.results import Outcome, RunRecord
from grader.sandbox import kernel_probe, probes, protocol
from grader.sandbox.config import SandboxConfig
from grader.sandbox.probes import ProbeClient, ProbeError
from grader.sandbox.session import Session


def test_the_kernel_answers_exactly_the_tables_kernel_questions():
    kernel = {op.name for op in protocol.OPERATIONS.values() if op.kernel}
    assert kernel == set(kernel_probe.HANDLERS)


def test_each_question_method_defaults_to_its_operations_timeout():
    methods = {"call": protocol.CALL, "value": protocol.VALUE, "modules": protocol.MODULES,
               "forward": protocol.FORWARD, "load_and_forward": protocol.LOAD,
               "environment": protocol.ENV, "files": protocol.FILES,
               "read_file": protocol.FILE, "evaluate": protocol.EVALUATE}
    for name, op in methods.items():
        default = inspect.signature(getattr(Session, name)).parameters["timeout"].default
        assert default == op.timeout, name


def test_a_request_is_built_from_the_table():
    message = protocol.request("call", (np.arange(3.0),), name="double", torch=False)
    assert message["op"] == "call" and message["name"] == "double"
    assert protocol.unpack_array(message["arrays"][0]).tolist() == [0.0, 1.0, 2.0]
    assert "arrays" not in protocol.request("env")


@pytest.mark.parametrize(("name", "arrays", "fields", "said"), [
    ("delete_everything", (), {}, "unknown request"),
    ("freeze", (), {}, "unknown request"),           # the agent's own, never the judge's
    ("call", (), {}, "needs the field 'name'"),
    ("call", (), {"name": "f", "shell": "rm"}, "takes no field 'shell'"),
    ("call", (), {"name": 3}, "field 'name' of the wrong type"),
    ("forward", (), {"name": "net"}, "sends 1 arrays, not 0"),
    ("value", (np.ones(1),), {"name": "W"}, "sends 0 arrays, not 1"),
])
def test_a_request_the_table_does_not_allow_is_refused_before_it_is_sent(
        name, arrays, fields, said):
    with pytest.raises(protocol.ProtocolError, match=said):
        protocol.request(name, arrays, **fields)


def test_the_agent_may_ask_its_own_questions():
    assert protocol.request("freeze", internal=True, own_threads=[1])["op"] == "freeze"
    assert protocol.operation("freeze", internal=True) is protocol.FREEZE


@pytest.mark.parametrize(("op", "answer", "said"), [
    (protocol.MODULES, {"modules": "many"}, "'modules' is not a list"),
    (protocol.FILE, {}, "'data' is not a str"),
    (protocol.CALL, {}, "no list of outputs"),
    (protocol.CALL, {"outputs": ["x"] * 65}, "no list of outputs"),
    (protocol.VALUE, {"outputs": []}, "expected one output, got 0"),
    (protocol.VALUE, {"outputs": ["not base64 npy"]}, "not a plain .npy array"),
])
def test_an_answer_is_checked_against_the_table(op, answer, said):
    with pytest.raises(protocol.ProtocolError, match=said):
        protocol.check_answer(op, answer)


def test_a_good_answer_gives_its_arrays():
    packed = protocol.pack_array(np.eye(2))
    assert protocol.check_answer(protocol.VALUE, {"outputs": [packed]})[0].tolist() == \
        [[1.0, 0.0], [0.0, 1.0]]
    assert protocol.check_answer(protocol.ENV, {"torch": None}) == []


class Wire(ProbeClient):
    """A probe client whose agent is a function of the request, in this process."""

    def __init__(self, agent: Any) -> None:
        self.config = SandboxConfig()
        self.record = RunRecord(Outcome.COMPLETED)
        self.deadline = float("inf")
        self.agent, self.sent, self.answer = agent, [], None
        self.killed = False

    def _connected(self) -> bool:
        return not self.killed

    def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.answer = self.agent(message)

    def _receive(self, deadline: float) -> dict[str, Any]:
        if self.answer is None:
            raise TimeoutError
        return self.answer

    def _kill(self) -> None:
        self.killed = True


def test_the_client_checks_every_answer_by_the_table():
    def agent(request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "outputs": [protocol.pack_array(np.ones(2))] * 2}

    client = Wire(agent)
    assert [a.tolist() for a in client.call("f", np.ones(2))] == [[1.0, 1.0], [1.0, 1.0]]
    assert client.sent[0]["op"] == "call" and client.sent[0]["timeout"] == 120
    with pytest.raises(ProbeError, match="expected one output, got 2") as raised:
        client.value("W")
    assert raised.value.kind == "malformed"
    with pytest.raises(protocol.ProtocolError):
        client.ask("freeze")
    assert len(client.sent) == 2  # the refused question never left


def test_a_late_answer_ends_the_run_and_names_the_question():
    client = Wire(lambda request: None)
    with pytest.raises(ProbeError) as raised:
        client.forward("net", np.zeros((1, 1, 28, 28), np.float32), timeout=3)
    assert raised.value.kind == "timeout" and client.killed
    assert client.record is not None
    assert client.record.notes == ["time ran out running the model `net`: no answer within "
                                   "3 s; the run was ended"]


def test_a_raising_answer_is_the_students_error():
    client = Wire(lambda request: {"ok": False, "error": "KeyError", "message": "'W'"})
    with pytest.raises(ProbeError, match="KeyError: 'W'") as raised:
        client.value("W")
    assert raised.value.kind == "raised"


def test_every_question_is_described_for_a_ta():
    assert probes.describe({"op": "load", "file": "net.pkl"}) == "loading and running `net.pkl`"
    assert probes.describe({"op": "files"}) == "listing the files"
    assert all(op.described for op in protocol.OPERATIONS.values())


# ------------------------------------------------------------------ evaluate


@pytest.mark.parametrize(("expression", "names", "arrays", "said"), [
    ("X" * (protocol.MAX_EXPRESSION_CHARS + 1), ["X"], 1, "longer than"),
    ("X.__class__", ["__class__"], 1, "not a plain identifier"),
    ("_x", ["_x"], 1, "not a plain identifier"),
    ("X + X", ["X", "X"], 2, "2 names for 2 arrays"),
    ("X", ["X", "Y"], 1, "2 names for 1 arrays"),
    ("X", [3], 1, "not a plain identifier"),
    ("X", [f"A{i}" for i in range(protocol.MAX_BOUND_NAMES + 1)],
     protocol.MAX_BOUND_NAMES + 1, "more than"),
])
def test_an_expression_out_of_bounds_is_refused_before_it_is_sent(expression, names, arrays,
                                                                  said):
    with pytest.raises(protocol.ProtocolError, match=said):
        protocol.request("evaluate", [np.ones(1)] * arrays, expression=expression,
                         names=names)


def test_the_agent_refuses_what_the_grader_would_not_send():
    """The agent checks a request by the same table (agent.Agent.answer calls
    check_request), so a request built by hand is refused there too."""
    message = {"op": "evaluate", "expression": "X", "names": ["X", "Y"],
               "arrays": [protocol.pack_array(np.ones(1))]}
    with pytest.raises(protocol.ProtocolError, match="2 names for 1 arrays"):
        protocol.check_request(protocol.EVALUATE, message)


def test_evaluate_sends_the_expression_names_and_arrays_and_takes_one_array():
    def agent(request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "outputs": [protocol.pack_array(np.full((2, 1), 3.0))]}

    client = Wire(agent)
    value = client.evaluate("X.T @ Y", {"X": np.ones((2, 1)), "Y": np.ones((2, 1))},
                            torch=False, timeout=5)
    assert value.tolist() == [[3.0], [3.0]]
    sent = client.sent[0]
    assert sent["op"] == "evaluate" and sent["expression"] == "X.T @ Y"
    assert sent["names"] == ["X", "Y"] and len(sent["arrays"]) == 2 and sent["torch"] is False
    assert probes.describe(sent) == "evaluating an expression read from the notebook"
