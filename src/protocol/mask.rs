//! Masking (RFC 6455 §5.3): XOR of the payload with a repeating 4-byte key.
//!
//! [`apply_mask`] works a 64-bit word at a time (the compiler turns the word
//! loop into vector instructions on targets that have them) and, on
//! `wasm32` with `simd128` enabled, 16 bytes at a time with `v128`.
//! The tests compare it (and [`mask_extend`]) with the obvious byte-at-a-time
//! reference over all lengths, offsets and alignments.

/// XORs `buf` with `key`, where `buf[0]` is byte `offset` of the payload.
///
/// Masking is an involution: applying it twice with the same key and offset
/// restores the input. `offset` lets a payload be unmasked in pieces as it
/// arrives.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        mask_simd128(buf, key);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        mask_words(buf, key);
    }
}

/// Appends `src` masked with `key` to `dst`, where `src[0]` is byte `offset`
/// of the payload: the same bytes as `dst.extend_from_slice(src)` followed by
/// [`apply_mask`] on the new tail, in one pass.
///
/// One pass matters: a large `memcpy` between buffers at different offsets
/// modulo 4 KiB can be several times slower than the XOR itself on some
/// CPUs.
#[inline]
pub(crate) fn mask_extend(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let n = src.len();
    dst.reserve(n);
    let spare = &mut dst.spare_capacity_mut()[..n];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (spare, src) = {
        use core::arch::wasm32::{u32x4_splat, v128, v128_load, v128_store, v128_xor};
        let kv = u32x4_splat(u32::from_ne_bytes(key));
        let whole = n - n % 16;
        for (d, s) in spare[..whole]
            .as_chunks_mut::<16>()
            .0
            .iter_mut()
            .zip(src[..whole].as_chunks::<16>().0)
        {
            // SAFETY: `s` is 16 readable bytes and `d` 16 writable ones;
            // wasm v128 loads and stores have no alignment requirement.
            unsafe {
                let v = v128_xor(v128_load(s.as_ptr().cast::<v128>()), kv);
                v128_store(d.as_mut_ptr().cast::<v128>(), v);
            }
        }
        (&mut spare[whole..], &src[whole..])
    };
    let k = u64::from(u32::from_ne_bytes(key));
    let k64 = k | (k << 32);
    let (d8, d_tail) = spare.as_chunks_mut::<8>();
    let (s8, s_tail) = src.as_chunks::<8>();
    for (d, s) in d8.iter_mut().zip(s8) {
        let v = (u64::from_ne_bytes(*s) ^ k64).to_ne_bytes();
        for (d, v) in d.iter_mut().zip(v) {
            d.write(v);
        }
    }
    // Every chunk was a multiple of 4 bytes, so the tail starts at phase 0.
    for (i, (d, s)) in d_tail.iter_mut().zip(s_tail).enumerate() {
        d.write(s ^ key[i & 3]);
    }
    // SAFETY: the `n` bytes after the old length were all written above.
    unsafe { dst.set_len(dst.len() + n) };
}

/// Unmasks `buf[from..from + len]` (payload byte 0 at `from`) and moves it
/// `shift` bytes towards the start, in one pass: afterwards
/// `buf[from - shift..from - shift + len]` holds the unmasked payload, and
/// the `shift` bytes after it are unspecified.
///
/// The connection moves a client frame's payload 4 bytes left this way (the
/// length of the mask key), which leaves exactly the room of the unmasked
/// server header for the same length in front of it (see
/// `Connection::receive_owned`). Working in ascending order, every store
/// lands on bytes that have already been read.
///
/// # Panics
///
/// If `shift > from` or `from + len > buf.len()`.
pub(crate) fn unmask_shift_left(
    buf: &mut [u8],
    from: usize,
    len: usize,
    shift: usize,
    key: [u8; 4],
) {
    assert!(
        shift <= from && from + len <= buf.len(),
        "unmask_shift_left out of bounds"
    );
    let to = from - shift;
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let mut i = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let mut i = {
        use core::arch::wasm32::{u32x4_splat, v128, v128_load, v128_store, v128_xor};
        let kv = u32x4_splat(u32::from_ne_bytes(key));
        let blocks = len / 16;
        let p = buf.as_mut_ptr();
        // SAFETY: block `b` reads `from + 16 * b..` and writes `to + 16 * b..`,
        // 16 bytes each, all below `from + len <= buf.len()` (asserted);
        // wasm v128 loads and stores have no alignment requirement. Each
        // load happens before the store that may overlap it.
        unsafe {
            let (mut src, mut dst) = (p.add(from), p.add(to));
            for _ in 0..blocks {
                let v = v128_load(src.cast::<v128>());
                v128_store(dst.cast::<v128>(), v128_xor(v, kv));
                src = src.add(16);
                dst = dst.add(16);
            }
        }
        blocks * 16
    };
    let k = u64::from(u32::from_ne_bytes(key));
    let k64 = k | (k << 32);
    // `i` is a multiple of 16 here, and every step below keeps it a
    // multiple of 4 until the tail, so the key phase is `i & 3`.
    while i + 8 <= len {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[from + i..from + i + 8]);
        buf[to + i..to + i + 8].copy_from_slice(&(u64::from_ne_bytes(w) ^ k64).to_ne_bytes());
        i += 8;
    }
    while i < len {
        buf[to + i] = buf[from + i] ^ key[i & 3];
        i += 1;
    }
}

/// Byte-at-a-time reference for [`apply_mask`]; same contract, slower.
#[cfg(test)]
fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

/// The key as seen from payload byte `offset`.
#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = u32::from_ne_bytes(key);
    // In memory order, starting `offset & 3` bytes later is a rotation of the
    // native-endian word.
    let shift = ((offset & 3) * 8) as u32;
    if cfg!(target_endian = "little") {
        k = k.rotate_right(shift);
    } else {
        k = k.rotate_left(shift);
    }
    k.to_ne_bytes()
}

#[inline]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let k = u32::from_ne_bytes(key) as u64;
    let k64 = k | (k << 32);
    let (chunks, tail) = buf.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = (u64::from_ne_bytes(*chunk) ^ k64).to_ne_bytes();
    }
    // Every chunk was 8 bytes, so the tail starts at a key phase of 0.
    for (i, b) in tail.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline]
fn mask_simd128(buf: &mut [u8], key: [u8; 4]) {
    use core::arch::wasm32::{u32x4_splat, v128, v128_load, v128_store, v128_xor};
    let kv = u32x4_splat(u32::from_ne_bytes(key));
    let (chunks, tail) = buf.as_chunks_mut::<16>();
    for chunk in chunks {
        let p = chunk.as_mut_ptr().cast::<v128>();
        // SAFETY: `chunk` is exactly 16 writable bytes; wasm loads and stores
        // of v128 have no alignment requirement.
        unsafe { v128_store(p, v128_xor(v128_load(p), kv)) };
    }
    // Every chunk was 16 bytes, so the tail starts at a key phase of 0.
    mask_words(tail, key);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn masking_is_an_involution_and_matches_the_reference(
            data in prop::collection::vec(any::<u8>(), 0..1000),
            key in any::<[u8; 4]>(),
            offset in 0usize..64,
            split in any::<usize>(),
        ) {
            let mut fast = data.clone();
            apply_mask(&mut fast, key, offset);
            let mut slow = data.clone();
            apply_mask_bytewise(&mut slow, key, offset);
            prop_assert_eq!(&fast, &slow);
            // Masking in two pieces with running offsets equals masking at once.
            let mut pieces = data.clone();
            let s = split % (data.len() + 1);
            let (a, b) = pieces.split_at_mut(s);
            apply_mask(a, key, offset);
            apply_mask(b, key, offset + s);
            prop_assert_eq!(&pieces, &fast);
            apply_mask(&mut fast, key, offset);
            prop_assert_eq!(fast, data);
        }
    }

    #[test]
    fn mask_fast_equals_bytewise_for_all_lengths_offsets_and_alignments() {
        let key = [0xA5, 0x3C, 0x0F, 0xE1];
        let src: Vec<u8> = (0..600u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for align in 0..16 {
            for len in 0..=300 {
                for offset in 0..8 {
                    let mut fast = src.clone();
                    let mut slow = src.clone();
                    apply_mask(&mut fast[align..align + len], key, offset);
                    apply_mask_bytewise(&mut slow[align..align + len], key, offset);
                    assert_eq!(fast, slow, "align {align} len {len} offset {offset}");
                    // The appending variant, onto a vector of any starting length.
                    let mut appended = src[..align].to_vec();
                    mask_extend(&mut appended, &src[align..align + len], key, offset);
                    assert_eq!(
                        appended,
                        slow[..align + len],
                        "extend: align {align} len {len} offset {offset}"
                    );
                    // Unmasking while moving left, by any shift the start allows.
                    if offset == 0 {
                        for shift in [0, 1, 4, 7].into_iter().filter(|&s| s <= align) {
                            let mut moved = src.clone();
                            unmask_shift_left(&mut moved, align, len, shift, key);
                            assert_eq!(
                                moved[align - shift..align - shift + len],
                                slow[align..align + len],
                                "shift {shift}: align {align} len {len}"
                            );
                            assert_eq!(moved[..align - shift], src[..align - shift]);
                            assert_eq!(moved[align + len..], src[align + len..]);
                        }
                    }
                }
            }
        }
    }
}
