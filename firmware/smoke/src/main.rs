//! A no_std binary that calls every public constml kernel for `f32`, so that the
//! generic code is instantiated and must compile and link for the MCU target
//! (a library build alone instantiates nothing). It runs the kernels once at
//! start-up and then idles; results go through `black_box` so nothing is
//! optimised away.
#![no_std]
#![no_main]

use core::hint::black_box;

use constml::{Accumulate, Backend, MatMut, MatRef, Scalar, Simd, kernels};
use cortex_m_rt::entry;
use panic_halt as _;

const N: usize = 24;

fn all_kernels<B: Backend>(a: &[[f32; N]; N], b: &[[f32; N]; N], x: &mut [f32; N]) -> f32 {
    let mut c = [[0.0f32; N]; N];
    let mut y = [0.0f32; N];
    let mut r = B::dot(&x[..], &a[0][..]).unwrap_or(0.0);
    B::axpy(0.5, &a[1], &mut y).ok();
    B::add(&mut y, &a[2]).ok();
    B::mul(&mut y, &a[3]).ok();
    B::scale(0.25, &mut y);
    r += B::sum(&y);
    r += B::max(&y).unwrap_or(0.0);
    r += B::argmax(&y).unwrap_or(0) as f32;
    B::softmax(x);
    B::log_softmax(x);
    B::relu(x);
    B::sigmoid(x);
    B::tanh(x);
    B::silu(x);
    B::gelu(x);
    B::gelu_tanh(x);
    let (av, bv) = (MatRef::from_array(a), MatRef::from_array(b));
    B::gemm(av, bv, MatMut::from_array(&mut c), Accumulate::Overwrite).ok();
    B::gemm_abt(av, bv, MatMut::from_array(&mut c), Accumulate::Add).ok();
    B::matvec(av, x, &mut y, Accumulate::Overwrite).ok();
    kernels::matmul_with::<B, f32, N, N, N>(a, b, &mut c);
    kernels::matmul_bt_with::<B, f32, N, N, N>(a, b, &mut c);
    kernels::matvec_with::<B, f32, N, N>(a, x, &mut y);
    let bias = y;
    kernels::linear_with::<B, f32, N, N>(a, &bias, x, &mut y);
    kernels::softmax_with::<B, f32, N>(x);
    kernels::log_softmax_with::<B, f32, N>(x);
    r += kernels::dot_with::<B, f32, N>(x, &y);
    r += kernels::argmax_with::<B, f32, N>(&y).unwrap_or(0) as f32;
    r + c[1][2]
}

#[entry]
fn main() -> ! {
    let a: [[f32; N]; N] =
        core::array::from_fn(|i| core::array::from_fn(|j| ((i * 3 + j) % 7) as f32 * 0.1));
    let b: [[f32; N]; N] =
        core::array::from_fn(|i| core::array::from_fn(|j| ((i + 5 * j) % 9) as f32 * 0.1));
    let mut x: [f32; N] = core::array::from_fn(|i| i as f32 * 0.1 - 1.0);
    let a = black_box(a);
    let b = black_box(b);
    black_box(all_kernels::<Simd>(&a, &b, &mut x));
    black_box(all_kernels::<Scalar>(&a, &b, &mut x));
    loop {
        core::hint::spin_loop();
    }
}
