"""Decode speed of constml's `llama2c` example against llama2.c's own `run`
on the 15M configuration (dim 288, hidden 768, 6 layers, 6 heads, vocabulary
32 000, context 256) with random weights, single thread, same machine, same
run.

Usage (from the repository root):

    python3 benches/llama2c_peer.py --run /path/to/llama2.c/run [--runq /path/to/runq] [--rounds 5]

`--run` is llama2.c's `run` binary, built by you from its public repository,
e.g. `gcc -Ofast -march=native -o run run.c -lm` (this script builds nothing
and copies nothing from it). The script writes a random checkpoint and a
synthetic 32 000-piece tokenizer into a temporary folder, builds the example
(`cargo build --release --example llama2c`), then runs both programs
alternately at temperature 0 for 256 positions from an empty prompt
(`-t 0 -n 256 -i ""`), `--rounds` times each, and prints the median of the
"achieved tok/s" each program reports on stderr (both count the decode
steps after the first). It also checks that both printed the same text:
greedy decoding of the same weights must agree.

With `--runq` (llama2.c's `runq`, built the same way from `runq.c`) it also
quantizes the checkpoint to llama2.c's version-2 Q8_0 format (group size 32,
as `export.py` picks for dim 288: scale = max|w| / 127 in float32, values
rounded half to even) and races `runq` against constml's `llama2c` on that
file. Their texts are compared and reported, not required equal: the two sum
each row's groups in different orders, so on random weights a near-tie can
pick another token.
"""

import argparse
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile

import numpy as np

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ = 288, 768, 6, 6, 6, 32000, 256


def write_checkpoint(path, seed=7):
    rng = np.random.default_rng(seed)
    hs = DIM // HEADS
    kv = KV_HEADS * hs

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * scale).astype("<f4")

    with open(path, "wb") as f:
        f.write(struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ))
        f.write(mat(VOCAB, DIM, 1.0).tobytes())
        f.write((1 + 0.1 * rng.standard_normal((LAYERS, DIM))).astype("<f4").tobytes())
        for rows, cols in [(DIM, DIM), (kv, DIM), (kv, DIM), (DIM, DIM)]:
            f.write(np.concatenate([mat(rows, cols, 1.5 / cols**0.5) for _ in range(LAYERS)]).tobytes())
        f.write((1 + 0.1 * rng.standard_normal((LAYERS, DIM))).astype("<f4").tobytes())
        for rows, cols in [(HIDDEN, DIM), (DIM, HIDDEN), (HIDDEN, DIM)]:
            f.write(np.concatenate([mat(rows, cols, 1.5 / cols**0.5) for _ in range(LAYERS)]).tobytes())
        f.write((1 + 0.1 * rng.standard_normal(DIM)).astype("<f4").tobytes())
        pos = np.arange(SEQ)[:, None]
        freqs = 10000.0 ** (-np.arange(0, hs, 2) / hs)
        f.write(np.cos(pos * freqs).astype("<f4").tobytes())
        f.write(np.sin(pos * freqs).astype("<f4").tobytes())


def write_tokenizer(path, seed=8):
    rng = np.random.default_rng(seed)
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % b for b in range(256)]
    seen = set(pieces)
    letters = b"abcdefghijklmnopqrstuvwxyz"
    while len(pieces) < VOCAB:
        n = int(rng.integers(1, 8))
        p = (b" " if rng.random() < 0.5 else b"") + bytes(letters[i] for i in rng.integers(0, 26, n))
        if p not in seen:
            seen.add(p)
            pieces.append(p)
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for i, p in enumerate(pieces):
            f.write(struct.pack("<fi", -float(i), len(p)))
            f.write(p)


def write_q80(src, dst, gs=32):
    """The version-2 (Q8_0) export of the f32 checkpoint `src`."""
    data = open(src, "rb").read()
    f = np.frombuffer(data, dtype="<f4", offset=28)
    hs = DIM // HEADS
    kv = KV_HEADS * hs
    sizes = [("emb", VOCAB * DIM), ("rms_att", LAYERS * DIM), ("wq", LAYERS * DIM * DIM),
             ("wk", LAYERS * kv * DIM), ("wv", LAYERS * kv * DIM), ("wo", LAYERS * DIM * DIM),
             ("rms_ffn", LAYERS * DIM), ("w1", LAYERS * HIDDEN * DIM), ("w2", LAYERS * DIM * HIDDEN),
             ("w3", LAYERS * HIDDEN * DIM), ("rms_final", DIM)]
    w, off = {}, 0
    for name, n in sizes:
        w[name] = f[off:off + n]
        off += n

    def q80(t):
        t = t.astype(np.float32).reshape(-1, gs)
        scale = (np.abs(t).max(axis=1) / np.float32(127.0)).astype(np.float32)
        safe = np.where(scale == 0, np.float32(1), scale)
        q = np.where(scale[:, None] == 0, 0, np.round(t / safe[:, None])).astype(np.int8)
        return q.tobytes() + scale.astype("<f4").tobytes()

    out = bytearray(struct.pack("<Ii", 0x616B3432, 2))
    out += struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ)
    out += struct.pack("<Bi", 1, gs)
    out += b"\0" * (256 - len(out))
    for name in ("rms_att", "rms_ffn", "rms_final"):
        out += w[name].astype("<f4").tobytes()
    out += q80(w["emb"])
    for name, per in (("wq", DIM * DIM), ("wk", kv * DIM), ("wv", kv * DIM), ("wo", DIM * DIM),
                      ("w1", HIDDEN * DIM), ("w2", DIM * HIDDEN), ("w3", HIDDEN * DIM)):
        for l in range(LAYERS):
            out += q80(w[name][l * per:(l + 1) * per])
    with open(dst, "wb") as fo:
        fo.write(bytes(out))


def race(pairs, args, rounds):
    """Runs the programs alternately; tok/s per program and their first outputs."""
    results = {name: [] for name, _ in pairs}
    outputs = {}
    for _ in range(rounds):
        for name, exe in pairs:
            p = subprocess.run([exe] + args, capture_output=True, check=True)
            results[name].append(tok_s(p.stderr))
            outputs.setdefault(name, p.stdout)
    for name, v in results.items():
        print(f"  {name:16s} median {statistics.median(v):7.1f} tok/s  (all: {', '.join(f'{x:.1f}' for x in v)})")
    return results, outputs


def tok_s(stderr):
    m = re.search(rb"achieved tok/s: ([0-9.]+)", stderr)
    if not m:
        sys.exit("no 'achieved tok/s' line in:\n" + stderr.decode(errors="replace"))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="llama2.c's run binary")
    ap.add_argument("--runq", help="llama2.c's runq binary (optional: adds the Q8_0 race)")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--example", "llama2c"], check=True)
    ours = os.path.join("target", "release", "examples", "llama2c")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, tok = os.path.join(tmp, "model.bin"), os.path.join(tmp, "tokenizer.bin")
        write_checkpoint(ckpt)
        write_tokenizer(tok)
        args = [ckpt, "-z", tok, "-t", "0", "-n", str(SEQ), "-i", ""]
        print(f"15M configuration, random weights, -t 0 -n {SEQ}, {a.rounds} alternating rounds")
        results, outputs = race([("llama2.c run", a.run), ("constml llama2c", ours)], args, a.rounds)
        same = outputs["llama2.c run"] == outputs["constml llama2c"]
        ratio = statistics.median(results["constml llama2c"]) / statistics.median(results["llama2.c run"])
        print(f"  constml / llama2.c: {ratio:.2f}x; same generated text: {same}")
        if not same:
            sys.exit("the two programs printed different text")
        if a.runq:
            q = os.path.join(tmp, "model_q80.bin")
            write_q80(ckpt, q)
            print(f"Q8_0 (version 2, group size 32, {os.path.getsize(q) / 1e6:.1f} MB), same settings")
            qres, qout = race([("llama2.c runq", a.runq), ("constml llama2c", ours)], [q] + args[1:], a.rounds)
            qa, qb = qout["llama2.c runq"], qout["constml llama2c"]
            agree = next((i for i in range(min(len(qa), len(qb))) if qa[i] != qb[i]), min(len(qa), len(qb)))
            qratio = statistics.median(qres["constml llama2c"]) / statistics.median(qres["llama2.c runq"])
            print(f"  constml / llama2.c runq: {qratio:.2f}x; same text: {qa == qb} "
                  f"(first {agree} of {len(qa)} bytes agree)")
            print(f"  constml Q8_0 / constml f32: "
                  f"{statistics.median(qres['constml llama2c']) / statistics.median(results['constml llama2c']):.2f}x")


if __name__ == "__main__":
    main()
