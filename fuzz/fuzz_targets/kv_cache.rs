//! KV caches (bounded and ring) under arbitrary sequences of append, chunk
//! append, reset, truncate, copy and beam reorder, checked after every step
//! against a `Vec`-based model of the same policy; and attention over the cache
//! (held keys, or a pending chunk) equal to attention over the model's keys.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::attention::{
    AttnOptions, CachePolicy, KvCacheDyn, KvStore, WeightsOut, attend_cache_views, reorder_beams,
};
use constml::{Error, MatMut, MatRef};
use constml_fuzz::{Input, stat};
use libfuzzer_sys::fuzz_target;

/// The model: every position ever appended and still held, with its key and value.
#[derive(Clone)]
struct Model {
    cap: usize,
    ring: bool,
    oldest: usize,
    next: usize,
    /// `(position, key, value)`, positions `oldest..next` in order.
    held: Vec<(usize, Vec<f32>, Vec<f32>)>,
}

impl Model {
    fn append(&mut self, rows: &[(Vec<f32>, Vec<f32>)]) -> Result<usize, Error> {
        if !self.ring && self.next + rows.len() > self.cap {
            return Err(Error::CacheFull { capacity: self.cap });
        }
        let first = self.next;
        for (k, v) in rows {
            self.held.push((self.next, k.clone(), v.clone()));
            self.next += 1;
        }
        if self.ring {
            self.oldest = self.oldest.max(self.next.saturating_sub(self.cap));
        }
        let oldest = self.oldest;
        self.held.retain(|h| h.0 >= oldest);
        Ok(first)
    }
    fn truncate(&mut self, pos: usize) -> Result<(), Error> {
        if pos < self.oldest || pos > self.next {
            return Err(Error::PositionNotHeld {
                position: pos,
                oldest: self.oldest,
                next: self.next,
            });
        }
        self.next = pos;
        self.held.retain(|h| h.0 < pos);
        Ok(())
    }
    fn reset(&mut self) {
        self.oldest = 0;
        self.next = 0;
        self.held.clear();
    }
}

fn agree(c: &KvCacheDyn<f32>, m: &Model, kvh: usize, d: usize) {
    assert_eq!((c.oldest_position(), c.next_position()), (m.oldest, m.next));
    assert_eq!(c.len(), m.held.len());
    assert_eq!(c.is_empty(), m.held.is_empty());
    for (p, k, v) in &m.held {
        let slot = c.position_slot(*p).expect("a held position has a slot");
        assert!(slot < m.cap);
        assert_eq!(c.slot_position(slot), Some(*p));
        for g in 0..kvh {
            assert_eq!(
                c.key(g, *p),
                Some(&k[g * d..(g + 1) * d]),
                "key {p} head {g}"
            );
            assert_eq!(c.value(g, *p), Some(&v[g * d..(g + 1) * d]));
        }
    }
    // Nothing else is reported held.
    for p in [m.next, m.oldest.wrapping_sub(1), m.next + m.cap] {
        assert_eq!(c.key(0, p), None);
    }
    let occupied = (0..m.cap).filter(|&s| c.slot_position(s).is_some()).count();
    assert_eq!(occupied, m.held.len());
}

/// Attention in f64 of query rows at positions `start..` over `keys`
/// (`(position, key, value)`), causal, within a window of `w` keys.
#[allow(clippy::too_many_arguments)]
fn naive(
    q: &[f32],
    start: usize,
    heads: usize,
    kvh: usize,
    d: usize,
    keys: &[(usize, Vec<f32>, Vec<f32>)],
    w: Option<usize>,
) -> Vec<f64> {
    let nq = q.len() / (heads * d);
    let mut out = vec![0.0; q.len()];
    let group = heads / kvh;
    for i in 0..nq {
        let p = start + i;
        for h in 0..heads {
            let g = h / group;
            let qh = &q[(i * heads + h) * d..][..d];
            let vis: Vec<_> = keys
                .iter()
                .filter(|kv| kv.0 <= p && w.is_none_or(|w| kv.0 + w > p))
                .collect();
            let s: Vec<f64> = vis
                .iter()
                .map(|kv| {
                    let k = &kv.1[g * d..(g + 1) * d];
                    qh.iter()
                        .zip(k)
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>()
                        / (d as f64).sqrt()
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for (kv, e) in vis.iter().zip(&e) {
                for j in 0..d {
                    out[(i * heads + h) * d + j] += e / z * kv.2[g * d + j] as f64;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let kvh = inp.range(1, 2);
    let d = inp.range(1, 5);
    let cap = inp.range(1, 6);
    let ring = inp.bool();
    let nb = inp.range(1, 3);
    let policy = if ring {
        CachePolicy::Ring
    } else {
        CachePolicy::Bounded
    };
    let mut caches: Vec<KvCacheDyn<f32>> = (0..nb)
        .map(|_| KvCacheDyn::new(kvh, d, cap, policy).unwrap())
        .collect();
    let empty = Model {
        cap,
        ring,
        oldest: 0,
        next: 0,
        held: vec![],
    };
    let mut models = vec![empty; nb];
    let w = kvh * d;
    let row = |i: &mut Input| -> (Vec<f32>, Vec<f32>) {
        (i.vec(w, |i| i.fine_f32() / 2.0), i.vec(w, |i| i.fine_f32()))
    };
    let steps = inp.range(1, 40);
    for _ in 0..steps {
        let b = inp.range(0, nb - 1);
        match inp.u8() % 8 {
            0 | 1 => {
                let (k, v) = row(&mut inp);
                let got = caches[b].append_token(&k, &v);
                assert_eq!(got, models[b].append(&[(k, v)]));
            }
            2 => {
                let n = inp.range(0, cap + 2);
                let rows: Vec<_> = (0..n).map(|_| row(&mut inp)).collect();
                let kf: Vec<f32> = rows.iter().flat_map(|r| r.0.clone()).collect();
                let vf: Vec<f32> = rows.iter().flat_map(|r| r.1.clone()).collect();
                let km = MatRef::new(&kf, n, w).unwrap();
                let vm = MatRef::new(&vf, n, w).unwrap();
                let got = caches[b].append_rows(km, vm);
                assert_eq!(got, models[b].append(&rows));
            }
            3 => {
                let pos = inp.range(0, models[b].next + 2);
                assert_eq!(caches[b].truncate(pos), models[b].truncate(pos));
            }
            4 => {
                if inp.u8() < 64 {
                    caches[b].reset();
                    models[b].reset();
                }
            }
            5 => {
                let parents: Vec<usize> = inp.vec(nb, |i| i.range(0, nb));
                let got = reorder_beams(&mut caches, &parents);
                if parents.iter().all(|&p| p < nb) {
                    got.unwrap();
                    let old = models.clone();
                    for (m, &p) in models.iter_mut().zip(&parents) {
                        *m = old[p].clone();
                    }
                } else {
                    assert!(got.is_err());
                }
            }
            6 => {
                let src = inp.range(0, nb - 1);
                if src != b {
                    let s = caches[src].clone();
                    caches[b].copy_from(&s).unwrap();
                    models[b] = models[src].clone();
                }
            }
            _ => attend(&mut inp, &caches[b], &models[b], kvh, d),
        }
        agree(&caches[b], &models[b], kvh, d);
    }
    for (c, m) in caches.iter().zip(&models) {
        agree(c, m, kvh, d);
    }
});

/// Attention of the newest held queries, or of a pending chunk, against the model.
fn attend(inp: &mut Input, c: &KvCacheDyn<f32>, m: &Model, kvh: usize, d: usize) {
    let heads = kvh * inp.range(1, 2);
    let pending_n = if inp.bool() { inp.range(1, 3) } else { 0 };
    let w = kvh * d;
    let pend: Vec<(Vec<f32>, Vec<f32>)> = (0..pending_n)
        .map(|_| {
            (
                inp.vec(w, |i| i.fine_f32() / 2.0),
                inp.vec(w, |i| i.fine_f32()),
            )
        })
        .collect();
    let (nq, start) = if pending_n > 0 {
        (pending_n, m.next)
    } else {
        let nq = inp.range(0, m.held.len().min(3));
        (nq, m.next - nq)
    };
    let q: Vec<f32> = inp.vec(nq * heads * d, |i| i.fine_f32() / 2.0);
    let kf: Vec<f32> = pend.iter().flat_map(|r| r.0.clone()).collect();
    let vf: Vec<f32> = pend.iter().flat_map(|r| r.1.clone()).collect();
    let pending = (pending_n > 0).then(|| {
        (
            MatRef::new(&kf, pending_n, w).unwrap(),
            MatRef::new(&vf, pending_n, w).unwrap(),
        )
    });
    let mut out = vec![f32::NAN; nq * heads * d];
    let mut scratch = vec![0.0f32; nq * (m.held.len() + pending_n)];
    let got = attend_cache_views(
        MatRef::new(&q, nq, heads * d).unwrap(),
        start,
        heads,
        c,
        pending,
        MatMut::new(&mut out, nq, heads * d).unwrap(),
        &mut scratch,
        WeightsOut::None,
        &AttnOptions::new(),
    );
    let window = m.ring.then_some(m.cap);
    let lo = window.map_or(0, |w| (start + 1).saturating_sub(w));
    if nq > 0 && lo < m.oldest {
        assert!(matches!(got, Err(Error::PositionNotHeld { .. })), "{got:?}");
        stat("window reaches a dropped position");
        return;
    }
    got.unwrap();
    stat(if pending_n > 0 {
        "attended with pending"
    } else {
        "attended"
    });
    let mut keys = m.held.clone();
    for (i, (k, v)) in pend.into_iter().enumerate() {
        keys.push((m.next + i, k, v));
    }
    let want = naive(&q, start, heads, kvh, d, &keys, window);
    for (g, w) in out.iter().zip(&want) {
        assert!(
            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{g} vs {w}"
        );
    }
}
