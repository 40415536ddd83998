"""W6 hidden rubric: accuracy measured by the grader on the test set and on the private
hold-out, and the architecture the homework asks for."""

import pytest

from grader.judge import (
    LAYER_KINDS,
    Words,
    accuracy,
    architecture_notes,
    confusion,
    find_model,
    fraction_correct,
    misclassified,
    predictions,
    say,
    verify_layers,
)


@pytest.fixture(scope="module")
def scores(student, notebook, mnist, evidence):
    if mnist is None:
        pytest.fail("MNIST is not provisioned on the grading machine: `grade data fetch`")
    found = find_model(student, notebook.contract)
    assert found.name, found.feedback
    predicted = predictions(found, student, mnist.test_images)
    test = fraction_correct(predicted, mnist.test_labels)
    holdout = accuracy(found, student, mnist.holdout_images, mnist.holdout_labels)
    evidence["accuracy"] = {"model": found.name, "test": test, "holdout": holdout}
    evidence["confusion"] = confusion(predicted, mnist.test_labels)
    evidence["misclassified"] = misclassified(predicted, mnist.test_labels, mnist.test_images)
    return found, test, holdout


@pytest.fixture(scope="module")
def curve(assignment):
    if assignment.accuracy is None:
        pytest.fail(say("{path} has no [accuracy] table (baseline, target): the grader cannot "
                        "score accuracy", path=str(assignment.folder / "assignment.toml")))
    return assignment.accuracy


@pytest.mark.points(10)
def test_accuracy_on_digits_it_never_saw(scores, curve, credit):
    """The model classifies digits it never saw accurately

    Points grow from none at the [accuracy] baseline to all at its target, scored on the
    lower of the private hold-out accuracy (images never in the sandbox) and the test
    accuracy, both measured by the grader from the logits the model returns: a model that
    learned the public test set earns nothing for it."""
    _, test, holdout = scores
    scored = min(test, holdout)
    earned = curve.earned(scored)
    assert earned > 0, say("accuracy {holdout:.4f} on the private hold-out and {test:.4f} on "
                           "the test set, measured by the grader: no better than the slide's "
                           "baseline {baseline:.2f}", holdout=holdout, test=test,
                           baseline=float(curve.baseline))
    credit(earned, say("private hold-out {holdout:.4f}, test {test:.4f} (measured by the "
                       "grader; scored on {scored:.4f}; full points at {target:.3f})",
                       holdout=holdout, test=test, scored=scored, target=float(curve.target)))


@pytest.mark.points(2)
def test_holdout_agrees_with_test(scores, curve):
    """The model does as well on digits it never saw

    The private hold-out is never in the sandbox; a test accuracy more than [accuracy]
    max_gap above it suggests training on the test set."""
    _, test, holdout = scores
    assert test - holdout <= curve.max_gap, say(
        "test accuracy {test:.4f} but {holdout:.4f} on images the notebook never saw: did the "
        "model train on the test set?", test=test, holdout=holdout)


@pytest.mark.points(3)
def test_architecture(scores, student, evidence, credit):
    """The model uses convolutions, batch norm and dropout

    A point for each that the model was seen to use: a layer's class name is only a claim,
    checked by recomputing what the layer did on the grader's own batch
    (verify_layers)."""
    found = verify_layers(student, scores[0])
    evidence["layers"] = [{"path": c.path, "class": c.name, "kind": c.kind,
                           "verified": c.verified, "finding": c.finding}
                          for c in found.layer_checks]
    verified = [what for kind, what in LAYER_KINDS.items() if kind in found.verified_layers]
    notes = Words.join(architecture_notes(found).values())
    assert verified, say("the grader verified no convolutions, batch norm or dropout in the "
                         "model `{name}`; {notes}", name=found.name, notes=notes)
    said = say("verified by what they compute: {kinds}", kinds=Words.join(verified, ", "))
    credit(len(verified) / len(LAYER_KINDS), Words.join([said, notes]) if notes else said)


@pytest.mark.points(0)
def test_training_time_and_device(run, student, credit):
    """Training time and device

    Worth nothing: it puts the longest cell's time and the device in the report."""
    timed = [c for c in run.cells if c.seconds]
    longest = max(timed, key=lambda c: c.synced_seconds or c.seconds) if timed else None
    device = student.environment().get("gpu") or "cpu"
    assert longest is not None, "no cell ran"
    credit(1.0, say("longest cell {cell}: {seconds:.1f} s on {device}", cell=longest.index,
                    seconds=float(longest.synced_seconds or longest.seconds), device=device))
