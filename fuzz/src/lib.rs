//! Shared pieces of the fuzz targets: a byte reader that turns the fuzzer's
//! input into shapes, parameters and numbers, and small helpers for the checks.
//!
//! Every target decodes its input with [`Input`], runs the library, and checks
//! an invariant against a plain model of the same rule; a broken invariant
//! panics, which libFuzzer reports as a finding (with the input saved).

/// Reads values from the fuzzer's bytes; past the end every read returns 0, so
/// any input decodes to something.
pub struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// `true` with probability about one half.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A value in `lo..=hi` (`hi ≥ lo`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        let span = hi - lo + 1;
        let raw = if span <= 256 {
            self.u8() as usize
        } else {
            self.u32() as usize
        };
        lo + raw % span
    }

    /// Any `f32`: mostly moderate values, often a special one (NaN, ±∞, ±0, a
    /// subnormal, the extremes), sometimes raw bits.
    pub fn any_f32(&mut self) -> f32 {
        match self.u8() % 16 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => -0.0,
            4 => f32::from_bits(self.range(1, 0x007f_ffff) as u32), // subnormal
            5 => f32::MAX * if self.bool() { 1.0 } else { -1.0 },
            6 => f32::from_bits(self.u32()),
            _ => self.small_f32(),
        }
    }

    /// A finite value in about `[-8, 8]`, on a grid of 1/16: ties are common.
    pub fn small_f32(&mut self) -> f32 {
        (self.u8() as i8) as f32 / 16.0
    }

    /// A finite value in `[-8, 8)` with 16 bits of resolution (ties are rare).
    pub fn fine_f32(&mut self) -> f32 {
        let r = u16::from_le_bytes([self.u8(), self.u8()]);
        (r as i16) as f32 / 4096.0
    }

    /// `n` values from `f`.
    pub fn vec<T>(&mut self, n: usize, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        (0..n).map(|_| f(self)).collect()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.at..).unwrap_or(&[])
    }
}

/// `|a − b| ≤ tol · (1 + |b|)`, or both NaN.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + b.abs())
}

/// Token ids ordered by decreasing key, ties by lower id (the library's rule
/// for greedy, top-k and top-p). IEEE comparison: −0 ties with +0. NaN keys
/// are not expected here (they rank last).
pub fn ranked(keys: &[f64]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..keys.len()).collect();
    let key = |i: usize| {
        if keys[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            keys[i]
        }
    };
    ids.sort_by(|&a, &b| {
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(core::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    ids
}

/// The softmax of `x` in `f64` (entries of −∞ get 0).
pub fn softmax64(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let e: Vec<f64> = x.iter().map(|&v| ((v as f64) - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// With `FUZZ_STATS` set in the environment, prints `stat: <what>` to stderr:
/// replaying a corpus with it shows how often each branch of checks ran.
pub fn stat(what: &str) {
    if std::env::var_os("FUZZ_STATS").is_some() {
        eprintln!("stat: {what}");
    }
}
