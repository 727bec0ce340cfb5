//! The C interface called from Rust: every error path returns its code, and a successful
//! run gives exactly `kestrel_runtime::Plan::run_f32`'s logits.

mod common;

use common::{bits, model, normalized, pixels, reference};
use kestrel::*;
use kestrel_format::{AlignedBuf, Precision};
use KestrelStatus as S;

fn zeroed() -> Box<KestrelHandle> {
    Box::new(KestrelHandle {
        opaque: [0; KESTREL_HANDLE_SIZE],
    })
}

fn init(h: &mut KestrelHandle, bytes: &[u8]) -> i32 {
    // SAFETY: a live handle and live model bytes, kept alive by each test.
    unsafe { kestrel_init(h, bytes.as_ptr(), bytes.len()) }
}

/// Runs through the C interface with the given buffers, returning the status.
fn run_pixels(h: &KestrelHandle, arena: &mut [u8], p: &[u8], out: &mut [f32]) -> i32 {
    // SAFETY: every pointer comes with its slice's length.
    unsafe {
        kestrel_run_pixels(
            h,
            arena.as_mut_ptr(),
            arena.len(),
            p.as_ptr(),
            p.len(),
            out.as_mut_ptr(),
            out.len(),
        )
    }
}

fn run_f32(h: &KestrelHandle, arena: &mut [u8], x: &[f32], out: &mut [f32]) -> i32 {
    // SAFETY: every pointer comes with its slice's length.
    unsafe {
        kestrel_run_f32(
            h,
            arena.as_mut_ptr(),
            arena.len(),
            x.as_ptr(),
            x.len(),
            out.as_mut_ptr(),
            out.len(),
        )
    }
}

#[test]
fn runs_match_the_runtime_bit_for_bit() {
    for precision in [Precision::Int8, Precision::F32] {
        let file = model(precision);
        let buf = AlignedBuf::new(&file);
        let mut h = zeroed();
        assert_eq!(init(&mut h, &buf), S::Ok as i32, "{precision:?}");
        // SAFETY: an initialized handle.
        let (need, n_in, n_out) = unsafe {
            (
                kestrel_arena_bytes(&*h),
                kestrel_input_len(&*h),
                kestrel_output_len(&*h),
            )
        };
        assert!(need > 0);
        assert_eq!((n_in, n_out), (16, 3));
        // An arena at any address works with 15 spare bytes; fill it with junk first.
        let mut arena = vec![0xA5u8; need + 15 + 3];
        for skew in 0..4 {
            let arena = &mut arena[skew..][..need + 15];
            let mut out = [f32::NAN; 3];
            assert_eq!(run_pixels(&h, arena, &pixels(), &mut out), 0);
            let want = reference(&file, Some(&pixels()), None);
            assert_eq!(bits(&out), bits(&want), "{precision:?} pixels");
            let mut out = [f32::NAN; 3];
            assert_eq!(run_f32(&h, arena, &normalized(), &mut out), 0);
            let want = reference(&file, None, Some(&normalized()));
            assert_eq!(bits(&out), bits(&want), "{precision:?} normalized");
        }
        // The handle holds no pointer into itself: a copy runs the same.
        let copy = Box::new(KestrelHandle { opaque: h.opaque });
        drop(h);
        let mut out = [0f32; 3];
        let mut arena = vec![0u8; need + 15];
        assert_eq!(run_pixels(&copy, &mut arena, &pixels(), &mut out), 0);
        assert_eq!(bits(&out), bits(&reference(&file, Some(&pixels()), None)));
    }
}

#[test]
fn init_errors() {
    let file = model(Precision::Int8);
    let buf = AlignedBuf::new(&file);
    let mut h = zeroed();
    // SAFETY: null pointers are what is being tested; the rest is live.
    unsafe {
        let null = core::ptr::null_mut();
        assert_eq!(
            kestrel_init(null, buf.as_ptr(), buf.len()),
            S::NullPointer as i32
        );
        assert_eq!(
            kestrel_init(&mut *h, core::ptr::null(), 0),
            S::NullPointer as i32
        );
        // A misaligned handle is refused before anything is written.
        let mut words = vec![0u64; KESTREL_HANDLE_SIZE / 8 + 1];
        let odd = words
            .as_mut_ptr()
            .cast::<u8>()
            .add(4)
            .cast::<KestrelHandle>();
        assert_eq!(
            kestrel_init(odd, buf.as_ptr(), buf.len()),
            S::MisalignedPointer as i32
        );
        assert_eq!(kestrel_arena_bytes(odd), 0);
    }

    // Misaligned model bytes: the same file one byte past an aligned address.
    let mut shifted = vec![0u8; 1];
    shifted.extend_from_slice(&file);
    let shifted = AlignedBuf::new(&shifted);
    assert_eq!(init(&mut h, &shifted[1..]), S::ModelMisaligned as i32);

    // Another format version.
    let mut bad = file.clone();
    bad[4] = bad[4].wrapping_add(1);
    assert_eq!(init(&mut h, &AlignedBuf::new(&bad)), S::ModelVersion as i32);

    // Corrupt, truncated, empty, too long, not a model at all.
    let mut corrupt = file.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    let mut long = file.clone();
    long.push(0);
    for bytes in [
        &corrupt[..],
        &file[..file.len() - 1],
        &[],
        &long,
        b"ONNX\0\0\0\0",
    ] {
        assert_eq!(
            init(&mut h, &AlignedBuf::new(bytes)),
            S::ModelInvalid as i32
        );
    }

    // A failed init leaves even a previously good handle uninitialized.
    assert_eq!(init(&mut h, &buf), 0);
    assert!(unsafe { kestrel_arena_bytes(&*h) } > 0);
    assert_eq!(
        init(&mut h, &AlignedBuf::new(&corrupt)),
        S::ModelInvalid as i32
    );
    // SAFETY: a live handle.
    unsafe {
        assert_eq!(kestrel_arena_bytes(&*h), 0);
        assert_eq!(kestrel_input_len(&*h), 0);
        assert_eq!(kestrel_output_len(&*h), 0);
    }
}

#[test]
fn uninitialized_and_null_handles() {
    let h = zeroed();
    let mut arena = vec![0u8; 4096];
    let mut out = [0f32; 3];
    assert_eq!(
        run_pixels(&h, &mut arena, &pixels(), &mut out),
        S::NotInitialized as i32
    );
    assert_eq!(
        run_f32(&h, &mut arena, &normalized(), &mut out),
        S::NotInitialized as i32
    );
    // SAFETY: null and zeroed handles are what is being tested.
    unsafe {
        assert_eq!(kestrel_arena_bytes(&*h), 0);
        assert_eq!(kestrel_arena_bytes(core::ptr::null()), 0);
        assert_eq!(kestrel_input_len(core::ptr::null()), 0);
        assert_eq!(kestrel_output_len(core::ptr::null()), 0);
        let p = pixels();
        let rc = kestrel_run_pixels(
            core::ptr::null(),
            arena.as_mut_ptr(),
            arena.len(),
            p.as_ptr(),
            p.len(),
            out.as_mut_ptr(),
            3,
        );
        assert_eq!(rc, S::NullPointer as i32);
    }
}

#[test]
fn run_errors() {
    let file = model(Precision::F32);
    let buf = AlignedBuf::new(&file);
    let mut h = zeroed();
    assert_eq!(init(&mut h, &buf), 0);
    let need = unsafe { kestrel_arena_bytes(&*h) };
    let (p, x) = (pixels(), normalized());
    let mut arena = AlignedBuf::new(&vec![0u8; need + 16]).to_vec();
    let mut out = [0f32; 3];

    // Null buffers.
    // SAFETY: null pointers are what is being tested; the rest is live.
    unsafe {
        let (a, n) = (arena.as_mut_ptr(), arena.len());
        let null8 = core::ptr::null_mut::<u8>();
        let nullf = core::ptr::null_mut::<f32>();
        let o = out.as_mut_ptr();
        let rc = |r: i32| assert_eq!(r, S::NullPointer as i32);
        rc(kestrel_run_pixels(&*h, null8, n, p.as_ptr(), 16, o, 3));
        rc(kestrel_run_pixels(&*h, a, n, null8, 16, o, 3));
        rc(kestrel_run_pixels(&*h, a, n, p.as_ptr(), 16, nullf, 3));
        rc(kestrel_run_f32(&*h, a, n, nullf, 16, o, 3));
        // Misaligned floats.
        let odd = x.as_ptr().cast::<u8>().add(1).cast::<f32>();
        let r = kestrel_run_f32(&*h, a, n, odd, 15, o, 3);
        assert_eq!(r, S::MisalignedPointer as i32);
        let odd = o.cast::<u8>().add(1).cast::<f32>();
        let r = kestrel_run_f32(&*h, a, n, x.as_ptr(), 16, odd, 2);
        assert_eq!(r, S::MisalignedPointer as i32);
        // Logits inside the arena, input inside the arena, arena over the model bytes.
        let inside = a.add(16).cast::<f32>();
        let r = kestrel_run_f32(&*h, a, n, x.as_ptr(), 16, inside, 3);
        assert_eq!(r, S::BuffersOverlap as i32);
        let r = kestrel_run_pixels(&*h, a, n, a.add(8), 16, o, 3);
        assert_eq!(r, S::BuffersOverlap as i32);
    }
    // Lengths.
    assert_eq!(
        run_pixels(&h, &mut arena, &p[..15], &mut out),
        S::InputLength as i32
    );
    assert_eq!(
        run_f32(&h, &mut arena, &[0.0; 17], &mut out),
        S::InputLength as i32
    );
    assert_eq!(
        run_pixels(&h, &mut arena, &p, &mut out[..2]),
        S::OutputLength as i32
    );
    assert_eq!(
        run_pixels(&h, &mut arena, &p, &mut [0.0; 4]),
        S::OutputLength as i32
    );

    // The arena: exactly enough from an aligned address, one byte short, nothing.
    let start = (16 - arena.as_ptr() as usize % 16) % 16;
    let aligned = &mut arena[start..];
    assert_eq!(run_pixels(&h, &mut aligned[..need], &p, &mut out), 0);
    let short = &mut aligned[..need - 1];
    assert_eq!(run_pixels(&h, short, &p, &mut out), S::ArenaTooSmall as i32);
    assert_eq!(
        run_pixels(&h, &mut aligned[..0], &p, &mut out),
        S::ArenaTooSmall as i32
    );
    // One byte past alignment needs 15 more bytes.
    let skewed = &mut aligned[1..];
    assert_eq!(
        run_pixels(&h, &mut skewed[..need], &p, &mut out),
        S::ArenaTooSmall as i32
    );
}

#[test]
fn every_code_has_a_message() {
    let text = |c: i32| {
        // SAFETY: kestrel_error_message returns a static NUL-terminated string.
        unsafe { core::ffi::CStr::from_ptr(kestrel_error_message(c)) }
            .to_str()
            .unwrap()
    };
    let unknown = text(i32::MIN);
    assert_eq!(unknown, "unknown kestrel status code");
    assert_eq!(text(1), unknown);
    assert_eq!(text(i32::MAX), unknown);
    assert_eq!(text(0), "ok");
    // The codes are 0, -1, -2, ... with no gaps, each with its own message.
    let known: Vec<&str> = (0..)
        .map(|i: i32| text(-i))
        .take_while(|&t| t != unknown)
        .collect();
    assert_eq!(known.len(), 1 + -(S::LimitExceeded as i32) as usize);
    let mut unique = known.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), known.len());
    assert_eq!(
        text(S::ArenaTooSmall as i32).split(':').next(),
        Some("arena too small")
    );
}
