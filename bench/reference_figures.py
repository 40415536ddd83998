"""Figures for the reference implementations: is every homework answered correctly, and fast?

    python bench/reference_figures.py           all, the best CNN included (~10 min, 2 CPU cores)
    python bench/reference_figures.py --quick   all but the best CNN (~1 min): `make demo` runs it

Prints one line per figure. Accuracy is measured here, by the same code the judge uses.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from grader import data
from grader.judge import fraction_correct
from reference import minibatch, mnist, savemodel, twolayer


def judged_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The model's accuracy as the judge computes it: its predictions, compared outside."""
    return fraction_correct(mnist.predict(model, x).numpy(), y.numpy())

def w4() -> None:
    x, y = twolayer.slide_data()
    params = [p.double() for p in twolayer.init_params(10, seed=1)]
    auto = [p.clone().requires_grad_() for p in params]
    twolayer.loss(y.double(), twolayer.forward(x.double(), *auto)[1]).backward()
    ours = twolayer.gradients(x.double(), y.double(), *params)
    worst = max(((g - a.grad).norm() / a.grad.norm()).item()
                for g, a in zip(ours, auto, strict=True))
    fitted = twolayer.train(x, y)
    mse = ((twolayer.forward(x, *fitted)[1] - y) ** 2).mean().item()
    print(f"W4  analytic vs autograd, float64: max relative error {worst:.1e}")
    print(f"W4  trained on the slide data: MSE {mse:.5f} (noise floor {minibatch.NOISE_FLOOR:.5f})")


def w5() -> None:
    x, y = minibatch.slide_data()
    start = time.perf_counter()
    params = minibatch.train(x, y)
    seconds = time.perf_counter() - start
    held_out = minibatch.mse(params, *minibatch.fresh_points(1_000_000, seed=2))
    print(f"W5  one 10,000,000-point epoch: {seconds:.1f} s; held-out MSE {held_out:.5f} = "
          f"{held_out / minibatch.NOISE_FLOOR:.3f} x the noise floor")
    net = savemodel.train(*twolayer.slide_data())
    with tempfile.TemporaryDirectory() as folder:
        whole, params_file = savemodel.save(net, Path(folder))
        probe = torch.linspace(-1, 1, 1000).unsqueeze(1)
        same = (torch.equal(savemodel.restore_whole(whole)(probe), net(probe))
                and torch.equal(savemodel.restore_params(params_file)(probe), net(probe)))
    print(f"W5  save/restore: both round trips predict identically: {same}")


def w6(quick: bool, repeats: int, device: str, best_epochs: int) -> None:
    split = data.load_split()
    train_x, train_y = mnist.to_tensors(split.train_images, split.train_labels)
    test_x, test_y = mnist.to_tensors(split.test_images, split.test_labels)
    hold_x, hold_y = mnist.to_tensors(split.holdout_images, split.holdout_labels)

    for name, make in (("slide FC ", mnist.FC), ("slide CNN", mnist.CNN)):
        runs = []
        for seed in range(1, repeats + 1):
            start = time.perf_counter()
            model = mnist.train_slide(make(), train_x, train_y, seed=seed)
            runs.append((time.perf_counter() - start, judged_accuracy(model, test_x, test_y)))
        seconds = statistics.median(r[0] for r in runs)
        accuracy = statistics.median(r[1] for r in runs)
        print(f"W6  {name} (slide: Adam 1e-3, 1 epoch of 20,000, batch 50): test accuracy "
              f"{accuracy:.4f} (median of {repeats}), {seconds:.1f} s")
    if quick:
        return
    start = time.perf_counter()
    model = mnist.train_best(train_x, train_y, epochs=best_epochs, device=device)
    seconds = time.perf_counter() - start
    print(f"W6  best CNN ({best_epochs} epochs on the 50,000 public images, {device}): "
          f"test {judged_accuracy(model, test_x, test_y):.4f}, private hold-out "
          f"{judged_accuracy(model, hold_x, hold_y):.4f}, training {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the best CNN")
    parser.add_argument("--repeats", type=int, default=3, help="runs per slide model (median)")
    parser.add_argument("--best-epochs", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    w4()
    w5()
    w6(args.quick, args.repeats, args.device, args.best_epochs)


if __name__ == "__main__":
    main()
