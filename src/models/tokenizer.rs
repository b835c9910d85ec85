//! llama2.c's tokenizer (`tokenizer.bin`, a SentencePiece BPE vocabulary
//! with scores), `std`.
//!
//! # File
//!
//! An `i32` maximum piece length, then for each of the model's
//! `vocab_size` tokens: an `f32` score, an `i32` byte length and the piece's
//! bytes (little-endian). The token count is not in the file: it comes
//! from the checkpoint. Bytes after the last token are ignored (as llama2.c
//! does).
//!
//! # Encoding ([`Tokenizer::encode`], llama2.c's rules)
//!
//! 1. Optionally BOS (id 1).
//! 2. If the text is not empty, a dummy prefix: the id of the piece `" "`.
//! 3. Each Unicode scalar of the text: the id of its UTF-8 bytes as a piece,
//!    or, when the vocabulary has no such piece, one id per byte, `byte + 3`
//!    (ids 0–2 are `<unk>`, `<s>`, `</s>`; 3–258 the byte pieces).
//! 4. Repeatedly merge the adjacent pair (BOS included) whose concatenated
//!    pieces form a piece of the vocabulary with the strictly highest score
//!    (scores at or below −10¹⁰ never merge); on equal scores the leftmost
//!    pair; until no pair merges.
//! 5. Optionally EOS (id 2).
//!
//! A piece that occurs twice in the vocabulary is looked up as its lowest
//! id.
//!
//! # Decoding
//!
//! [`Tokenizer::decode`] gives the raw bytes of a token after the previous
//! one: a piece following BOS loses one leading space; a piece `<0xXX>`
//! (one or two hex digits) is that byte. [`printable`] is llama2.c's
//! printing filter: it drops empty pieces and single-byte pieces that are
//! neither printable ASCII nor whitespace (so the bytes of a multi-byte
//! character decoded through byte fallback are not printed, as in
//! llama2.c).

use std::vec::Vec;

use crate::error::{Error, Result};

/// BOS id.
pub const BOS: usize = 1;
/// EOS id.
pub const EOS: usize = 2;

/// Scores at or below this never merge (llama2.c's starting best score).
const NO_MERGE: f32 = -1e10;

/// Every byte value, for returning one decoded byte as a slice.
static BYTE_VALUES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// A llama2.c vocabulary: pieces, scores, and a sorted index for lookups.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    scores: Vec<f32>,
    max_token_length: usize,
    longest: usize,
    sorted: Vec<usize>,
}

fn corrupt(reason: &'static str) -> Error {
    Error::Format {
        what: "llama2.c tokenizer",
        reason,
    }
}

impl Tokenizer {
    /// Parses `tokenizer.bin` bytes for a vocabulary of `vocab_size` tokens.
    /// `Err` for a truncated file, a negative length, or a `vocab_size` the
    /// file cannot hold (checked before anything is allocated).
    pub fn from_bytes(data: &[u8], vocab_size: usize) -> Result<Self> {
        let mut at = 0usize;
        let i32_at = |at: &mut usize| -> Result<i32> {
            let b = data.get(*at..*at + 4).ok_or(corrupt("truncated"))?;
            *at += 4;
            Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let max_len = i32_at(&mut at)?;
        if max_len < 0 {
            return Err(corrupt("negative maximum piece length"));
        }
        // Each token takes at least 8 bytes: refuse a count the file cannot hold.
        if vocab_size == 0 || vocab_size > (data.len() - 4) / 8 {
            return Err(corrupt("fewer tokens in the file than the vocabulary size"));
        }
        let mut spans = Vec::with_capacity(vocab_size);
        let mut scores = Vec::with_capacity(vocab_size);
        for _ in 0..vocab_size {
            let score = f32::from_bits(i32_at(&mut at)? as u32);
            let len = i32_at(&mut at)?;
            let len = usize::try_from(len).map_err(|_| corrupt("negative piece length"))?;
            if data.len() - at < len {
                return Err(corrupt("truncated"));
            }
            spans.push((at, len));
            scores.push(score);
            at += len;
        }
        let mut sorted: Vec<usize> = (0..vocab_size).collect();
        let piece = |i: usize| &data[spans[i].0..spans[i].0 + spans[i].1];
        sorted.sort_by(|&a, &b| piece(a).cmp(piece(b)).then(a.cmp(&b)));
        let longest = spans.iter().map(|s| s.1).max().unwrap_or(0);
        Ok(Self {
            bytes: data[..at].to_vec(),
            spans,
            scores,
            max_token_length: max_len as usize,
            longest,
            sorted,
        })
    }

    /// Reads `tokenizer.bin` from a file.
    pub fn read(path: impl AsRef<std::path::Path>, vocab_size: usize) -> Result<Self> {
        let data = std::fs::read(path).map_err(|_| corrupt("could not be opened or read"))?;
        Self::from_bytes(&data, vocab_size)
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.spans.len()
    }

    /// The file's maximum piece length.
    pub fn max_token_length(&self) -> usize {
        self.max_token_length
    }

    /// The bytes of token `id`.
    pub fn piece(&self, id: usize) -> Option<&[u8]> {
        let &(at, len) = self.spans.get(id)?;
        self.bytes.get(at..at + len)
    }

    /// The score of token `id`.
    pub fn score(&self, id: usize) -> Option<f32> {
        self.scores.get(id).copied()
    }

    /// The (lowest) id of the piece `bytes`.
    pub fn lookup(&self, bytes: &[u8]) -> Option<usize> {
        let k = self
            .sorted
            .partition_point(|&i| self.piece(i).unwrap_or(&[]) < bytes);
        let &id = self.sorted.get(k)?;
        (self.piece(id)? == bytes).then_some(id)
    }

    /// Token ids of `text` by llama2.c's rules (see the [module
    /// docs](self)). `Err` when the text is not empty and the vocabulary has
    /// no `" "` piece, or a byte-fallback id is outside the vocabulary.
    pub fn encode(&self, text: &str, bos: bool, eos: bool) -> Result<Vec<usize>> {
        let mut ids = Vec::with_capacity(text.len() + 3);
        if bos {
            ids.push(BOS);
        }
        if !text.is_empty() {
            let space = self
                .lookup(b" ")
                .ok_or(corrupt("no \" \" piece for the dummy prefix"))?;
            ids.push(space);
        }
        let mut utf8 = [0u8; 4];
        for c in text.chars() {
            let b = c.encode_utf8(&mut utf8).as_bytes();
            match self.lookup(b) {
                Some(id) => ids.push(id),
                None => {
                    for &byte in b {
                        let id = byte as usize + 3;
                        if id >= self.vocab_size() {
                            return Err(Error::OutOfRange {
                                what: "tokenizer: byte fallback id",
                                index: id,
                                len: self.vocab_size(),
                            });
                        }
                        ids.push(id);
                    }
                }
            }
        }
        let mut pair = Vec::with_capacity(2 * self.longest);
        loop {
            let mut best: Option<(f32, usize, usize)> = None;
            for i in 0..ids.len().saturating_sub(1) {
                pair.clear();
                pair.extend_from_slice(self.piece(ids[i]).unwrap_or(&[]));
                pair.extend_from_slice(self.piece(ids[i + 1]).unwrap_or(&[]));
                if let Some(id) = self.lookup(&pair) {
                    let score = self.scores[id];
                    if score > best.map_or(NO_MERGE, |b| b.0) {
                        best = Some((score, id, i));
                    }
                }
            }
            let Some((_, id, i)) = best else {
                break;
            };
            ids[i] = id;
            ids.remove(i + 1);
        }
        if eos {
            ids.push(EOS);
        }
        Ok(ids)
    }

    /// [`encode`](Self::encode) for text given as bytes: `Err`
    /// ([`Error::Format`]) unless they are valid UTF-8.
    pub fn encode_bytes(&self, text: &[u8], bos: bool, eos: bool) -> Result<Vec<usize>> {
        let text = core::str::from_utf8(text).map_err(|_| Error::Format {
            what: "tokenizer: text",
            reason: "not valid UTF-8",
        })?;
        self.encode(text, bos, eos)
    }

    /// The raw bytes of `token` following `prev`: a piece after BOS loses
    /// one leading space; `<0xXX>` is that byte. `Err` for an id outside the
    /// vocabulary.
    pub fn decode(&self, prev: usize, token: usize) -> Result<&[u8]> {
        let mut piece = self.piece(token).ok_or(Error::OutOfRange {
            what: "tokenizer: token id",
            index: token,
            len: self.vocab_size(),
        })?;
        if prev == BOS && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        if let Some(b) = byte_piece(piece) {
            return Ok(&BYTE_VALUES[b as usize..b as usize + 1]);
        }
        Ok(piece)
    }
}

/// The byte of a piece `<0x` + one or two hex digits (+ anything).
fn byte_piece(piece: &[u8]) -> Option<u8> {
    let rest = piece.strip_prefix(b"<0x")?;
    let digits = rest
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_hexdigit())
        .count();
    if digits == 0 {
        return None;
    }
    let s = core::str::from_utf8(&rest[..digits]).ok()?;
    u8::from_str_radix(s, 16).ok()
}

/// llama2.c's printing filter: `None` for an empty piece or a single byte
/// that is neither printable ASCII (`0x20..=0x7E`) nor whitespace (space,
/// `\t`, `\n`, `\v`, `\f`, `\r`); the piece otherwise.
pub fn printable(piece: &[u8]) -> Option<&[u8]> {
    match piece {
        [] => None,
        [b] if !(matches!(b, 0x20..=0x7E) || matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r')) => {
            None
        }
        _ => Some(piece),
    }
}
