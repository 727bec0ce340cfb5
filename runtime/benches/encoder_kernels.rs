//! Reference vs this build's variant of the encoder kernels (`check::EncoderShape`), on the
//! host. Build with the kernel set to compare, e.g.
//!
//! ```text
//! RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench -p kestrel-runtime --features kernel-check \
//!     --bench encoder_kernels --target-dir target/x86-64-v3
//! ```
//!
//! Each figure is the minimum over 30 rounds of the mean of 2,000 calls.

use std::time::Instant;

use kestrel_runtime::check::{self, EncoderShape, WORK_BYTES};

const CALLS: u32 = 2000;

fn main() {
    println!("kernel set: {}", kestrel_runtime::IMPL);
    let mut work = vec![0u8; WORK_BYTES];
    for shape in EncoderShape::ALL {
        let (mut best_r, mut best_v, mut equal) = (u32::MAX, u32::MAX, true);
        for _ in 0..30 {
            // Ticks: nanoseconds for CALLS calls.
            let t = check::bench_encoder(shape, &mut work, &mut |f| {
                let start = Instant::now();
                for _ in 0..CALLS {
                    f();
                }
                start.elapsed().as_nanos().min(u32::MAX as u128) as u32
            });
            best_r = best_r.min(t.reference);
            best_v = best_v.min(t.variant);
            equal &= t.equal;
        }
        let (r, v) = (best_r as f64 / CALLS as f64, best_v as f64 / CALLS as f64);
        println!(
            "{:<48} reference {:>9.1} ns  variant {:>9.1} ns  speedup {:>5.2}x  bit-exact {}",
            shape.name(),
            r,
            v,
            r / v,
            equal
        );
    }
}
