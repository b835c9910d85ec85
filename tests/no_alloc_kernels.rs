//! Proves that the no_std kernels allocate nothing: a counting global allocator
//! wraps the system one, and every kernel of both backends and both faces runs
//! between two reads of this thread's counter.

#[path = "common/counting.rs"]
mod counting;

use constml::{Accumulate, Backend, MatMut, MatRef, Scalar, Simd, kernels};
use counting::allocations_during;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

fn run_all<B: Backend>(a: &[[f32; 40]; 33], b: &[[f32; 33]; 40], x: &mut [f32; 40]) -> f32 {
    let mut c = [[0.0f32; 33]; 33];
    let mut acc = 0.0;
    acc += B::dot(&x[..], &a[0][..]).unwrap_or(0.0);
    let (head, tail) = x.split_at_mut(20);
    B::axpy(0.5, tail, head).ok();
    B::add(head, tail).ok();
    B::mul(head, tail).ok();
    B::scale(0.9, x);
    acc += B::sum(x);
    acc += B::max(x).unwrap_or(0.0);
    acc += B::argmax(x).unwrap_or(0) as f32;
    B::softmax(x);
    B::log_softmax(x);
    B::relu(x);
    B::sigmoid(x);
    B::tanh(x);
    B::silu(x);
    B::gelu(x);
    B::gelu_tanh(x);
    let av = MatRef::from_array(a);
    let bv = MatRef::from_array(b);
    B::gemm(av, bv, MatMut::from_array(&mut c), Accumulate::Overwrite).ok();
    B::gemm_abt(av, av, MatMut::from_array(&mut c), Accumulate::Add).ok();
    let mut y = [0.0f32; 33];
    B::matvec(av, x, &mut y, Accumulate::Overwrite).ok();
    // The const-generic face.
    kernels::matmul_with::<B, _, 33, 40, 33>(a, b, &mut c);
    kernels::matmul_bt_with::<B, _, 33, 40, 33>(a, a, &mut c);
    kernels::matvec_with::<B, _, 40, 33>(a, x, &mut y);
    kernels::linear_with::<B, _, 40, 33>(a, &y.clone(), x, &mut y);
    kernels::softmax_with::<B, _, 40>(x);
    kernels::log_softmax_with::<B, _, 40>(x);
    acc += kernels::dot_with::<B, _, 40>(x, &a[1]);
    acc += kernels::argmax_with::<B, _, 40>(x).unwrap_or(0) as f32;
    acc + c[3][4] + y[5]
}

#[test]
fn kernels_allocate_nothing() {
    let a: [[f32; 40]; 33] =
        core::array::from_fn(|i| core::array::from_fn(|j| ((i * 7 + j) % 11) as f32 * 0.1));
    let b: [[f32; 33]; 40] =
        core::array::from_fn(|i| core::array::from_fn(|j| ((i + 3 * j) % 5) as f32 * 0.2));
    let mut x: [f32; 40] = core::array::from_fn(|i| i as f32 * 0.05 - 1.0);

    // Sanity: the counter does count.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(n, 1);

    let (mut r1, mut r2) = (0.0, 0.0);
    let n = allocations_during(|| {
        r1 = run_all::<Simd>(&a, &b, &mut x);
        r2 = run_all::<Scalar>(&a, &b, &mut x);
    });
    assert_eq!(n, 0, "the no_std kernels allocated");
    assert!(r1.is_finite() && r2.is_finite());
}
