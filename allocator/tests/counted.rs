//! `Counted` counts what is live: allocations, growth, and frees.

#![allow(clippy::unwrap_used, missing_docs)]

#[global_allocator]
static ALLOCATOR: allocator::Counted<allocator::Allocator> =
    allocator::Counted::new(allocator::Allocator);

#[test]
fn counts_bytes_allocated_grown_and_freed_and_the_peak() {
    // The test harness's other threads allocate too; a large buffer stands far above them.
    const MIB: usize = 1 << 20;
    let before = ALLOCATOR.live_bytes();
    let mut buffer: Vec<u8> = Vec::with_capacity(8 * MIB);
    assert!(ALLOCATOR.live_bytes() >= before + 8 * MIB);
    buffer.reserve_exact(24 * MIB);
    assert!(ALLOCATOR.live_bytes() >= before + 24 * MIB);
    drop(buffer);
    assert!(ALLOCATOR.live_bytes() < before + MIB);
    assert!(ALLOCATOR.peak_bytes() >= before + 24 * MIB);
    ALLOCATOR.reset_peak();
    assert!(ALLOCATOR.peak_bytes() < before + MIB);
}
