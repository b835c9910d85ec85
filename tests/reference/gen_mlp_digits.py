"""Reference logits for the digits MLP trained by examples/mlp_digits
(tests/nn_reference.rs::mlp_digits_logits_match_pytorch).

Run from the repository root, after the example has exported its trained
weights and the first five test images:

    cargo run --release --example mlp_digits -- target/mlp_digits.svg target/mlp_digits_weights.txt
    python3 tests/reference/gen_mlp_digits.py target/mlp_digits_weights.txt

The weights come from the Rust side; PyTorch only evaluates them: the same
network (nn.Linear(64, 128) -> ReLU -> nn.Linear(128, 10)) with those
parameters, on those images, in float32 and float64.

Entries: mlp_digits/{w1 (128, 64), b1 (128), w2 (10, 128), b2 (10), x (5, 64)}
(float32, as exported) and mlp_digits/logits/{f32,f64} (5, 10).
"""
import sys

import numpy as np
import torch

sys.path.insert(0, "tests/reference")
import refvec  # noqa: E402


def read(path):
    out = {}
    with open(path) as f:
        for line in f:
            name, rows, cols, *vals = line.split()
            a = np.array([float(v) for v in vals], dtype=np.float32)
            out[name] = a.reshape(int(rows), int(cols)) if int(rows) > 1 else a
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "target/mlp_digits_weights.txt"
    p = read(src)
    entries = {f"mlp_digits/{k}": v for k, v in p.items()}
    for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
        t = {k: torch.tensor(v, dtype=dt) for k, v in p.items()}
        net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).to(dt)
        with torch.no_grad():
            net[0].weight.copy_(t["w1"])
            net[0].bias.copy_(t["b1"])
            net[2].weight.copy_(t["w2"])
            net[2].bias.copy_(t["b2"])
            entries[f"mlp_digits/logits/{tag}"] = net(t["x"]).numpy().copy()
    refvec.write("tests/reference/mlp_digits.bin", entries, "tests/reference/gen_mlp_digits.py; " + refvec.versions())
    print("wrote tests/reference/mlp_digits.bin:", len(entries) + 1, "entries")


if __name__ == "__main__":
    main()
