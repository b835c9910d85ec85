"""Reference vectors for the Q8_0 chapter (tests/q8_reference.rs).

For each llama2.c fixture of gen_llama.py (tests/reference/llama/{name}.bin,
f32, version 0) this script:

1. quantizes it into llama2.c's version-2 format exactly as llama2.c's
   export.py (`version2_export`, `quantize_q80`) does at the commit below:
   the group size starts at 64 and halves until it divides dim; each tensor is
   flattened into groups, scale = max|w| / 127 (float32), int8 = torch.round
   (half to even) of w / scale; an all-zero group gets scale 0 and zeros (the
   one case export.py leaves to NaN); header of 256 bytes ("24ka" magic,
   version 2, seven sizes, shared flag, group size); norms in f32; the Q8_0
   tensors (embedding, wq.., wk.., wv.., wo.., w1.., w2.., w3.., classifier if
   untied). Written to tests/reference/llama/{name}_q80.bin: the Rust exporter
   must produce these bytes.
2. computes the logits of the fixture's 16-token prompt (llama.bin) position by
   position with a numpy implementation of runq.c's arithmetic: the embedding
   row dequantized (q·s), every matrix product with the input row quantized per
   group (float32 scale max|x|/127, half away from zero), int32 group dots, and
   `val += (float)dot * s_w * s_x` in group order, all in float32; RMSNorm,
   attention and SwiGLU in float32; RoPE from a table computed in float64 and
   rounded to float32 (constml's; runq.c computes its angles in float32, which
   moves logits by ~1e-6).
3. builds llama2.c's runq.c (commit below, blob checked) in a temporary folder
   under /tmp with gcc, patched only to print every token id to stderr, and runs
   it at temperature 0 on the quantized fixture for three prompts: the tokens
   it generates are stored, with the smallest top-2 logit gap of the numpy
   reference along each run.

Entries (q8.bin):
  q8/{name}/group_size     i64 [1]
  q8/{name}/np_logits      f32 (16, vocab): numpy runq arithmetic, prompt_ids of llama.bin
  q8/{name}/run{j}/prompt  u8 text
  q8/{name}/run{j}/tokens  i64: runq's sequence (prompt tokens, then generated)
  q8/{name}/run{j}/n_prompt i64 [1]: how many of them are the prompt's
  q8/{name}/run{j}/min_gap f64 [1]: smallest top-2 gap (numpy) at the generated positions
  meta                     generator, llama2.c commit and runq.c blob, gcc, versions
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import refvec  # noqa: E402
from gen_llama import (BOS, FIXDIR, FIXTURES, LLAMA2C_COMMIT, encode, git_blob_sha,  # noqa: E402
                       print_token_ids, read_checkpoint)

RUNQ_BLOB_EXPECTED = "42360ae97c724d28e11ac4545e30f57b7a9c9a8e"  # runq.c at LLAMA2C_COMMIT
PROMPTS = ["hello world", "the end", "é日本"]
STEPS = 30


# ---------------------------------------------------------------- export.py version 2
def quantize_q80(w, group_size):
    """export.py's quantize_q80, with an all-zero group giving scale 0 and zeros."""
    w = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)).reshape(-1, group_size)
    wmax = torch.abs(w).max(dim=1).values
    scale = wmax / 127.0
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    quant = torch.where(scale[:, None] == 0, torch.zeros_like(w), w / safe[:, None])
    int8val = torch.round(quant).to(torch.int8)
    return int8val.numpy().reshape(-1), scale.numpy().astype(np.float32)


def export_v2(cfg, w, path):
    dim, hidden, L, nh, nkv, vocab, seq_len, shared = cfg
    gs = 64
    while dim % gs != 0:
        gs //= 2
    assert hidden % gs == 0
    out = bytearray(struct.pack("<I", 0x616B3432))
    out += struct.pack("<i", 2)
    out += struct.pack("<7i", dim, hidden, L, nh, nkv, vocab, seq_len)
    out += struct.pack("<B", int(shared))
    out += struct.pack("<i", gs)
    out += b"\0" * (256 - len(out))
    for name in ("rms_att", "rms_ffn", "rms_final"):
        out += np.ascontiguousarray(w[name], dtype="<f4").tobytes()
    tensors = [w["token_embedding"]]
    for name in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
        tensors += [w[name][l] for l in range(L)]
    if not shared:
        tensors.append(w["wcls"])
    q8 = []
    for t in tensors:
        q, s = quantize_q80(t, gs)
        out += q.astype(np.int8).tobytes()
        out += s.astype("<f4").tobytes()
        q8.append((q.astype(np.int32).reshape(t.shape), s))
    with open(path, "wb") as f:
        f.write(bytes(out))
    return gs, q8


# ---------------------------------------------------------------- runq.c arithmetic in numpy
def quantize_act(x, gs):
    """runq.c's quantize: float32 scale, C round() (half away from zero)."""
    x = x.astype(np.float32).reshape(-1, gs)
    wmax = np.abs(x).max(axis=1)
    scale = (wmax / np.float32(127.0)).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (x / scale[:, None]).astype(np.float32)
    v = np.where(scale[:, None] == 0, np.float32(0), v)
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int32)
    return q.reshape(-1), scale


def q8_matvec(wq, ws, x, gs):
    """runq.c's matmul: per row, float32 val += (float)ival * ws * xs in group order."""
    xq, xs = quantize_act(x, gs)
    rows, cols = wq.shape
    ng = cols // gs
    ival = (wq.reshape(rows, ng, gs) * xq.reshape(1, ng, gs)).sum(axis=2)  # exact int
    ws = ws.reshape(rows, ng)
    val = np.zeros(rows, dtype=np.float32)
    for g in range(ng):
        term = (ival[:, g].astype(np.float32) * ws[:, g]).astype(np.float32) * xs[g]
        val = (val + term.astype(np.float32)).astype(np.float32)
    return val


def np_runq_logits(cfg, gs, q8, w, ids):
    dim, hidden, L, nh, nkv, vocab, seq_len, shared = cfg
    hs = dim // nh
    kvd = nkv * hs
    rep = nh // nkv
    f32 = np.float32
    emb_q, emb_s = q8[0]
    mats = {}
    for i, name in enumerate(("wq", "wk", "wv", "wo", "w1", "w2", "w3")):
        for l in range(L):
            mats[(name, l)] = q8[1 + i * L + l]
    cls_q, cls_s = q8[-1] if not shared else q8[0]

    def rms(x, g):
        ss = f32(np.sum(x.astype(f32) * x.astype(f32), dtype=f32) / f32(dim) + f32(1e-5))
        return (g.astype(f32) * (f32(1.0) / np.sqrt(ss, dtype=f32) * x)).astype(f32)

    freq = 10000.0 ** (-np.arange(0, hs, 2, dtype=np.float64) / hs)
    kc = np.zeros((L, seq_len, kvd), dtype=f32)
    vc = np.zeros((L, seq_len, kvd), dtype=f32)
    out = []
    for pos, tok in enumerate(ids):
        x = (emb_q[tok].astype(f32) * np.repeat(emb_s.reshape(vocab, -1)[tok], gs)).astype(f32)
        cos = np.cos(pos * freq).astype(f32)
        sin = np.sin(pos * freq).astype(f32)

        def rope(v, n):
            v = v.reshape(n, hs // 2, 2).copy()
            a, b = v[..., 0].copy(), v[..., 1].copy()
            v[..., 0] = a * cos - b * sin
            v[..., 1] = a * sin + b * cos
            return v.reshape(-1).astype(f32)

        for l in range(L):
            xb = rms(x, w["rms_att"][l])
            q = rope(q8_matvec(*mats[("wq", l)], xb, gs), nh)
            k = rope(q8_matvec(*mats[("wk", l)], xb, gs), nkv)
            v = q8_matvec(*mats[("wv", l)], xb, gs)
            kc[l, pos], vc[l, pos] = k, v
            ctx = np.zeros(dim, dtype=f32)
            for h in range(nh):
                g = h // rep
                qh = q[h * hs:(h + 1) * hs]
                keys = kc[l, :pos + 1, g * hs:(g + 1) * hs]
                sc = (keys @ qh / np.sqrt(f32(hs))).astype(np.float64)
                sc = np.exp(sc - sc.max())
                sc /= sc.sum()
                ctx[h * hs:(h + 1) * hs] = (sc @ vc[l, :pos + 1, g * hs:(g + 1) * hs]).astype(f32)
            x = (x + q8_matvec(*mats[("wo", l)], ctx, gs)).astype(f32)
            xb = rms(x, w["rms_ffn"][l])
            h1 = q8_matvec(*mats[("w1", l)], xb, gs)
            h3 = q8_matvec(*mats[("w3", l)], xb, gs)
            hb = (h1 * (f32(1.0) / (f32(1.0) + np.exp(-h1))) * h3).astype(f32)
            x = (x + q8_matvec(*mats[("w2", l)], hb, gs)).astype(f32)
        xf = rms(x, w["rms_final"])
        out.append(q8_matvec(cls_q, cls_s, xf, gs))
    return np.stack(out)


# ---------------------------------------------------------------- runq.c
def build_runq(src_dir):
    src = open(os.path.join(src_dir, "runq.c"), "rb").read()
    blob = git_blob_sha(src)
    assert blob == RUNQ_BLOB_EXPECTED, f"runq.c blob {blob} is not the one of llama2.c {LLAMA2C_COMMIT}"
    tmp = tempfile.mkdtemp(prefix="llama2c-runq-", dir="/tmp")
    with open(os.path.join(tmp, "runq_ids.c"), "w") as f:
        f.write(print_token_ids(src.decode("utf-8")))
    subprocess.run(["gcc", "-O2", "-o", "runq_ids", "runq_ids.c", "-lm"], cwd=tmp, check=True)
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return tmp, blob, gcc


def run_runq(tmp, ckpt, tok_path, prompt):
    args = [ckpt, "-z", tok_path, "-t", "0", "-n", str(STEPS), "-i", prompt]
    r = subprocess.run([os.path.join(tmp, "runq_ids")] + args, capture_output=True, check=True)
    return [int(m) for m in re.findall(rb"@tok (-?\d+)", r.stderr)]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/llama2c-ref"
    tmp, blob, gcc = build_runq(src)
    tok_path = os.path.join(FIXDIR, "tokenizer.bin")
    llama = refvec_read(os.path.join(HERE, "llama.bin"))
    OUT = {}
    for name, *_ in FIXTURES:
        cfg, w = read_checkpoint(os.path.join(FIXDIR, f"{name}.bin"))
        qpath = os.path.join(FIXDIR, f"{name}_q80.bin")
        gs, q8 = export_v2(cfg, w, qpath)
        pre = f"q8/{name}"
        OUT[f"{pre}/group_size"] = np.array([gs], dtype=np.int64)
        ids = [int(v) for v in llama[f"llama/{name}/prompt_ids"]]
        lg = np_runq_logits(cfg, gs, q8, w, ids)
        OUT[f"{pre}/np_logits"] = lg.astype(np.float32)
        print(f"{name}: group size {gs}, {os.path.getsize(qpath)} bytes (f32: "
              f"{os.path.getsize(os.path.join(FIXDIR, name + '.bin'))})")
        for j, prompt in enumerate(PROMPTS):
            toks = run_runq(tmp, qpath, tok_path, prompt)
            stopped = toks[-1] == BOS and len(toks) > 1
            seq = toks[:-1] if stopped else toks
            ptoks = encode(prompt, True)
            assert seq[:len(ptoks)] == ptoks, (name, j, seq, ptoks)
            glg = np_runq_logits(cfg, gs, q8, w, seq[:STEPS])
            gaps = []
            for pos in range(len(ptoks) - 1, len(toks) - 1):
                row = glg[pos]
                order = np.argsort(-row)
                gaps.append(float(row[order[0]] - row[order[1]]))
                if gaps[-1] > 1e-3:
                    assert order[0] == toks[pos + 1], (name, j, pos, order[:2], toks[pos + 1])
            rp = f"{pre}/run{j}"
            OUT[f"{rp}/prompt"] = refvec.text(prompt)
            OUT[f"{rp}/tokens"] = np.array(seq, dtype=np.int64)
            OUT[f"{rp}/n_prompt"] = np.array([len(ptoks)], dtype=np.int64)
            OUT[f"{rp}/min_gap"] = np.array([min(gaps)], dtype=np.float64)
            print(f"  run{j} {prompt!r}: {len(seq)} tokens, stopped at BOS {stopped}, min top-2 gap {min(gaps):.4f}")
    shutil.rmtree(tmp)
    meta = (f"tests/reference/gen_q8.py; llama2.c {LLAMA2C_COMMIT} (runq.c blob {blob}); {gcc}; "
            f"{refvec.versions()}")
    outp = os.path.join(HERE, "q8.bin")
    refvec.write(outp, OUT, meta=meta)
    print(f"wrote {outp}: {len(OUT) + 1} entries, {os.path.getsize(outp)} bytes")


def refvec_read(path):
    """A minimal CMLREF01 reader (name -> numpy array)."""
    b = open(path, "rb").read()
    assert b[:8] == b"CMLREF01"
    (n,) = struct.unpack_from("<I", b, 8)
    at, out = 12, {}
    types = {1: "<f4", 2: "<f8", 3: "<i8", 4: "u1"}
    for _ in range(n):
        (nl,) = struct.unpack_from("<H", b, at)
        at += 2
        name = b[at:at + nl].decode()
        at += nl
        dt, nd = b[at], b[at + 1]
        at += 2
        dims = struct.unpack_from(f"<{nd}I", b, at)
        at += 4 * nd
        cnt = int(np.prod(dims)) if nd else 1
        a = np.frombuffer(b, dtype=types[dt], count=cnt, offset=at).reshape(dims)
        at += a.nbytes
        out[name] = a
    return out


if __name__ == "__main__":
    main()
