//! Reader for constml's reference-vector files (format CMLREF01, written by
//! `tests/reference/refvec.py`). Uses only `core`, so firmware tests can include
//! this file with `#[path]` and read vectors embedded with `include_bytes!`.
#![allow(dead_code)]

/// Element type of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    I64,
    U8,
}

impl DType {
    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(DType::F32),
            2 => Some(DType::F64),
            3 => Some(DType::I64),
            4 => Some(DType::U8),
            _ => None,
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 => 1,
        }
    }
}

/// One named array.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub dtype: DType,
    ndim: usize,
    dims: [usize; 8],
    pub data: &'a [u8],
}

impl<'a> Entry<'a> {
    /// The shape, row-major.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.ndim]
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }
    /// Element `i` widened to `f64` (floats exactly; i64 and u8 by value).
    pub fn get(&self, i: usize) -> f64 {
        let s = self.dtype.size();
        let b = &self.data[i * s..(i + 1) * s];
        match self.dtype {
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            DType::I64 => {
                i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64
            }
            DType::U8 => b[0] as f64,
        }
    }
    /// Element `i` as `f32` (exact for F32 entries).
    pub fn get_f32(&self, i: usize) -> f32 {
        self.get(i) as f32
    }
    /// Element `i` of an I64 entry.
    pub fn get_i64(&self, i: usize) -> i64 {
        let b = &self.data[i * 8..i * 8 + 8];
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    /// The bytes of a U8 entry as text (the "meta" entry).
    pub fn text(&self) -> &'a str {
        core::str::from_utf8(self.data).unwrap_or("")
    }
}

/// A parsed file: iterate with [`RefFile::entries`] or look up by name.
#[derive(Clone, Copy, Debug)]
pub struct RefFile<'a> {
    bytes: &'a [u8],
    count: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
}
fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]) as usize)
}

impl<'a> RefFile<'a> {
    /// Checks the magic and the entry count; `None` if this is not a CMLREF01 file.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.get(..8)? != b"CMLREF01" {
            return None;
        }
        let count = u32_at(bytes, 8)?;
        let f = RefFile { bytes, count };
        // Walk once so that a truncated file is rejected here, not later.
        let mut n = 0;
        let mut at = 12;
        while n < count {
            let (_, next) = f.entry_at(at)?;
            at = next;
            n += 1;
        }
        Some(f)
    }

    fn entry_at(&self, mut at: usize) -> Option<(Entry<'a>, usize)> {
        let b = self.bytes;
        let nl = u16_at(b, at)?;
        at += 2;
        let name = core::str::from_utf8(b.get(at..at + nl)?).ok()?;
        at += nl;
        let dtype = DType::from_code(*b.get(at)?)?;
        let ndim = *b.get(at + 1)? as usize;
        at += 2;
        if ndim > 8 {
            return None;
        }
        let mut dims = [0usize; 8];
        let mut n = 1usize;
        for d in dims.iter_mut().take(ndim) {
            *d = u32_at(b, at)?;
            n = n.checked_mul(*d)?;
            at += 4;
        }
        let bytes = n.checked_mul(dtype.size())?;
        let data = b.get(at..at + bytes)?;
        Some((
            Entry {
                name,
                dtype,
                ndim,
                dims,
                data,
            },
            at + bytes,
        ))
    }

    /// All entries in file order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        let mut at = 12;
        let mut left = self.count;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let (e, next) = self.entry_at(at)?;
            at = next;
            left -= 1;
            Some(e)
        })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<Entry<'a>> {
        self.entries().find(|e| e.name == name)
    }
}
