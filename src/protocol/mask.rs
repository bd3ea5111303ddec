//! Masking (RFC 6455 §5.3): XOR of the payload with a repeating 4-byte key.
//!
//! [`apply_mask`] works a 64-bit word at a time (the compiler turns the word
//! loop into vector instructions on targets that have them) and, on
//! `wasm32` with `simd128` enabled, 16 bytes at a time with `v128`.
//! [`apply_mask_bytewise`] is the obvious reference implementation; the two
//! are tested for equality over all lengths, offsets and alignments.

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

/// Byte-at-a-time reference for [`apply_mask`]; same contract, slower.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
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

#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    expect(dead_code, reason = "the simd128 path replaces it")
)]
#[inline]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let k = u32::from_ne_bytes(key) as u64;
    let k64 = k | (k << 32);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_ne_bytes(w) ^ k64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // Every chunk was 8 bytes, so the tail starts at a key phase of 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline]
fn mask_simd128(buf: &mut [u8], key: [u8; 4]) {
    use core::arch::wasm32::{u32x4_splat, v128, v128_load, v128_store, v128_xor};
    let kv = u32x4_splat(u32::from_ne_bytes(key));
    let mut chunks = buf.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let p = chunk.as_mut_ptr().cast::<v128>();
        // SAFETY: `chunk` is exactly 16 writable bytes; wasm loads and stores
        // of v128 have no alignment requirement.
        unsafe { v128_store(p, v128_xor(v128_load(p), kv)) };
    }
    // Every chunk was 16 bytes, so the tail starts at a key phase of 0.
    mask_words(chunks.into_remainder(), key);
}
