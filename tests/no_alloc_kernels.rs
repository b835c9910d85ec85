//! Proves that the no_std kernels allocate nothing: a counting global allocator
//! wraps the system one, and every kernel of both backends and both faces runs
//! between two reads of this thread's counter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use constml::{Accumulate, Backend, MatMut, MatRef, Scalar, Simd, kernels};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged,
// so `System`'s guarantees carry over; the only addition is a thread-local
// counter bump, which neither allocates nor touches the returned memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

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
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 16]);
    assert_eq!(allocations(), before + 1);
    drop(v);

    let before = allocations();
    let r1 = run_all::<Simd>(&a, &b, &mut x);
    let r2 = run_all::<Scalar>(&a, &b, &mut x);
    let after = allocations();
    assert_eq!(after - before, 0, "the no_std kernels allocated");
    assert!(r1.is_finite() && r2.is_finite());
}
