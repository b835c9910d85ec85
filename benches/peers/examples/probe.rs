use constml::{Accumulate, Backend, MatMut, MatRef, Simd};
use std::hint::black_box;
use std::time::Instant;

fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 }).collect()
}
fn time(f: &mut dyn FnMut(), flops: f64) -> f64 {
    let mut reps = 1usize;
    loop { let t = Instant::now(); for _ in 0..reps { f(); } if t.elapsed().as_secs_f64() > 0.003 { break; } reps *= 2; }
    let mut best = f64::INFINITY;
    for _ in 0..25 { let t = Instant::now(); for _ in 0..reps { f(); } best = best.min(t.elapsed().as_secs_f64() / reps as f64); }
    flops / best / 1e9
}
fn main() {
    let shapes: Vec<(usize, usize, usize)> = std::env::args().nth(1).map(|s| s.split(',').map(|x| { let v: Vec<usize> = x.split('x').map(|y| y.parse().unwrap()).collect(); if v.len()==1 {(v[0],v[0],v[0])} else {(v[0],v[1],v[2])} }).collect()).unwrap_or(vec![(16,16,16),(32,32,32),(48,48,48),(64,64,64),(96,96,96),(128,128,128),(256,256,256),(512,512,512),(64,768,3072),(1,768,768)]);
    for (m, k, n) in shapes {
        let a = fill(m * k, 1); let b = fill(k * n, 2); let mut c = vec![0.0f32; m * n];
        let fl = 2.0 * (m * k * n) as f64;
        let ours = time(&mut || { Simd::gemm(MatRef::new(black_box(&a), m, k).unwrap(), MatRef::new(black_box(&b), k, n).unwrap(), MatMut::new(&mut c, m, n).unwrap(), Accumulate::Overwrite).unwrap(); black_box(&c); }, fl);
        if std::env::var_os("ONLYAB").is_some() { println!("{m}x{k}x{n} ab {ours:.1}"); continue; }
        let bt = fill(n * k, 3);
        let ours_bt = time(&mut || { Simd::gemm_bt(MatRef::new(black_box(&a), m, k).unwrap(), MatRef::new(black_box(&bt), n, k).unwrap(), MatMut::new(&mut c, m, n).unwrap(), Accumulate::Overwrite).unwrap(); black_box(&c); }, fl);
        let at = fill(k * m, 4);
        let ours_at = time(&mut || { Simd::gemm_at(MatRef::new(black_box(&at), k, m).unwrap(), MatRef::new(black_box(&b), k, n).unwrap(), MatMut::new(&mut c, m, n).unwrap(), Accumulate::Overwrite).unwrap(); black_box(&c); }, fl);
        let mm = time(&mut || unsafe { matrixmultiply::sgemm(m, k, n, 1.0, black_box(a.as_ptr()), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1); black_box(&c); }, fl);
        let na = nalgebra::DMatrix::from_row_slice(m, k, &a); let nb = nalgebra::DMatrix::from_row_slice(k, n, &b); let mut nc = nalgebra::DMatrix::<f32>::zeros(m, n);
        let nal = time(&mut || { nc.gemm(1.0, black_box(&na), black_box(&nb), 0.0); black_box(&nc); }, fl);
        println!("{m:>4}x{k:>4}x{n:>4}  ab {ours:7.1}  abt {ours_bt:7.1}  atb {ours_at:7.1}  mm {mm:7.1}  dmat {nal:7.1}  ratio ab/mm {:.2}", ours / mm);
    }
}
