"""Reference vectors for the `story` model, from the exported files.

    python3 examples/story/reference.py     (train.py also runs it at the end)

Reloads examples/story/model.bin and tokenizer.bin into train.py's PyTorch
model (not the in-memory one from training, so a wrong export would show),
and writes tests/reference/story.bin (CMLREF01, see tests/reference/refvec.py):

    story/prompt       u8: PROMPT below, UTF-8
    story/prompt_ids   i64 (T,): BOS then the llama2.c-rule encoding of the
                       prompt (dummy " " prefix included)
    story/logits       f32 (T, vocab): the model's logits after each prompt
                       position (row t sees positions 0..t)
    story/greedy_ids   i64: the prompt ids followed by SAMPLE_STEPS greedy
                       (argmax) tokens, fewer if BOS (end of paragraph) is
                       chosen first; BOS itself is not included
    meta               u8: generator and library versions

Before writing, the logits are checked against an independent float64
NumPy forward pass that reads the file's tensors directly and follows
llama2.c's run.c (one position at a time, a key/value cache, RoPE angles
recomputed rather than taken from the file's tables).
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

import refvec  # noqa: E402
import train as story  # noqa: E402

OUT = os.path.join(ROOT, "tests", "reference", "story.bin")
PROMPT = "Once upon a time"
SAMPLE_STEPS = 60


def numpy_forward(cfg, w, ids):
    """Logits (T, vocab) in float64, position by position as run.c does."""
    dim, hs = cfg.dim, cfg.dim // cfg.n_heads
    group = cfg.n_heads // cfg.n_kv_heads
    w = {k: v.astype(np.float64) for k, v in w.items()}

    def rms(x, g):
        return g * x / np.sqrt(np.mean(x * x) + 1e-5)

    inv = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)

    def rope(v, pos):  # v (heads * hs,), interleaved pairs inside each head
        pairs = v.reshape(-1, hs // 2, 2)
        c, s = np.cos(pos * inv), np.sin(pos * inv)
        a, b = pairs[..., 0], pairs[..., 1]
        return np.stack((a * c - b * s, a * s + b * c), axis=-1).reshape(-1)

    keys = [[] for _ in range(cfg.n_layers)]
    values = [[] for _ in range(cfg.n_layers)]
    out = []
    for pos, tok in enumerate(ids):
        x = w["token_embedding"][tok].copy()
        for l in range(cfg.n_layers):
            xb = rms(x, w["rms_att"][l])
            q = rope(w["wq"][l] @ xb, pos)
            keys[l].append(rope(w["wk"][l] @ xb, pos))
            values[l].append(w["wv"][l] @ xb)
            K = np.stack(keys[l]).reshape(pos + 1, cfg.n_kv_heads, hs)
            V = np.stack(values[l]).reshape(pos + 1, cfg.n_kv_heads, hs)
            heads = []
            for h in range(cfg.n_heads):
                qh = q[h * hs:(h + 1) * hs]
                att = K[:, h // group, :] @ qh / np.sqrt(hs)
                att = np.exp(att - att.max())
                att /= att.sum()
                heads.append(att @ V[:, h // group, :])
            x = x + w["wo"][l] @ np.concatenate(heads)
            xb = rms(x, w["rms_ffn"][l])
            gate = w["w1"][l] @ xb
            x = x + w["w2"][l] @ (gate / (1.0 + np.exp(-gate)) * (w["w3"][l] @ xb))
        out.append(w["token_embedding"] @ rms(x, w["rms_final"]))
    return np.stack(out)


@torch.no_grad()
def greedy(model, ids, steps):
    """Argmax continuation of `ids` for up to `steps` tokens (whole-sequence
    recomputation each step); stops before a BOS. Also returns the smallest
    gap between the best and second-best logit met on the way."""
    ids = list(ids)
    min_gap = float("inf")
    for _ in range(steps):
        if len(ids) >= model.cfg.seq_len:
            break
        row = model(torch.tensor([ids]))[0, -1]
        top = torch.topk(row, 2)
        min_gap = min(min_gap, float(top.values[0] - top.values[1]))
        nxt = int(top.indices[0])
        if nxt == story.BOS:
            break
        ids.append(nxt)
    return ids, min_gap


def main():
    torch.set_num_threads(2)
    model, w = story.model_from_checkpoint(story.MODEL_PATH)
    cfg = model.cfg
    pieces, scores = story.read_tokenizer(story.TOKENIZER_PATH, cfg.vocab_size)
    tok = story.Llama2cTokenizer(pieces, scores)

    ids = tok.encode(PROMPT, bos=True)
    assert ids == tok.encode_slow(PROMPT, bos=True)
    assert tok.decode(ids[1:]) == PROMPT
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0].numpy().astype(np.float32)
    check = numpy_forward(cfg, w, ids)
    err = float(np.abs(check - logits).max())
    assert err < 1e-4, f"PyTorch and the float64 run.c-style forward differ by {err}"

    seq, min_gap = greedy(model, ids, SAMPLE_STEPS)
    sample = tok.decode(seq[1:])
    print(f"prompt {PROMPT!r} -> ids {ids}")
    print(f"logits {logits.shape}, max |PyTorch - float64 NumPy| = {err:.2e}")
    print(f"greedy ({len(seq) - len(ids)} tokens, smallest top-2 logit gap {min_gap:.4f}):")
    print(sample)

    refvec.write(
        OUT,
        {
            "story/prompt": refvec.text(PROMPT),
            "story/prompt_ids": np.array(ids, dtype=np.int64),
            "story/logits": logits,
            "story/greedy_ids": np.array(seq, dtype=np.int64),
        },
        meta="examples/story/reference.py; " + refvec.versions(),
    )
    print(f"wrote {OUT}")
    return dict(prompt=PROMPT, prompt_ids=ids, sample=sample, sample_steps=SAMPLE_STEPS,
                greedy_tokens=len(seq) - len(ids), min_gap=min_gap)


if __name__ == "__main__":
    main()
