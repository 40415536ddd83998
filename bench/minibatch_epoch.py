"""Seconds per 10,000,000-point epoch of the W5 reference trainer, against autograd.

    python bench/minibatch_epoch.py [--epochs 3] [--batch-size 100]

Both trainers take the same steps on the same batches; the baseline computes each batch-mean
gradient with torch.autograd instead of the analytic expressions. Prints the median epoch time of
each and their ratio, measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from reference import minibatch, twolayer


def autograd_batch_gradients(X, Y, params):
    leaves = [p.clone().requires_grad_() for p in params]
    (twolayer.loss(Y, twolayer.forward(X, *leaves)[1]) / len(X)).backward()
    return [p.grad for p in leaves]


def epoch_seconds(x, y, batch_size: int, gradient, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed)
    params = twolayer.init_params(10, seed=seed)
    start = time.perf_counter()
    for batch in minibatch.minibatches(len(x), batch_size, generator):
        grads = gradient(x[batch], y[batch], params)
        params = [p - 0.1 * g for p, g in zip(params, grads, strict=True)]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    x, y = minibatch.slide_data()
    ours, base = [], []
    for seed in range(args.epochs):
        ours.append(epoch_seconds(x, y, args.batch_size, minibatch.batch_gradients, seed))
        base.append(epoch_seconds(x, y, args.batch_size, autograd_batch_gradients, seed))
    mine, theirs = statistics.median(ours), statistics.median(base)
    print(f"10M-point epoch, batch {args.batch_size}, {torch.get_num_threads()} threads: "
          f"analytic {mine:.1f} s, autograd {theirs:.1f} s (median of {args.epochs}); "
          f"analytic is {theirs / mine:.2f}x the speed of autograd")


if __name__ == "__main__":
    main()
