"""Reference vectors for constml's foundation kernels -> foundation.bin.

Run from the repository root (needs PyTorch and numpy; not needed by the tests):

    python3 tests/reference/gen_foundation.py

Every case exists twice, once per element type ("f32", "f64"). The f64 inputs are
drawn and the outputs computed by PyTorch in float64; the f32 inputs are drawn in
float32 and the outputs computed by PyTorch in float32, as a PyTorch user would
get them. Inputs and outputs are both stored, so the Rust tests need no Python.

PyTorch's own float32 results are not always accurate to constml's default f32
tolerance (1e-5 relative + 1e-6 absolute): its vectorised f32 GELU is off the
true value by up to ~1.1e-6 absolute, and an f32 product of length 64 can be off
by ~0.6 of that tolerance where the sum cancels. So every f32 output `{out}` has
a companion `{out}_exact`: PyTorch computing in float64 on the same f32 inputs,
rounded once to f32. The tests hold a kernel to the default tolerance against
`_exact`, and to the default tolerance plus PyTorch's own deviation
|{out} - {out}_exact| against PyTorch's f32 output.

Entry names (all arrays row-major):

    gemm/{m}x{k}x{n}/{dt}/a      (m, k)
                         /b      (k, n)
                         /ab     (m, n)   a @ b
                         /ab_exact (m, n)  f32 only, see above
                         /c0     (m, n)   start value of C for the accumulate case
        The tests check A.Bt against the same product by passing b transposed
        (n, k), and the accumulate case against c0 + ab (one rounding).
    matvec/{out}x{in}/{dt}/w     (out, in)  nn.Linear weight, no bias
                          /x     (in,)
                          /y     (out,)     x @ w.T   (and y_exact for f32)
                          /y0    (out,)     start value for the accumulate case
    softmax/{case}/{dt}/x, /softmax, /log_softmax        one row each (+ _exact)
    softmax/all_neg_inf/{dt}/x, /torch_softmax, /torch_log_softmax
        a fully -inf row. PyTorch gives NaN there; constml's convention is an
        all-zero softmax row and an all -inf log-softmax row. The torch outputs
        are stored only so the test can document the deviation.
    act/{dt}/x and act/{dt}/{relu,sigmoid,tanh,silu,gelu,gelu_tanh} (+ _exact)
    dot/{n}/{dt}/a, /b, /out (shape (1,)) (+ _exact)
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "foundation.bin")
DTYPES = {"f32": torch.float32, "f64": torch.float64}

# (m, k, n): degenerate, odd, lane width +- 1 (16 f32 lanes with AVX-512, 4 on
# the baseline), wider than one register tile (n = 70), deeper than one k pass
# of the Simd A.B kernel (k = 150 > 128), and one square block. The zero-sized ones check that nothing is
# written (Overwrite) or that C0 is left unchanged (Add with k = 0).
GEMM_SHAPES = [
    (1, 1, 1),
    (3, 5, 7),
    (4, 16, 4),
    (15, 17, 16),
    (17, 33, 19),
    (5, 100, 3),
    (1, 100, 37),
    (37, 8, 1),
    (5, 7, 70),
    (3, 150, 20),
    (64, 64, 64),
    (0, 3, 4),
    (3, 0, 4),
    (3, 4, 0),
]
# (out, in) of matvec.
MATVEC_SHAPES = [(1, 1), (3, 5), (16, 16), (17, 33), (20, 70), (5, 0), (0, 5)]
DOT_LENGTHS = [0, 1, 15, 16, 17, 1000]


def np_of(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().numpy()


def put(out, key, fn, *inputs):
    """Stores fn(*inputs) under `key`; for float32 inputs also `key + "_exact"`,
    fn evaluated in float64 on the same (exactly widened) inputs, rounded to f32."""
    out[key] = np_of(fn(*inputs))
    if inputs[0].dtype == torch.float32:
        exact = fn(*(t.double() for t in inputs)).float()
        out[key + "_exact"] = np_of(exact)


def uniform(gen, shape, dtype, lo=-1.0, hi=1.0):
    return torch.rand(shape, generator=gen, dtype=dtype) * (hi - lo) + lo


def gemm_cases(gen, dt, dtype, out):
    for m, k, n in GEMM_SHAPES:
        a = uniform(gen, (m, k), dtype)
        b = uniform(gen, (k, n), dtype)
        c0 = uniform(gen, (m, n), dtype)
        p = f"gemm/{m}x{k}x{n}/{dt}/"
        out[p + "a"] = np_of(a)
        out[p + "b"] = np_of(b)
        put(out, p + "ab", torch.matmul, a, b)
        out[p + "c0"] = np_of(c0)


def matvec_cases(gen, dt, dtype, out):
    for o, i in MATVEC_SHAPES:
        w = uniform(gen, (o, i), dtype)
        x = uniform(gen, (i,), dtype)
        y0 = uniform(gen, (o,), dtype)
        p = f"matvec/{o}x{i}/{dt}/"
        out[p + "w"] = np_of(w)
        out[p + "x"] = np_of(x)
        put(out, p + "y", F.linear, x, w)  # x @ w.T, nn.Linear without bias
        out[p + "y0"] = np_of(y0)


def softmax_rows(gen, dtype):
    """Named rows; values are built in float64 then cast (exact for these)."""
    inf = math.inf
    rows = {}
    for n in (0, 1, 15, 16, 17, 100):
        rows[f"rand{n}"] = torch.randn((n,), generator=gen, dtype=dtype) * 3.0
    r = torch.randn((17,), generator=gen, dtype=dtype) * 2.0
    r[[0, 5, 16]] = -inf
    rows["some_neg_inf17"] = r
    r = torch.full((33,), -inf, dtype=dtype)
    r[20] = 1.5
    rows["one_finite33"] = r
    rows["constant16"] = torch.full((16,), 7.25, dtype=dtype)
    rows["large_pm1e4_17"] = torch.tensor(
        [1e4, -1e4, 0.0, 1e4 - 0.5, 1e4 - 3.0, -1e4 + 1.0, 9999.75, 5.0, -5.0,
         1e4, 1e4 - 20.0, -3e3, 3e3, 1e4 - 1.0, 0.5, -0.5, 1e4 - 0.25], dtype=dtype)
    rows["near88_16"] = torch.tensor(
        [88.0, -88.0, 88.5, 0.0, 87.0, 80.0, -80.0, 88.25, 1.0, -1.0, 60.0,
         88.0, 70.0, -100.0, 85.0, 88.125], dtype=dtype)
    r = torch.randn((15,), generator=gen, dtype=dtype)
    r[[1, 2, 9, 14]] = -1e30
    rows["neg1e30_mix15"] = r
    rows["mix_1e4_neg1e30_17"] = torch.tensor(
        [-1e30, 1e4, -1e30, 1e4 - 2.0, -1e4, -1e30, 0.0, 1e4 - 0.125, -1e30,
         3.0, 1e4 - 7.0, -1e30, -1e30, 1e4 - 1.0, 2.0, -1e30, 1e4 - 0.5], dtype=dtype)
    r = torch.randn((100,), generator=gen, dtype=dtype) * 30.0
    r[::7] = -inf
    rows["wide_some_neg_inf100"] = r
    return rows


def softmax_cases(gen, dt, dtype, out):
    for name, x in softmax_rows(gen, dtype).items():
        p = f"softmax/{name}/{dt}/"
        out[p + "x"] = np_of(x)
        put(out, p + "softmax", lambda t: torch.softmax(t, dim=-1), x)
        put(out, p + "log_softmax", lambda t: torch.log_softmax(t, dim=-1), x)
    # The fully -inf row: torch's NaN outputs, kept only to document that
    # constml deliberately differs (zeros / -inf) there.
    x = torch.full((16,), -math.inf, dtype=dtype)
    p = f"softmax/all_neg_inf/{dt}/"
    out[p + "x"] = np_of(x)
    out[p + "torch_softmax"] = np_of(torch.softmax(x, dim=-1))
    out[p + "torch_log_softmax"] = np_of(torch.log_softmax(x, dim=-1))


def activation_cases(gen, dt, dtype, out):
    grid = torch.linspace(-10.0, 10.0, 201, dtype=torch.float64).to(dtype)
    rand = uniform(gen, (100,), dtype, -10.0, 10.0)
    special = torch.tensor(
        [0.0, -0.0, 1e-4, -1e-4, 1e-7, -1e-7, 2.5e-3, -2.5e-3, 0.5, -0.5,
         9.0, -9.0, 9.5, -9.5, 15.0, -15.0, 30.0, -30.0, 80.0, -80.0,
         88.0, -88.0, 100.0, -100.0, 5.5, -5.5, 3.0, -3.0, 4.0, -4.0, 6.0, -6.0,
         7.0, -7.0],
        dtype=dtype)
    x = torch.cat([grid, rand, special])  # 335 values: not a multiple of the lanes
    p = f"act/{dt}/"
    out[p + "x"] = np_of(x)
    put(out, p + "relu", F.relu, x)
    put(out, p + "sigmoid", torch.sigmoid, x)
    put(out, p + "tanh", torch.tanh, x)
    put(out, p + "silu", F.silu, x)
    put(out, p + "gelu", lambda t: F.gelu(t, approximate="none"), x)
    put(out, p + "gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), x)


def dot_cases(gen, dt, dtype, out):
    for n in DOT_LENGTHS:
        a = uniform(gen, (n,), dtype)
        b = uniform(gen, (n,), dtype)
        p = f"dot/{n}/{dt}/"
        out[p + "a"] = np_of(a)
        out[p + "b"] = np_of(b)
        put(out, p + "out", lambda u, v: torch.dot(u, v).reshape(1), a, b)


def main():
    torch.set_num_threads(1)
    out = {}
    for i, (dt, dtype) in enumerate(DTYPES.items()):
        gen = torch.Generator().manual_seed(20_240_602 + i)
        gemm_cases(gen, dt, dtype, out)
        matvec_cases(gen, dt, dtype, out)
        softmax_cases(gen, dt, dtype, out)
        activation_cases(gen, dt, dtype, out)
        dot_cases(gen, dt, dtype, out)
    refvec.write(OUT, out, meta="gen_foundation.py; " + refvec.versions())
    print(f"{OUT}: {len(out) + 1} entries, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
