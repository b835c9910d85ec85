//! Proves that what the firmware smoke binary links allocates nothing: a
//! counting global allocator wraps the system one, and the smoke binary's own
//! code — `firmware/smoke/src/exercise.rs`, included here file for file: every
//! kernel, the attention family and decoding, both backends — runs between two
//! reads of this thread's counter.

#[path = "common/counting.rs"]
mod counting;

#[path = "common/exercise.rs"]
mod exercise;

use counting::allocations_during;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

#[test]
fn firmware_code_allocates_nothing() {
    // Sanity: the counter does count.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(n, 1);

    let mut result = Ok(0.0);
    let n = allocations_during(|| result = exercise::run_all(std::hint::black_box(0.37)));
    assert_eq!(n, 0, "the firmware's no_std paths allocated {n} times");
    let r = result.expect("every call of the firmware exercise succeeds");
    assert!(r.is_finite(), "checksum {r}");
}
