"""Reference fixtures for constml's Llama / llama2.c port (src/models/llama.rs,
src/models/tokenizer.rs): two tiny checkpoints and a tokenizer in llama2.c's
file formats, and tests/reference/llama.bin (CMLREF01, see refvec.py) holding
tokenizer encodings, Hugging Face logits and greedy runs of llama2.c's `run`.

Run from the repository root:

    git clone https://github.com/karpathy/llama2.c /tmp/llama2c-src
    git -C /tmp/llama2c-src checkout 350e04fe35433e6d2941dce5a1f53308f87058eb
    python3 tests/reference/gen_llama.py [--llama2c /tmp/llama2c-src]

--llama2c is a folder holding llama2.c's run.c (default /tmp/llama2c-ref); the
script checks that its git blob hash is the one of that commit, copies it into
a fresh temporary folder under /tmp and compiles it there with gcc (nothing of
llama2.c is written into the repository). Writes:

    tests/reference/llama/tokenizer.bin
    tests/reference/llama/tiny_shared.bin
    tests/reference/llama/tiny_gqa.bin
    tests/reference/llama.bin

==========================================================================
Checkpoint format (llama2.c's "legacy" / version-0 export, the layout that
run.c's read_checkpoint + memory_map_weights reads; checked against run.c and
export.py's legacy_export at the commit above). All little-endian:

    7 x i32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
                    vocab_size, seq_len
        vocab_size > 0: the classifier is the token embedding (shared);
        vocab_size < 0: |vocab_size| is the vocabulary and an untied
                        classifier wcls follows at the very end.
    f32 tensors, row-major, in this order (head_size = dim / n_heads,
    kv_dim = n_kv_heads * head_size, L = n_layers, each matrix stored as
    (out_features, in_features), i.e. y = W x):
        token_embedding  (vocab, dim)
        rms_att          (L, dim)
        wq               (L, dim, dim)         rows = n_heads * head_size
        wk               (L, kv_dim, dim)
        wv               (L, kv_dim, dim)
        wo               (L, dim, dim)         cols = n_heads * head_size
        rms_ffn          (L, dim)
        w1               (L, hidden, dim)      gate
        w2               (L, dim, hidden)      down
        w3               (L, hidden, dim)      up
        rms_final        (dim,)
        freq_cis_real    (seq_len, head_size/2)   cos(pos * f_i)
        freq_cis_imag    (seq_len, head_size/2)   sin(pos * f_i)
        wcls             (vocab, dim)          only when untied
    with f_i = 1 / 10000^(2i / head_size), computed in float32 as llama2.c's
    model.py does (run.c skips both tables and recomputes the angles itself).

The two checkpoints (vocab = the tokenizer's size, 423):

    tiny_shared.bin  dim 32, hidden 64, n_layers 2, n_heads 4, n_kv_heads 4,
                     seq_len 64, shared classifier      (header vocab +423)
    tiny_gqa.bin     dim 24, hidden 48, n_layers 2, n_heads 6, n_kv_heads 2,
                     seq_len 40, untied classifier      (header vocab -423)
    (tiny_gqa has head_size 4 and 3 query heads per kv head; dim 24 rather
    than 48 keeps the file, with its second vocab x dim table, well under
    200 KB.)

Weights: torch.manual_seed(seed) (20250101 for tiny_shared, 20250202 for
tiny_gqa), then drawn in float32 with torch.randn in the file order above:
token_embedding 0.5*N; rms_att 1 + 0.1*N; wq, wk, wv, wo 1.5*N/sqrt(fan_in);
rms_ffn 1 + 0.1*N; w1, w2, w3 1.5*N/sqrt(fan_in); rms_final 1 + 0.1*N; wcls
0.5*N (tiny_gqa only). fan_in = the matrix's column count. Every tensor of a
kind is drawn for all layers at once, shape (L, rows, cols).

The forward pass (run.c's `forward`, one token at position pos):
    x = token_embedding[token]
    per layer l:
        xb = rmsnorm(x, rms_att[l]); q = wq[l] xb; k = wk[l] xb; v = wv[l] xb
        RoPE on q (every head) and k (every kv head), INTERLEAVED pairs:
            for each pair (2i, 2i+1) inside a head, angle = pos * f_i,
            (a, b) -> (a cos - b sin, a sin + b cos)
        k, v appended to the layer's cache; query head h attends to kv head
        h / (n_heads / n_kv_heads) (integer division) over positions 0..pos,
        scores q.k / sqrt(head_size), softmax, weighted sum of v
        x += wo[l] (concatenated heads)
        xb = rmsnorm(x, rms_ffn[l]); x += w2[l] (silu(w1[l] xb) * (w3[l] xb))
    logits = wcls rmsnorm(x, rms_final)     (wcls = token_embedding if shared)
    rmsnorm(x, w) = w * x / sqrt(mean(x^2) + 1e-5)

==========================================================================
Tokenizer format (run.c's build_tokenizer; the file does not store the count,
it reads exactly the model's vocab_size entries), little-endian:
    i32 max_token_length (the longest piece in bytes, here 7: " 日本")
    per token id 0..vocab-1: f32 score, i32 n (byte length), n bytes (UTF-8,
    no terminator)

Vocabulary of tests/reference/llama/tokenizer.bin (423 pieces):
    0            "<unk>"
    1            "\\n<s>\\n"     (BOS; llama2.c's tokenizer.bin spells it so)
    2            "\\n</s>\\n"    (EOS)
    3 .. 258     "<0x00>" .. "<0xFF>"  byte pieces, id = byte + 3
    259 .. 353   the 95 printable ASCII characters " " .. "~" in code order
    354 .. 358   "é", "ü", "日", "本", "€"
    359 .. 422   64 merged pieces, see MERGES below
Scores: ids 0..358 score 0.0 (a merge can never produce a single character,
so their scores are never compared). Merged pieces score -rank (rank 1, 2, ...
in the MERGES order; higher score = merged earlier) with two deliberate exact
ties: "es" and "st" both -16, "ou" and "nd" both -21 ("oun" at -20 scores
above "nd", so merging "ou" first changes the outcome). Ties also arise
between equal pieces at different places (e.g. "  " twice in "   d..."). Every score is an
integer, exact in f32. All pieces are distinct.

Encoding (llama2.c's encode(text, bos, eos=0)), the rules the Python
reference below implements:
    1. optional BOS id 1;
    2. if text is non-empty, a dummy prefix: the id of " " (259);
    3. per UTF-8 code point: its piece's id if the code point is a piece,
       else one id per byte, byte + 3 (byte fallback);
    4. repeatedly: among adjacent pairs (a, b) whose concatenated strings
       piece(a)+piece(b) is a piece, take the one with the strictly highest
       score, the LEFTMOST on ties; replace the pair by that piece; until no
       pair is a piece. (BOS takes part in pair lookup but never forms a
       piece here.)
Decoding (llama2.c's decode(prev, id)): the piece of id; if prev is BOS (1)
and the piece starts with " ", drop that space; a byte piece "<0xXX>" becomes
the single byte 0xXX (in this vocabulary only byte pieces begin with "<0x").
The printing filter of `run` (safe_printf): print nothing for an empty piece
or for a one-byte piece whose byte is neither printable ASCII (0x20..0x7E)
nor whitespace (0x09..0x0D, 0x20) (run.c calls isprint/isspace in the C
locale, so bytes >= 0x80 from byte pieces are dropped); otherwise the piece's
bytes. The checks below assert that this rule reproduces run's stdout.

==========================================================================
Entries of tests/reference/llama.bin (i64 ids, f32 logits, u8 text):

tok/cases            u8: the test strings (UTF-8) joined by "\\x1f" (unit
                     separator, absent from all of them); string k is the
                     k-th field (0-based), field 0 is the empty string.
tok/{k}/bos          i64: encode(string k, bos=1, eos=0)
tok/{k}/nobos        i64: encode(string k, bos=0, eos=0)
tok/{k}/decoded      u8: concatenation of decode(prev, id) over the ids of
                     tok/{k}/nobos, prev starting at BOS (1) and then the
                     previous id; raw bytes, no printing filter. (For every
                     string here this is the string itself: the space
                     dropped after BOS is the dummy prefix's.)
  Strings (k): 0 "", 1 "hello world", 2 "the theater and the end",
  3 "best test" (tie "es"/"st"), 4 "sound found" (tie "ou"/"nd"),
  5 "é日本€", 6 "ß", 7 "🙂", 8 "a\\tb", 9 "  double  spaces",
  10 " the start", 11 "Hello World\\n", 12 a 200-code-point mix (see MIX).
  Strings 3, 4 and 9 encode differently if ties went to the rightmost pair
  (checked below).

llama/{f}/config     i64 [dim, hidden_dim, n_layers, n_heads, n_kv_heads,
                     vocab_size, seq_len, shared (1/0)]; f in tiny_shared,
                     tiny_gqa.
llama/{f}/prompt_ids i64 (16,): BOS then 15 ids drawn with numpy
                     default_rng(7 + fixture index).integers(3, vocab).
llama/{f}/hf_logits  f32 (16, vocab): transformers LlamaForCausalLM in
                     float32 (rms_norm_eps 1e-5, rope_theta 10000, silu, no
                     biases, tie_word_embeddings = shared,
                     max_position_embeddings = seq_len, eager attention) on
                     prompt_ids; row t = logits after positions 0..t.
                     Hugging Face rotates half-split pairs (i, i + head_size/2),
                     so each layer's wq / wk rows are permuted per head from
                     llama2.c's interleaved order: HF row h*hs + j*hs/2 + i
                     = llama2.c row h*hs + 2i + j (j in {0, 1}); this is
                     export.py's permute_original. Checked against an
                     independent float64 numpy forward of the llama2.c layout
                     (interleaved RoPE, as run.c): max |diff| <= 1e-4.
llama/{f}/run{j}/prompt  u8: the prompt passed to `run -i`; j = 0, 1, 2 for
                     "hello world", "the end", "é日本".
llama/{f}/run{j}/tokens  i64: the sequence run.c steps through: the prompt's
                     encode(bos=1) ids followed by the greedy tokens, up to
                     the stop. `run <ckpt> -z tokenizer.bin -t 0 -n 30 -i P`
                     makes 30 forward calls (positions 0..29; -n counts the
                     prompt tokens including BOS), so without a stop the
                     sequence has 31 ids (the last is printed, never
                     forwarded). If BOS (1) is chosen, run stops without
                     printing it and it is not included here.
llama/{f}/run{j}/info    i64 [steps (30), number of prompt tokens incl. BOS,
                     stopped_at_bos (1/0)].
llama/{f}/run{j}/stdout  u8: run's entire stdout: decode(prev, next) through
                     the printing filter for every step, prompt tokens
                     included (the prompt is echoed, its leading space
                     dropped), then one "\\n". The "achieved tok/s" line
                     goes to stderr and is not part of it.
meta                 u8: generator, llama2.c commit and run.c blob, gcc and
                     library versions.

Checks made before writing: checkpoints are read back with an independent
parser and compared with the drawn tensors; the Python encoder/decoder agree
with run.c's own encode/decode (a small C harness compiled with run.c under
-DTESTING) on every tok/ string, with and without BOS; HF logits agree with
the numpy float64 forward to 1e-4; every greedy token of every run equals the
argmax of the numpy float64 forward along the run's sequence, the top-2 gap
there is > 1e-3 (the smallest is printed); the patched `run` (which also
prints token ids to stderr) writes the same stdout as the unpatched one, and
that stdout equals the filter applied to the decoded sequence.
"""
import argparse
import hashlib
import math
import os
import re
import shutil
import subprocess
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

torch.set_num_threads(1)
torch.set_grad_enabled(False)

LLAMA2C_COMMIT = "350e04fe35433e6d2941dce5a1f53308f87058eb"
RUNC_BLOB_EXPECTED = "2fcd687a7cb637c1a3e503d3e32de336f5b7edb9"  # git blob of run.c at that commit

HERE = os.path.dirname(os.path.abspath(__file__))
FIXDIR = os.path.join(HERE, "llama")
BOS = 1
SEP = "\x1f"

# ---------------------------------------------------------------- vocabulary
SPECIAL = ["<unk>", "\n<s>\n", "\n</s>\n"]
BYTE_PIECES = [f"<0x{b:02X}>" for b in range(256)]
ASCII = [chr(c) for c in range(0x20, 0x7F)]
MULTI = ["é", "ü", "日", "本", "€"]
# Merged pieces in priority order; a tuple is a group with one shared score.
MERGES = [
    "th", "he", "in", "er", "an", "or", "wor", " t", "re", "on",
    "the", " th", " the", "at", "en", ("es", "st"), "ing", " s", " w", "oun",
    ("ou", "nd"), "is", " i", "it", "of", " o", " of", "to", " to", "ed",
    "ll", "el", "hel", "hell", "hello", " hello", " in", " a", "and", " and",
    "ld", "world", " world", "日本", "  ", " d", " e", " en", " end", "ar",
    "le", "ve", "ce", "ea", "ter", " b", "ét", " é", " 日本", " h",
    "ch", "sh",
]


def build_vocab():
    pieces, scores = [], []
    for p in SPECIAL + BYTE_PIECES + ASCII + MULTI:
        pieces.append(p)
        scores.append(0.0)
    rank = 0
    for group in MERGES:
        rank += 1
        for p in (group if isinstance(group, tuple) else (group,)):
            pieces.append(p)
            scores.append(-float(rank))
    assert len(set(pieces)) == len(pieces), "duplicate piece"
    for p in pieces[359:]:
        assert len(p) >= 2, p  # merged pieces are never single code points
    return pieces, np.array(scores, dtype=np.float32)


PIECES, SCORES = build_vocab()
VOCAB = len(PIECES)
PIECE_ID = {p: i for i, p in enumerate(PIECES)}
PIECE_BYTES = [p.encode("utf-8") for p in PIECES]
MAX_TOKEN_LENGTH = max(len(b) for b in PIECE_BYTES)


def write_tokenizer(path):
    out = bytearray(struct.pack("<i", MAX_TOKEN_LENGTH))
    for b, s in zip(PIECE_BYTES, SCORES):
        out += struct.pack("<fi", float(s), len(b)) + b
    with open(path, "wb") as f:
        f.write(bytes(out))


# ---------------------------------------------------------------- reference encoder / decoder
BYTES_ID = {b: i for i, b in enumerate(PIECE_BYTES)}


def encode(text, bos, leftmost=True, events=None):
    """llama2.c's encoding rules (see the docstring), written from the rules.
    leftmost=False breaks score ties to the right instead (only used to show
    that the tie strings depend on the rule). events, if a list, collects the
    tie situations: (string, distinct tied pieces)."""
    ids = [BOS] if bos else []
    if text:
        ids.append(PIECE_ID[" "])
    for ch in text:
        if ch in PIECE_ID:
            ids.append(PIECE_ID[ch])
        else:
            ids.extend(b + 3 for b in ch.encode("utf-8"))
    while True:
        cands = []
        for i in range(len(ids) - 1):
            j = BYTES_ID.get(PIECE_BYTES[ids[i]] + PIECE_BYTES[ids[i + 1]])
            if j is not None:
                cands.append((float(SCORES[j]), i, j))
        if not cands:
            break
        best = max(c[0] for c in cands)
        top = [c for c in cands if c[0] == best]
        if events is not None and len(top) > 1:
            events.append((text, tuple(PIECES[c[2]] for c in top)))
        _, i, j = top[0] if leftmost else top[-1]
        ids[i:i + 2] = [j]
    return ids


BYTE_PIECE_RE = re.compile(rb"^<0x([0-9A-F]{2})>$")


def decode(prev, tok):
    b = PIECE_BYTES[tok]
    if prev == BOS and b.startswith(b" "):
        b = b[1:]
    m = BYTE_PIECE_RE.match(b)
    if m:
        b = bytes([int(m.group(1), 16)])
    return b


def decode_seq(ids, prev=BOS):
    out = bytearray()
    for t in ids:
        out += decode(prev, t)
        prev = t
    return bytes(out)


def printed(piece):
    """run.c's safe_printf in the C locale (pieces are C strings: up to NUL)."""
    piece = piece.split(b"\0")[0]
    if not piece:
        return b""
    if len(piece) == 1:
        c = piece[0]
        if not (0x20 <= c <= 0x7E or 0x09 <= c <= 0x0D):
            return b""
    return piece


MIX = ("hello world! the theater and the end.\nTab\there, ß and 🙂 (4 bytes), "
       "é日本€ ü; best test sound found  double  spaces "
       "<0x41> 0123456789 #$%&*+=?@[]^_{|}~ `'\" WORLD hello\n"
       "of to in is it at on, and the end!!")
assert len(MIX) == 200, len(MIX)

CASES = ["", "hello world", "the theater and the end", "best test", "sound found", "é日本€", "ß", "🙂",
         "a\tb", "  double  spaces", " the start", "Hello World\n", MIX]
assert not any(SEP in c for c in CASES)

# ---------------------------------------------------------------- checkpoints
FIXTURES = [
    # name, dim, hidden, n_layers, n_heads, n_kv_heads, seq_len, shared, seed
    ("tiny_shared", 32, 64, 2, 4, 4, 64, True, 20250101),
    ("tiny_gqa", 24, 48, 2, 6, 2, 40, False, 20250202),
]
TENSOR_ORDER = ["token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final",
                "freq_cis_real", "freq_cis_imag", "wcls"]


def shapes(dim, hidden, L, nh, nkv, vocab, seq_len, shared):
    hs = dim // nh
    kv = nkv * hs
    s = {"token_embedding": (vocab, dim), "rms_att": (L, dim), "wq": (L, nh * hs, dim), "wk": (L, kv, dim),
         "wv": (L, kv, dim), "wo": (L, dim, nh * hs), "rms_ffn": (L, dim), "w1": (L, hidden, dim),
         "w2": (L, dim, hidden), "w3": (L, hidden, dim), "rms_final": (dim,), "freq_cis_real": (seq_len, hs // 2),
         "freq_cis_imag": (seq_len, hs // 2)}
    if not shared:
        s["wcls"] = (vocab, dim)
    return s


def draw_weights(dim, hidden, L, nh, nkv, vocab, seq_len, shared, seed):
    torch.manual_seed(seed)
    sh = shapes(dim, hidden, L, nh, nkv, vocab, seq_len, shared)
    w = {}
    for name in TENSOR_ORDER:
        if name not in sh or name.startswith("freq"):
            continue
        shape = sh[name]
        n = torch.randn(*shape, dtype=torch.float32)
        if name in ("token_embedding", "wcls"):
            t = 0.5 * n
        elif name.startswith("rms"):
            t = 1.0 + 0.1 * n
        else:
            t = n * (1.5 / math.sqrt(shape[-1]))
        w[name] = t.numpy()
    hs = dim // nh
    # As llama2.c's model.py precompute_freqs_cis, in float32.
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hs, 2)[: hs // 2].float() / hs))
    ang = torch.outer(torch.arange(seq_len).float(), freqs).float()
    w["freq_cis_real"] = torch.cos(ang).numpy()
    w["freq_cis_imag"] = torch.sin(ang).numpy()
    for k, v in w.items():
        assert v.shape == sh[k] and v.dtype == np.float32, k
    return w


def write_checkpoint(path, cfg, w):
    dim, hidden, L, nh, nkv, vocab, seq_len, shared = cfg
    out = bytearray(struct.pack("<7i", dim, hidden, L, nh, nkv, vocab if shared else -vocab, seq_len))
    for name in TENSOR_ORDER:
        if name in w:
            out += np.ascontiguousarray(w[name], dtype="<f4").tobytes()
    with open(path, "wb") as f:
        f.write(bytes(out))


def read_checkpoint(path):
    """Independent reader following run.c's memory_map_weights offsets."""
    data = open(path, "rb").read()
    dim, hidden, L, nh, nkv, v, seq_len = struct.unpack("<7i", data[:28])
    shared = v > 0
    vocab = abs(v)
    f = np.frombuffer(data, dtype="<f4", offset=28)
    hs = dim // nh
    kv = nkv * hs
    sizes = [("token_embedding", (vocab, dim)), ("rms_att", (L, dim)), ("wq", (L, dim, dim)), ("wk", (L, kv, dim)),
             ("wv", (L, kv, dim)), ("wo", (L, dim, dim)), ("rms_ffn", (L, dim)), ("w1", (L, hidden, dim)),
             ("w2", (L, dim, hidden)), ("w3", (L, hidden, dim)), ("rms_final", (dim,)),
             ("freq_cis_real", (seq_len, hs // 2)), ("freq_cis_imag", (seq_len, hs // 2))]
    if not shared:
        sizes.append(("wcls", (vocab, dim)))
    w, off = {}, 0
    for name, shp in sizes:
        n = int(np.prod(shp))
        w[name] = f[off:off + n].reshape(shp).astype(np.float32)
        off += n
    assert off == f.size, (path, off, f.size)
    return (dim, hidden, L, nh, nkv, vocab, seq_len, shared), w


# ---------------------------------------------------------------- numpy float64 forward (llama2.c layout)
def np_forward(cfg, w, ids):
    """Logits (T, vocab) for every position of ids, float64, interleaved RoPE."""
    dim, hidden, L, nh, nkv, vocab, seq_len, shared = cfg
    hs = dim // nh
    rep = nh // nkv
    W = {k: v.astype(np.float64) for k, v in w.items()}
    T = len(ids)
    x = W["token_embedding"][np.asarray(ids)]  # (T, dim)

    def rms(v, g):
        return g * v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + 1e-5)

    pos = np.arange(T, dtype=np.float64)[:, None]
    freq = 10000.0 ** (-np.arange(0, hs, 2, dtype=np.float64) / hs)  # (hs/2,)
    c, s = np.cos(pos * freq), np.sin(pos * freq)  # (T, hs/2)

    def rope(m, nheads):  # m (T, nheads*hs)
        m = m.reshape(T, nheads, hs // 2, 2)
        a, b = m[..., 0], m[..., 1]
        cc, ss = c[:, None, :], s[:, None, :]
        return np.stack([a * cc - b * ss, a * ss + b * cc], axis=-1).reshape(T, nheads, hs)

    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        xb = rms(x, W["rms_att"][l])
        q = rope(xb @ W["wq"][l].T, nh)
        k = rope(xb @ W["wk"][l].T, nkv)
        v = (xb @ W["wv"][l].T).reshape(T, nkv, hs)
        heads = []
        for h in range(nh):
            sc = q[:, h] @ k[:, h // rep].T / math.sqrt(hs) + mask
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            sc /= sc.sum(axis=1, keepdims=True)
            heads.append(sc @ v[:, h // rep])
        x = x + np.concatenate(heads, axis=1) @ W["wo"][l].T
        xb = rms(x, W["rms_ffn"][l])
        g = xb @ W["w1"][l].T
        x = x + ((g / (1.0 + np.exp(-g))) * (xb @ W["w3"][l].T)) @ W["w2"][l].T
    x = rms(x, W["rms_final"])
    return x @ (W["token_embedding"] if shared else W["wcls"]).T


# ---------------------------------------------------------------- Hugging Face
def to_half_split(m, nheads, hs):
    """llama2.c interleaved rows -> HF half-split rows, per head (export.py's
    permute_original): new[h, j, i] = old[h, i, j]."""
    cols = m.shape[1]
    return m.reshape(nheads, hs // 2, 2, cols).transpose(0, 2, 1, 3).reshape(nheads * hs, cols)


def hf_logits(cfg, w, ids):
    from transformers import LlamaConfig, LlamaForCausalLM
    dim, hidden, L, nh, nkv, vocab, seq_len, shared = cfg
    hs = dim // nh
    conf = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=L,
                       num_attention_heads=nh, num_key_value_heads=nkv, hidden_act="silu",
                       max_position_embeddings=seq_len, rms_norm_eps=1e-5,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                       tie_word_embeddings=shared, attention_bias=False, mlp_bias=False, head_dim=hs,
                       bos_token_id=1, eos_token_id=2)
    conf._attn_implementation = "eager"
    model = LlamaForCausalLM(conf).to(torch.float32).eval()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    sd = {"model.embed_tokens.weight": t(w["token_embedding"]), "model.norm.weight": t(w["rms_final"])}
    for l in range(L):
        p = f"model.layers.{l}."
        sd[p + "input_layernorm.weight"] = t(w["rms_att"][l])
        sd[p + "self_attn.q_proj.weight"] = t(to_half_split(w["wq"][l], nh, hs))
        sd[p + "self_attn.k_proj.weight"] = t(to_half_split(w["wk"][l], nkv, hs))
        sd[p + "self_attn.v_proj.weight"] = t(w["wv"][l])
        sd[p + "self_attn.o_proj.weight"] = t(w["wo"][l])
        sd[p + "post_attention_layernorm.weight"] = t(w["rms_ffn"][l])
        sd[p + "mlp.gate_proj.weight"] = t(w["w1"][l])
        sd[p + "mlp.down_proj.weight"] = t(w["w2"][l])
        sd[p + "mlp.up_proj.weight"] = t(w["w3"][l])
    if not shared:
        sd["lm_head.weight"] = t(w["wcls"])
    params = dict(model.named_parameters())
    assert set(params) == set(sd), sorted(set(params) ^ set(sd))
    for k, v in sd.items():
        assert params[k].shape == v.shape, k
        params[k].copy_(v)
    if shared:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.config.rope_parameters["rope_theta"] == 10000.0
    out = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
    return out.numpy().astype(np.float32)


# ---------------------------------------------------------------- llama2.c
HARNESS = r"""
#define TESTING
#include "run.c"
/* argv: tokenizer vocab_size cases_file. Cases are separated by 0x1f.
   Prints per case: "B n ids..." (bos=1), "N n ids..." (bos=0),
   "D hex" (decode of the N ids, prev starting at BOS). */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    Tokenizer tk;
    build_tokenizer(&tk, argv[1], atoi(argv[2]));
    FILE *f = fopen(argv[3], "rb");
    if (!f) return 3;
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *all = malloc(n + 1);
    if (fread(all, 1, n, f) != (size_t)n) return 4;
    all[n] = 0; fclose(f);
    char *start = all;
    for (;;) {
        char *end = strchr(start, 0x1f);
        if (end) *end = 0;
        int *ids = malloc((strlen(start) + 3) * sizeof(int));
        int cnt;
        for (int b = 1; b >= 0; b--) {
            encode(&tk, start, b, 0, ids, &cnt);
            printf("%c %d", b ? 'B' : 'N', cnt);
            for (int i = 0; i < cnt; i++) printf(" %d", ids[i]);
            printf("\n");
        }
        printf("D ");
        int prev = 1;
        for (int i = 0; i < cnt; i++) {
            char *p = decode(&tk, prev, ids[i]);
            for (char *c = p; *c; c++) printf("%02x", (unsigned char)*c);
            prev = ids[i];
        }
        printf("\n");
        free(ids);
        if (!end) break;
        start = end + 1;
    }
    free_tokenizer(&tk);
    return 0;
}
"""


def git_blob_sha(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def print_token_ids(src):
    """run.c or runq.c patched only to also print every token id to stderr."""
    a = "    int token = prompt_tokens[0]; // kick off with the first token in the prompt\n"
    b = "        pos++;\n\n        // data-dependent terminating condition"
    assert src.count(a) == 1 and src.count(b) == 1
    src = src.replace(a, a + '    fprintf(stderr, "@tok %d\\n", token);\n')
    return src.replace(b, '        fprintf(stderr, "@tok %d\\n", next);\n' + b)


def build_llama2c(src_dir):
    runc = open(os.path.join(src_dir, "run.c"), "rb").read()
    blob = git_blob_sha(runc)
    assert blob == RUNC_BLOB_EXPECTED, f"run.c blob {blob} is not the one of llama2.c {LLAMA2C_COMMIT}"
    tmp = tempfile.mkdtemp(prefix="llama2c-ref-", dir="/tmp")
    with open(os.path.join(tmp, "run.c"), "wb") as f:
        f.write(runc)
    # Patched copy: also prints every token id of the sequence to stderr.
    with open(os.path.join(tmp, "run_ids.c"), "w") as f:
        f.write(print_token_ids(runc.decode("utf-8")))
    with open(os.path.join(tmp, "harness.c"), "w") as f:
        f.write(HARNESS)
    for exe, c in (("run", "run.c"), ("run_ids", "run_ids.c"), ("harness", "harness.c")):
        subprocess.run(["gcc", "-O2", "-o", exe, c, "-lm"], cwd=tmp, check=True)
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return tmp, blob, gcc


def check_tokenizer_against_c(tmp, tok_path):
    cases_path = os.path.join(tmp, "cases.txt")
    with open(cases_path, "wb") as f:
        f.write(SEP.join(CASES).encode("utf-8"))
    out = subprocess.run([os.path.join(tmp, "harness"), tok_path, str(VOCAB), cases_path], capture_output=True,
                         check=True).stdout.decode("ascii").splitlines()
    assert len(out) == 3 * len(CASES), len(out)
    for k, text in enumerate(CASES):
        bl, nl, dl = out[3 * k:3 * k + 3]
        cb = [int(v) for v in bl.split()[2:]]
        cn = [int(v) for v in nl.split()[2:]]
        assert bl[0] == "B" and nl[0] == "N" and dl[0] == "D"
        assert cb == encode(text, True), (k, cb, encode(text, True))
        assert cn == encode(text, False), (k, cn)
        cd = bytes.fromhex(dl[2:].strip())
        assert cd == decode_seq(cn), (k, cd, decode_seq(cn))
    print(f"tokenizer: Python encoder/decoder == run.c on {len(CASES)} strings (bos and no bos)")


PROMPTS = ["hello world", "the end", "é日本"]
STEPS = 30


def run_llama2c(tmp, ckpt, tok_path, prompt):
    args = [ckpt, "-z", tok_path, "-t", "0", "-n", str(STEPS), "-i", prompt]
    plain = subprocess.run([os.path.join(tmp, "run")] + args, capture_output=True, check=True)
    pat = subprocess.run([os.path.join(tmp, "run_ids")] + args, capture_output=True, check=True)
    assert plain.stdout == pat.stdout
    assert b"achieved tok/s" not in plain.stdout
    ids = [int(m) for m in re.findall(rb"@tok (-?\d+)", pat.stderr)]
    return plain.stdout, ids


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama2c", default="/tmp/llama2c-ref", help="folder holding llama2.c's run.c")
    args = ap.parse_args()

    OUT = {}

    def put(name, a):
        assert name not in OUT, name
        OUT[name] = np.array(a, copy=True, order="C")

    os.makedirs(FIXDIR, exist_ok=True)
    tok_path = os.path.join(FIXDIR, "tokenizer.bin")
    write_tokenizer(tok_path)
    print(f"vocab {VOCAB}, max_token_length {MAX_TOKEN_LENGTH}")

    # Tokenizer cases, and proof that the ties matter.
    events = []
    put("tok/cases", refvec.text(SEP.join(CASES)))
    for k, text in enumerate(CASES):
        ids_b, ids_n = encode(text, True, events=events), encode(text, False)
        assert ids_b == [BOS] + ids_n
        dec = decode_seq(ids_n)
        # Decoding gives the text back: the space dropped after BOS is the dummy prefix's.
        assert dec == text.encode("utf-8"), (k, dec)
        put(f"tok/{k}/bos", np.array(ids_b, dtype=np.int64))
        put(f"tok/{k}/nobos", np.array(ids_n, dtype=np.int64))
        put(f"tok/{k}/decoded", np.frombuffer(dec, dtype=np.uint8))
    tied = sorted({(t, tuple(sorted(set(pcs)))) for t, pcs in events if len(set(pcs)) > 1 and len(t) < 50})
    assert {t for t, _ in tied} >= {"best test", "sound found"}, tied
    for k in (3, 4, 9):
        assert encode(CASES[k], False) != encode(CASES[k], False, leftmost=False), k
    print("ties between distinct pieces (short strings):", tied)

    tmp, blob, gcc = build_llama2c(args.llama2c)
    print(f"built llama2.c run in {tmp}")
    check_tokenizer_against_c(tmp, tok_path)

    report = []
    for fi, (name, dim, hidden, L, nh, nkv, seq_len, shared, seed) in enumerate(FIXTURES):
        cfg = (dim, hidden, L, nh, nkv, VOCAB, seq_len, shared)
        w = draw_weights(*cfg, seed)
        path = os.path.join(FIXDIR, f"{name}.bin")
        write_checkpoint(path, cfg, w)
        cfg2, w2 = read_checkpoint(path)
        assert cfg2 == cfg and set(w2) == set(w)
        for k in w:
            assert np.array_equal(w2[k], w[k]), k
        pre = f"llama/{name}"
        put(f"{pre}/config", np.array([dim, hidden, L, nh, nkv, VOCAB, seq_len, int(shared)], dtype=np.int64))

        rng = np.random.default_rng(7 + fi)
        ids = [BOS] + [int(v) for v in rng.integers(3, VOCAB, size=15)]
        hf = hf_logits(cfg, w2, ids)
        ref = np_forward(cfg, w2, ids)
        err = float(np.max(np.abs(hf.astype(np.float64) - ref)))
        assert err <= 1e-4, (name, err)
        put(f"{pre}/prompt_ids", np.array(ids, dtype=np.int64))
        put(f"{pre}/hf_logits", hf)
        print(f"{name}: {os.path.getsize(path)} bytes; HF vs numpy max |diff| {err:.2e}, "
              f"|logit| max {np.abs(ref).max():.2f}")

        for j, prompt in enumerate(PROMPTS):
            stdout, toks = run_llama2c(tmp, path, tok_path, prompt)
            ptoks = encode(prompt, True)
            np_ = len(ptoks)
            assert toks[:np_] == ptoks, (name, j, toks, ptoks)
            # toks holds token 0 and every `next`; a final BOS means run stopped there.
            stopped = toks[-1] == BOS and len(toks) > 1
            seq = toks[:-1] if stopped else toks
            assert BOS not in seq[1:]
            assert len(toks) == STEPS + 1 or stopped
            # Greedy picks vs numpy float64 argmax along the sequence.
            lg = np_forward(cfg, w2, seq[:STEPS])
            gaps = []
            for pos in range(np_ - 1, len(toks) - 1):
                row = lg[pos]
                order = np.argsort(-row)
                assert order[0] == toks[pos + 1], (name, j, pos, order[:2], toks[pos + 1])
                gaps.append(float(row[order[0]] - row[order[1]]))
            assert min(gaps) > 1e-3, (name, j, min(gaps))
            # stdout == decode + printing filter, then "\n".
            exp = bytearray()
            for a, b in zip(seq[:-1], seq[1:]):
                exp += printed(decode(a, b))
            exp += b"\n"
            assert bytes(exp) == stdout, (name, j, bytes(exp), stdout)
            rp = f"{pre}/run{j}"
            put(f"{rp}/prompt", refvec.text(prompt))
            put(f"{rp}/tokens", np.array(seq, dtype=np.int64))
            put(f"{rp}/info", np.array([STEPS, np_, int(stopped)], dtype=np.int64))
            put(f"{rp}/stdout", np.frombuffer(stdout, dtype=np.uint8))
            report.append((name, j, seq, stdout, min(gaps), stopped))
    for name, j, seq, stdout, gap, stopped in report:
        print(f"{name} run{j}: min top-2 gap {gap:.4f}, stopped_at_bos {stopped}\n  tokens {seq}\n  stdout {stdout!r}")

    shutil.rmtree(tmp)
    meta = (f"tests/reference/gen_llama.py; llama2.c {LLAMA2C_COMMIT} (run.c blob {blob}); {gcc}; "
            f"{refvec.versions()}")
    outp = os.path.join(HERE, "llama.bin")
    refvec.write(outp, OUT, meta=meta)
    print(f"wrote {outp}: {len(OUT) + 1} entries, {os.path.getsize(outp)} bytes")


if __name__ == "__main__":
    main()
