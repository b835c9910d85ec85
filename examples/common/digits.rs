//! scikit-learn's 8 × 8 handwritten digits (`examples/data/digits.csv`),
//! shared by the digits examples: loading (pixels scaled to [0, 1]), a
//! seeded stratified 80/20 split, and a seeded shuffle.

use std::error::Error;

use constml::rand_core::Rng;

/// Pixels per image.
pub const PIXELS: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits.csv");

/// Images scaled to [0, 1], and their labels.
pub type Digits = (Vec<[f32; PIXELS]>, Vec<usize>);

/// Reads the CSV; a clear error (not a panic) for a missing or malformed file.
pub fn load() -> Result<Digits, Box<dyn Error>> {
    let text = std::fs::read_to_string(DATA).map_err(|e| format!("{DATA}: {e}"))?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("digits.csv is empty")?;
    if header.split(',').count() != PIXELS + 1 {
        return Err(format!("digits.csv: expected {} columns", PIXELS + 1).into());
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, line) in lines.enumerate() {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != PIXELS + 1 {
            return Err(format!("digits.csv line {}: {} fields", i + 2, v.len()).into());
        }
        let mut img = [0.0f32; PIXELS];
        for (p, s) in img.iter_mut().zip(&v[..PIXELS]) {
            let px: f32 = s
                .trim()
                .parse()
                .map_err(|_| format!("digits.csv line {}: {s:?}", i + 2))?;
            if !(0.0..=16.0).contains(&px) {
                return Err(format!("digits.csv line {}: pixel {px} outside 0..16", i + 2).into());
            }
            *p = px / 16.0;
        }
        let label: usize = v[PIXELS]
            .trim()
            .parse()
            .map_err(|_| format!("digits.csv line {}: label", i + 2))?;
        if label >= CLASSES {
            return Err(format!("digits.csv line {}: label {label}", i + 2).into());
        }
        x.push(img);
        y.push(label);
    }
    if x.is_empty() {
        return Err("digits.csv has no rows".into());
    }
    Ok((x, y))
}

/// Fisher–Yates with `rng`.
pub fn shuffle(v: &mut [usize], rng: &mut impl Rng) {
    for i in (1..v.len()).rev() {
        let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        v.swap(i, j);
    }
}

/// Stratified 80/20 split: each digit's images shuffled, 80 % of each (rounded
/// to nearest) to training. Returns `(train, test)` indices.
pub fn split(y: &[usize], rng: &mut impl Rng) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..CLASSES {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        shuffle(&mut idx, rng);
        let k = (idx.len() * 4 + 2) / 5;
        train.extend_from_slice(&idx[..k]);
        test.extend_from_slice(&idx[k..]);
    }
    (train, test)
}

/// Index of the largest value (the lowest on ties): the predicted class.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
