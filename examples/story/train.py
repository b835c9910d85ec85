"""Trains the tiny Llama-family decoder of constml's `story` example.

Run from anywhere (CPU only, about ten minutes on 2 cores):

    pip install torch numpy sentencepiece
    python3 examples/story/train.py

Steps, all deterministic (fixed seeds, one thread pool of 2):

 1. Reads data/austen.txt (two Jane Austen novels, see data/README.md) and
    turns it into paragraphs: blank lines separate paragraphs, the line
    breaks and runs of spaces inside one become single spaces. The first 90%
    of the paragraphs (by characters) are the training split, the rest the
    validation split.
 2. Trains a 512-piece BPE tokenizer with sentencepiece (byte fallback, no
    normalisation, dummy "▁" prefix) on all paragraphs and writes it as
    tokenizer.bin in llama2.c's layout: i32 longest piece in bytes, then per
    id an f32 score, an i32 byte length and the bytes. Ids 0, 1, 2 are
    "<unk>", "\\n<s>\\n", "\\n</s>\\n"; 3..258 the pieces "<0x00>".."<0xFF>";
    then the merged pieces and the single characters, with "▁" written as
    " ". Every paragraph is then encoded with llama2.c's rule (see
    `Llama2cTokenizer.encode`), which is checked to agree with
    sentencepiece's own encoder and to decode back to the paragraph.
 3. Builds the token streams: each paragraph is BOS followed by its
    encoding (the dummy " " prefix included), so BOS separates paragraphs
    the way llama2.c's TinyStories data separates stories, and a prompt
    BOS + encode("Some words") looks like the start of a paragraph.
 4. Trains the decoder (llama2.c's architecture, `Llama` below) on random
    windows of the training stream with AdamW, then reports the validation
    cross-entropy beside an add-k smoothed bigram model on the same tokens.
 5. Writes model.bin (llama2.c's legacy checkpoint, shared classifier),
    tokenizer.bin and TRAINING.md beside this file, and runs reference.py,
    which reloads model.bin and writes tests/reference/story.bin.
"""
import argparse
import heapq
import io
import math
import os
import platform
import struct
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT_PATH = os.path.join(HERE, "data", "austen.txt")
MODEL_PATH = os.path.join(HERE, "model.bin")
TOKENIZER_PATH = os.path.join(HERE, "tokenizer.bin")
REPORT_PATH = os.path.join(HERE, "TRAINING.md")

SEED = 1811  # torch initialisation
BATCH_SEED = 1813  # numpy generator drawing the training windows
VAL_FRACTION = 0.1
VOCAB_SIZE = 512

UNK, BOS, EOS = 0, 1, 2


@dataclass
class Config:
    dim: int = 96
    hidden_dim: int = 256
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 4
    vocab_size: int = VOCAB_SIZE
    seq_len: int = 256
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0


# ---------------------------------------------------------------- text


def paragraphs(text):
    """Paragraphs of `text`: separated by blank lines, inner whitespace runs
    (line breaks, double spaces after full stops) turned into one space."""
    out, lines = [], []
    for line in text.split("\n") + [""]:
        if line.strip():
            lines.append(line)
        elif lines:
            out.append(" ".join(" ".join(lines).split()))
            lines = []
    return out


def split_paragraphs(paras, val_fraction=VAL_FRACTION):
    """Contiguous split: the first paragraphs holding (1 - val_fraction) of
    the characters train, the remaining ones validate."""
    total = sum(len(p) for p in paras)
    seen = 0
    for i, p in enumerate(paras):
        if seen >= (1.0 - val_fraction) * total:
            return paras[:i], paras[i:]
        seen += len(p)
    raise ValueError("text too short to split")


# ----------------------------------------------------------- tokenizer


def train_sentencepiece(paras, vocab_size):
    """A sentencepiece BPE model trained on `paras` (one sentence each);
    returns the processor."""
    import sentencepiece as spm

    blob = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(paras),
        model_writer=blob,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        split_digits=True,
        max_sentence_length=1 << 16,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=blob.getvalue())


def pieces_from_sentencepiece(sp):
    """(pieces as bytes, scores) in llama2.c's spelling: BOS/EOS renamed,
    the "▁" space marker written as a plain space."""
    pieces, scores = [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if i == BOS:
            piece = "\n<s>\n"
        elif i == EOS:
            piece = "\n</s>\n"
        pieces.append(piece.replace("\u2581", " ").encode("utf-8"))
        scores.append(float(np.float32(sp.get_score(i))))
    return pieces, scores


def write_tokenizer(path, pieces, scores):
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for piece, score in zip(pieces, scores):
            f.write(struct.pack("<fi", score, len(piece)))
            f.write(piece)


def read_tokenizer(path, vocab_size):
    """The first `vocab_size` entries of a llama2.c tokenizer.bin (the file
    does not store its length)."""
    with open(path, "rb") as f:
        data = f.read()
    (longest,) = struct.unpack_from("<i", data, 0)
    at, pieces, scores = 4, [], []
    for _ in range(vocab_size):
        score, n = struct.unpack_from("<fi", data, at)
        at += 8
        pieces.append(data[at:at + n])
        scores.append(score)
        at += n
    if at != len(data):
        raise ValueError(f"{path}: {len(data) - at} trailing bytes")
    if longest != max(len(p) for p in pieces):
        raise ValueError(f"{path}: header says longest piece {longest}")
    return pieces, scores


class Llama2cTokenizer:
    """llama2.c's encode/decode over a (pieces, scores) vocabulary.

    encode: optional BOS; for non-empty text the id of " " (dummy prefix);
    one id per code point when that character is a piece, else one byte id
    (byte + 3) per UTF-8 byte; then, while some adjacent pair of ids spells
    a piece (concatenated bytes), replace the pair whose piece has the
    strictly highest score, the leftmost one on ties.
    """

    def __init__(self, pieces, scores):
        self.pieces = list(pieces)
        self.scores = [float(s) for s in scores]
        self.ids = {}
        for i, p in enumerate(self.pieces):
            if p in self.ids:
                raise ValueError(f"duplicate piece {p!r}")
            self.ids[p] = i
        self.space = self.ids[b" "]

    def vocab_size(self):
        return len(self.pieces)

    def _initial(self, text, bos):
        ids = [BOS] if bos else []
        if text:
            ids.append(self.space)
        for ch in text:
            b = ch.encode("utf-8")
            if b in self.ids:
                ids.append(self.ids[b])
            else:
                ids.extend(byte + 3 for byte in b)
        return ids

    def encode(self, text, bos=False):
        """The rule above, with a heap of candidate pairs (priority: higher
        score, then the smaller original position, which is the leftmost
        pair since merges keep the order)."""
        ids = self._initial(text, bos)
        n = len(ids)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if j < n:
                merged = self.ids.get(self.pieces[ids[i]] + self.pieces[ids[j]])
                if merged is not None:
                    heapq.heappush(heap, (-self.scores[merged], i, j, ids[i], ids[j], merged))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, j, a, b, merged = heapq.heappop(heap)
            if not (alive[i] and alive[j] and nxt[i] == j and ids[i] == a and ids[j] == b):
                continue  # stale: one side has changed since the push
            ids[i] = merged
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        return [t for t, keep in zip(ids, alive) if keep]

    def encode_slow(self, text, bos=False):
        """The same rule, literally: rescan all pairs after each merge."""
        ids = self._initial(text, bos)
        while True:
            best = None
            for i in range(len(ids) - 1):
                merged = self.ids.get(self.pieces[ids[i]] + self.pieces[ids[i + 1]])
                if merged is not None and (best is None or self.scores[merged] > best[0]):
                    best = (self.scores[merged], i, merged)
            if best is None:
                return ids
            _, i, merged = best
            ids[i:i + 2] = [merged]

    def piece_bytes(self, prev, tok):
        """llama2.c's decode(prev, tok): a piece after BOS loses one leading
        space; "<0xXX>" is that byte."""
        piece = self.pieces[tok]
        if prev == BOS and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            try:
                return bytes([int(piece[3:5], 16)])
            except ValueError:
                pass
        return piece

    def decode(self, ids, prev=BOS):
        out = bytearray()
        for t in ids:
            out += self.piece_bytes(prev, t)
            prev = t
        return out.decode("utf-8", errors="replace")


def build_tokenizer(paras):
    """Trains sentencepiece, returns (pieces, scores, sentencepiece model)
    after checking the layout the Rust loader expects."""
    sp = train_sentencepiece(paras, VOCAB_SIZE)
    pieces, scores = pieces_from_sentencepiece(sp)
    assert len(pieces) == VOCAB_SIZE, len(pieces)
    assert pieces[:3] == [b"<unk>", b"\n<s>\n", b"\n</s>\n"], pieces[:3]
    for b in range(256):
        assert pieces[3 + b] == b"<0x%02X>" % b, (b, pieces[3 + b])
    chars = sorted(set("".join(paras)))
    missing = [c for c in chars if c.encode("utf-8") not in pieces and c.isprintable()]
    assert not missing, f"characters without a piece: {missing!r}"
    assert b" " in pieces
    return pieces, scores, sp


def check_tokenizer(tok, sp, paras):
    """Every paragraph: the llama2.c rule equals sentencepiece's encoding,
    and decoding after BOS gives the paragraph back. Also the literal
    (quadratic) rule on a sample. Returns the encodings."""
    encoded = []
    for k, p in enumerate(paras):
        ids = tok.encode(p)
        assert ids == sp.encode(p), f"paragraph {k}: differs from sentencepiece"
        assert tok.decode(ids) == p, f"paragraph {k}: no round trip"
        encoded.append(ids)
    for p in paras[:: max(1, len(paras) // 60)]:
        assert tok.encode_slow(p) == tok.encode(p)
    for s in ["", "a", "Once upon a time", "  two  spaces", "naïve café — “quotes” 🙂\tend\n"]:
        ids = tok.encode(s, bos=True)
        assert ids == tok.encode_slow(s, bos=True)
        assert tok.decode(ids[1:]) == s, s
    return encoded


def stream(encoded):
    """BOS before every paragraph's tokens, all concatenated."""
    out = []
    for ids in encoded:
        out.append(BOS)
        out.extend(ids)
    return np.array(out, dtype=np.int64)


# --------------------------------------------------------------- model


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_size, seq_len, theta):
    """cos and sin of pos * f_i, f_i = theta^(-2i / head_size), shape
    (seq_len, head_size / 2), in float32 (the tables llama2.c exports)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_size, 2)[: head_size // 2].float() / head_size))
    angles = torch.outer(torch.arange(seq_len).float(), inv)
    return torch.cos(angles), torch.sin(angles)


def rotate(x, cos, sin):
    """Interleaved RoPE on x (B, T, heads, head_size): each pair (2i, 2i+1)
    of a head turns by the angle of its position and i."""
    b, t, h, hs = x.shape
    pairs = x.float().reshape(b, t, h, hs // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    c = cos[:t].view(1, t, 1, hs // 2)
    s = sin[:t].view(1, t, 1, hs // 2)
    return torch.stack((re * c - im * s, re * s + im * c), dim=-1).reshape(b, t, h, hs).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        assert cfg.n_heads % cfg.n_kv_heads == 0
        self.head_size = cfg.dim // cfg.n_heads
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * self.head_size, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_size, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_size, bias=False)
        self.wo = nn.Linear(cfg.n_heads * self.head_size, cfg.dim, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        hs = self.head_size
        q = rotate(self.wq(x).view(b, t, self.n_heads, hs), cos, sin)
        k = rotate(self.wk(x).view(b, t, self.n_kv_heads, hs), cos, sin)
        v = self.wv(x).view(b, t, self.n_kv_heads, hs)
        group = self.n_heads // self.n_kv_heads
        if group > 1:  # query head h reads kv head h // group
            k = k.repeat_interleave(group, dim=2)
            v = v.repeat_interleave(group, dim=2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        return self.wo(y.transpose(1, 2).reshape(b, t, self.n_heads * hs))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, cos, sin):
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    """Token embedding, n_layers blocks, final RMSNorm, classifier = the
    embedding matrix (tied). No biases, no dropout."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin = rope_tables(cfg.dim // cfg.n_heads, cfg.seq_len, cfg.rope_theta)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)

    def init_weights(self):
        """N(0, 0.02) everywhere, the two projections that feed the residual
        stream (wo, w2) scaled down by sqrt(2 * n_layers)."""
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith("wo.weight") or name.endswith("w2.weight"):
                    std /= math.sqrt(2 * self.cfg.n_layers)
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, tokens):
        if tokens.shape[1] > self.cfg.seq_len:
            raise ValueError("sequence longer than seq_len")
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h, self.freqs_cos, self.freqs_sin)
        return F.linear(self.norm(h), self.tok_embeddings.weight)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------- checkpoint


def checkpoint_tensors(model):
    """(name, float32 array) in llama2.c's legacy order, matrices stored
    (out_features, in_features)."""
    layers = model.layers
    out = [("token_embedding", model.tok_embeddings.weight)]
    per_layer = [
        ("rms_att", lambda l: l.attention_norm.weight),
        ("wq", lambda l: l.attention.wq.weight),
        ("wk", lambda l: l.attention.wk.weight),
        ("wv", lambda l: l.attention.wv.weight),
        ("wo", lambda l: l.attention.wo.weight),
        ("rms_ffn", lambda l: l.ffn_norm.weight),
        ("w1", lambda l: l.feed_forward.w1.weight),
        ("w2", lambda l: l.feed_forward.w2.weight),
        ("w3", lambda l: l.feed_forward.w3.weight),
    ]
    for name, get in per_layer:
        out.append((name, torch.stack([get(l) for l in layers])))
    out.append(("rms_final", model.norm.weight))
    out.append(("freq_cis_real", model.freqs_cos))
    out.append(("freq_cis_imag", model.freqs_sin))
    return [(n, t.detach().to(torch.float32).cpu().numpy()) for n, t in out]


def write_checkpoint(path, model):
    cfg = model.cfg
    with open(path, "wb") as f:
        # positive vocab_size: the classifier is the token embedding
        f.write(struct.pack("<7i", cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads,
                            cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len))
        for _, a in checkpoint_tensors(model):
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def read_checkpoint(path):
    """(Config, {name: float32 array}) from a legacy checkpoint with a
    shared classifier; the shapes follow the header."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack_from("<7i", data, 0)
    if vocab <= 0:
        raise ValueError("expected a shared classifier (positive vocab_size)")
    cfg = Config(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads,
                 n_kv_heads=n_kv, vocab_size=vocab, seq_len=seq_len)
    hs = dim // n_heads
    kv = n_kv * hs
    shapes = [
        ("token_embedding", (vocab, dim)),
        ("rms_att", (n_layers, dim)),
        ("wq", (n_layers, n_heads * hs, dim)),
        ("wk", (n_layers, kv, dim)),
        ("wv", (n_layers, kv, dim)),
        ("wo", (n_layers, dim, n_heads * hs)),
        ("rms_ffn", (n_layers, dim)),
        ("w1", (n_layers, hidden, dim)),
        ("w2", (n_layers, dim, hidden)),
        ("w3", (n_layers, hidden, dim)),
        ("rms_final", (dim,)),
        ("freq_cis_real", (seq_len, hs // 2)),
        ("freq_cis_imag", (seq_len, hs // 2)),
    ]
    at, tensors = 28, {}
    for name, shape in shapes:
        n = int(np.prod(shape))
        tensors[name] = np.frombuffer(data, dtype="<f4", count=n, offset=at).reshape(shape).astype(np.float32)
        at += 4 * n
    if at != len(data):
        raise ValueError(f"{path}: {len(data) - at} bytes left after the tensors")
    return cfg, tensors


def model_from_checkpoint(path):
    """A Llama whose weights are exactly the file's."""
    cfg, w = read_checkpoint(path)
    model = Llama(cfg)
    t = lambda a: torch.from_numpy(a.copy())
    with torch.no_grad():
        model.tok_embeddings.weight.copy_(t(w["token_embedding"]))
        for i, layer in enumerate(model.layers):
            layer.attention_norm.weight.copy_(t(w["rms_att"][i]))
            layer.attention.wq.weight.copy_(t(w["wq"][i]))
            layer.attention.wk.weight.copy_(t(w["wk"][i]))
            layer.attention.wv.weight.copy_(t(w["wv"][i]))
            layer.attention.wo.weight.copy_(t(w["wo"][i]))
            layer.ffn_norm.weight.copy_(t(w["rms_ffn"][i]))
            layer.feed_forward.w1.weight.copy_(t(w["w1"][i]))
            layer.feed_forward.w2.weight.copy_(t(w["w2"][i]))
            layer.feed_forward.w3.weight.copy_(t(w["w3"][i]))
        model.norm.weight.copy_(t(w["rms_final"]))
    assert torch.equal(model.freqs_cos, t(w["freq_cis_real"]))
    assert torch.equal(model.freqs_sin, t(w["freq_cis_imag"]))
    return model.eval(), w


# ------------------------------------------------------------ training


@torch.no_grad()
def stream_loss(model, tokens, max_tokens=None):
    """Mean cross-entropy (nats) of predicting tokens[1:], the stream cut
    into consecutive windows of seq_len inputs (the last one shorter)."""
    model.eval()
    s = model.cfg.seq_len
    n = len(tokens) if max_tokens is None else min(len(tokens), max_tokens + 1)
    data = torch.from_numpy(tokens[:n])
    total, count = 0.0, 0
    for start in range(0, n - 1, s):
        x = data[start:min(start + s, n - 1)].unsqueeze(0)
        y = data[start + 1:start + 1 + x.shape[1]].unsqueeze(0)
        logits = model(x)
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def bigram_loss(train, targets, vocab, k):
    """Cross-entropy (nats) on the pairs of `targets` of an add-k smoothed
    bigram model counted on the pairs of `train`."""
    counts = np.zeros((vocab, vocab), dtype=np.float64)
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    probs = (counts + k) / (counts.sum(axis=1, keepdims=True) + k * vocab)
    return float(-np.log(probs[targets[:-1], targets[1:]]).mean())


def bigram_baseline(train, val, vocab):
    """Add-k bigram: k tuned on the last 10% of the training stream (counts
    from the first 90%), then counted on all of it and scored on `val`."""
    cut = int(len(train) * 0.9)
    grid = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001]
    tuned = {k: bigram_loss(train[:cut], train[cut:], vocab, k) for k in grid}
    best_k = min(tuned, key=tuned.get)
    return best_k, bigram_loss(train, val, vocab, best_k), bigram_loss(train, val, vocab, 1.0)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(cfg, train_tokens, val_tokens, args):
    torch.manual_seed(SEED)
    model = Llama(cfg)
    model.init_weights()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    rng = np.random.default_rng(BATCH_SEED)
    data = torch.from_numpy(train_tokens)
    s = cfg.seq_len
    start = time.time()
    history = []
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        offsets = rng.integers(0, len(train_tokens) - s - 1, size=args.batch)
        x = torch.stack([data[o:o + s] for o in offsets])
        y = torch.stack([data[o + 1:o + s + 1] for o in offsets])
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, cfg.vocab_size), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % args.log_every == 0 or step == args.steps - 1:
            line = f"step {step:5d}/{args.steps}  loss {loss.item():.4f}  lr {opt.param_groups[0]['lr']:.2e}  {time.time() - start:6.1f}s"
            if step % args.eval_every == 0 or step == args.steps - 1:
                v = stream_loss(model, val_tokens)
                history.append((step, v))
                line += f"  val {v:.4f}"
            print(line, flush=True)
    return model, time.time() - start, history


# -------------------------------------------------------------- report


def write_report(path, info):
    i = info
    cfg = i["cfg"]
    lines = [
        "# The `story` model: how it was trained",
        "",
        "Written by `train.py` at the end of its run; every number below is from that run.",
        "",
        "## Command",
        "",
        "```",
        f"python3 examples/story/train.py {i['argv']}".rstrip(),
        "```",
        "",
        f"CPU only, `torch.set_num_threads({i['threads']})`. Seeds: torch {SEED} (initialisation), "
        f"numpy `default_rng({BATCH_SEED})` (training windows); sentencepiece trains "
        "deterministically with one thread.",
        "",
        "## Data",
        "",
        f"- `data/austen.txt` ({i['text_bytes']:,} bytes; see `data/README.md`): {i['paragraphs']:,} paragraphs "
        "after joining the lines of each paragraph and collapsing runs of spaces.",
        f"- Split by paragraphs, contiguous: training = the first {i['train_paragraphs']:,} paragraphs "
        f"({i['train_chars']:,} characters), validation = the last {i['val_paragraphs']:,} "
        f"({i['val_chars']:,} characters, the closing chapters of *Persuasion*).",
        "- Token streams: every paragraph is BOS (id 1) followed by its llama2.c-rule encoding "
        "(which starts with the dummy-prefix space), so BOS separates paragraphs: "
        f"{i['train_tokens']:,} training tokens, {i['val_tokens']:,} validation tokens.",
        "",
        "## Tokenizer (`tokenizer.bin`)",
        "",
        f"- sentencepiece {i['sp_version']} BPE, {cfg.vocab_size} pieces, byte fallback, identity "
        "normalisation, dummy prefix; exported in llama2.c's layout (ids 0-2 `<unk>`, `\\n<s>\\n`, "
        "`\\n</s>\\n`; 3-258 `<0x00>`..`<0xFF>`; then merged pieces and single characters, `▁` written as a space).",
        f"- Longest piece {i['longest_piece']} bytes; {i['merged_pieces']} merged pieces, "
        f"{i['char_pieces']} single-character pieces.",
        "- The llama2.c encoding rule, reimplemented in Python, gives sentencepiece's ids for every "
        "paragraph and decodes back to it exactly.",
        f"- Validation text: {i['val_tok_per_char']:.3f} tokens per character "
        f"({1 / i['val_tok_per_char']:.2f} characters per token); training text {i['train_tok_per_char']:.3f}.",
        "",
        "## Model (`model.bin`)",
        "",
        "llama2.c's architecture: token embedding; per layer RMSNorm (eps 1e-5), attention with "
        "interleaved RoPE (pairs 2i, 2i+1; theta 10000), residual; RMSNorm, SwiGLU MLP "
        "w2(silu(w1 x) * w3 x), residual; final RMSNorm; classifier tied to the embedding; no biases.",
        "",
        "| | |",
        "| --- | --- |",
        f"| dim | {cfg.dim} |",
        f"| hidden_dim | {cfg.hidden_dim} |",
        f"| n_layers | {cfg.n_layers} |",
        f"| n_heads / n_kv_heads | {cfg.n_heads} / {cfg.n_kv_heads} (head size {cfg.dim // cfg.n_heads}) |",
        f"| vocab_size | {cfg.vocab_size} (header +{cfg.vocab_size}: shared classifier) |",
        f"| seq_len | {cfg.seq_len} |",
        f"| parameters | {i['params']:,} |",
        f"| model.bin | {i['model_bytes']:,} bytes (llama2.c legacy format, f32, RoPE tables included) |",
        f"| tokenizer.bin | {i['tokenizer_bytes']:,} bytes |",
        "",
        "## Training",
        "",
        f"- AdamW (betas 0.9, 0.95; weight decay {i['args'].weight_decay} on matrices), peak learning rate "
        f"{i['args'].lr}, {i['args'].warmup} warm-up steps, cosine decay to a tenth; gradient norm clipped at 1.",
        f"- {i['args'].steps} steps of {i['args'].batch} random windows x {cfg.seq_len} tokens "
        f"({i['args'].steps * i['args'].batch * cfg.seq_len:,} tokens, "
        f"{i['args'].steps * i['args'].batch * cfg.seq_len / i['train_tokens']:.1f} passes over the training stream).",
        f"- Training time: {i['train_seconds']:.0f} s ({i['train_seconds'] / 60:.1f} min); whole script "
        f"{i['total_seconds']:.0f} s.",
        f"- Versions: python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"sentencepiece {i['sp_version']}.",
        "",
        "## Result",
        "",
        "Cross-entropy in nats per token of the exported (reloaded) model, each token predicted from the "
        "ones before it, the streams cut into consecutive windows of seq_len tokens. The bigram models "
        "are counted on the training stream and scored on the same validation tokens:",
        "",
        "| | train | validation |",
        "| --- | --- | --- |",
        f"| this model | {i['train_loss']:.4f} | {i['val_loss']:.4f} |",
        f"| bigram, add-k (k = {i['bigram_k']}, tuned on the end of the training stream) | | {i['bigram_val']:.4f} |",
        f"| bigram, add-one | | {i['bigram_val_add1']:.4f} |",
        f"| uniform over {cfg.vocab_size} | | {math.log(cfg.vocab_size):.4f} |",
        "",
        "Validation loss during training: "
        + ", ".join(f"step {s}: {v:.3f}" for s, v in i["history"]) + ".",
        "",
        "## Greedy sample",
        "",
        f"Prompt {i['prompt']!r} (ids {i['prompt_ids']}), then up to {i['sample_steps']} greedy tokens "
        "from the exported weights, stopping early if the model picks BOS (the end of a paragraph); "
        f"here {i['greedy_tokens']} tokens, and the smallest gap between the two best logits along the "
        f"way was {i['min_gap']:.4f}:",
        "",
        "```",
        i["sample"],
        "```",
        "",
        "## Reference vectors",
        "",
        "`reference.py` (run at the end of training) reloads `model.bin` and `tokenizer.bin` and writes "
        "`tests/reference/story.bin` (CMLREF01): `story/prompt` (u8, the prompt's UTF-8), `story/prompt_ids` (i64, BOS then the prompt's "
        "encoding), `story/logits` (f32, one row of vocab_size logits per prompt position), "
        "`story/greedy_ids` (i64, the prompt then the greedy tokens above) and `meta`.",
        "",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    t0 = time.time()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    import sentencepiece

    with open(TEXT_PATH, encoding="utf-8") as f:
        text = f.read()
    paras = paragraphs(text)
    train_paras, val_paras = split_paragraphs(paras)
    print(f"text: {len(text.encode('utf-8')):,} bytes, {len(paras):,} paragraphs "
          f"({len(train_paras):,} train, {len(val_paras):,} validation)")

    pieces, scores, sp = build_tokenizer(paras)
    write_tokenizer(TOKENIZER_PATH, pieces, scores)
    assert read_tokenizer(TOKENIZER_PATH, VOCAB_SIZE) == (pieces, scores)
    tok = Llama2cTokenizer(pieces, scores)
    train_enc = check_tokenizer(tok, sp, train_paras)
    val_enc = check_tokenizer(tok, sp, val_paras)
    train_tokens, val_tokens = stream(train_enc), stream(val_enc)
    n_char = lambda ps: sum(len(p) for p in ps)
    train_tpc = sum(len(e) for e in train_enc) / n_char(train_paras)
    val_tpc = sum(len(e) for e in val_enc) / n_char(val_paras)
    print(f"tokenizer: {len(pieces)} pieces, {train_tokens.size:,} train / {val_tokens.size:,} val tokens, "
          f"{val_tpc:.3f} tokens per character on validation; llama2.c rule == sentencepiece, round trips ok")

    bigram_k, bigram_val, bigram_val_add1 = bigram_baseline(train_tokens, val_tokens, VOCAB_SIZE)
    print(f"bigram baseline: validation {bigram_val:.4f} nats/token (add-k, k={bigram_k}); add-one {bigram_val_add1:.4f}")

    cfg = Config()
    model, train_seconds, history = train(cfg, train_tokens, val_tokens, args)
    params = count_parameters(model)
    write_checkpoint(MODEL_PATH, model)
    print(f"wrote {MODEL_PATH} ({os.path.getsize(MODEL_PATH):,} bytes, {params:,} parameters)")

    reloaded, _ = model_from_checkpoint(MODEL_PATH)
    for (name, a), (_, b) in zip(checkpoint_tensors(model), checkpoint_tensors(reloaded)):
        assert np.array_equal(a, b), name
    print("measuring the final losses ...", flush=True)
    train_loss = stream_loss(reloaded, train_tokens)
    val_loss = stream_loss(reloaded, val_tokens)
    print(f"final: train {train_loss:.4f}  validation {val_loss:.4f} nats/token  |  "
          f"bigram baseline validation {bigram_val:.4f} (add-one {bigram_val_add1:.4f})")

    sys.path.insert(0, HERE)
    import reference

    ref = reference.main()

    info = dict(
        cfg=cfg, args=args, argv=" ".join(sys.argv[1:]), threads=args.threads,
        text_bytes=len(text.encode("utf-8")), paragraphs=len(paras),
        train_paragraphs=len(train_paras), val_paragraphs=len(val_paras),
        train_chars=n_char(train_paras), val_chars=n_char(val_paras),
        train_tokens=int(train_tokens.size), val_tokens=int(val_tokens.size),
        sp_version=sentencepiece.__version__, longest_piece=max(len(p) for p in pieces),
        merged_pieces=sum(1 for p in pieces[259:] if len(p.decode("utf-8")) > 1),
        char_pieces=sum(1 for p in pieces[259:] if len(p.decode("utf-8")) == 1),
        val_tok_per_char=val_tpc, train_tok_per_char=train_tpc,
        params=params, model_bytes=os.path.getsize(MODEL_PATH),
        tokenizer_bytes=os.path.getsize(TOKENIZER_PATH),
        train_seconds=train_seconds, total_seconds=time.time() - t0,
        train_loss=train_loss, val_loss=val_loss, bigram_k=bigram_k,
        bigram_val=bigram_val, bigram_val_add1=bigram_val_add1, history=history,
        prompt=ref["prompt"], prompt_ids=ref["prompt_ids"], sample=ref["sample"],
        sample_steps=ref["sample_steps"], greedy_tokens=ref["greedy_tokens"], min_gap=ref["min_gap"],
    )
    write_report(REPORT_PATH, info)
    print(f"wrote {REPORT_PATH}")


if __name__ == "__main__":
    main()
