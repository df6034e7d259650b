//! Precompressed copies for nginx's `gzip_static` and `brotli_static`.
//!
//! Compressing once at build time affords stronger settings than nginx's
//! on-the-fly level 6: gzip at level 9, brotli at quality 6. Measured on
//! the 10,000-file benchmark tree (bench/collectstatic.py), brotli's CSS
//! came out 8% smaller than gzip -9 at quality 6 and only 0.6% smaller
//! still at quality 9, which took five times the CPU; qualities 10 and 11
//! cost about 10 ms per small stylesheet, slower than Django's whole run.
//! What costs in this encoder (the `brotli` crate) is its hash table,
//! allocated zeroed for every file: 2 MiB at quality 6 with a window of at
//! least 2^17 bytes, 16 to 32 MiB at qualities 8 and 9 (smaller windows
//! fall back to the large table). A copy is kept only when it saves at
//! least 5% (smaller files and already-compressed formats gain nothing and
//! would cost a second lookup). The gzip header carries no name or time, so the
//! same input gives the same bytes on every machine.

use std::io::Write as _;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Keeps the encoders' large buffers in the heap between files.
///
/// glibc serves allocations over its mmap threshold (128 KiB, rising only
/// up to 32 MiB) with fresh mappings, unmapped again on free: every file's
/// brotli tables then cost hundreds of page faults and an munmap (2.8
/// million page faults and most of a cold run over 10,000 files).
/// Reused heap memory costs a memset instead. Call before threads start.
pub fn keep_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before
    // the worker threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// `bytes` gzipped, if that makes them at least 5% smaller.
pub fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::best());
    encoder.write_all(bytes).ok()?;
    worth_it(bytes, encoder.finish().ok()?)
}

/// `bytes` in brotli, if that makes them at least 5% smaller.
pub fn brotli(bytes: &[u8]) -> Option<Vec<u8>> {
    // The window: the file's size, at least 2^17 (see above), at most 4 MiB.
    let bits = usize::BITS - bytes.len().max(1).leading_zeros();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 6,
        lgwin: bits.clamp(17, 22) as i32,
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(bytes.len() / 2);
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).ok()?;
    worth_it(bytes, out)
}

fn worth_it(original: &[u8], compressed: Vec<u8>) -> Option<Vec<u8>> {
    (compressed.len() * 100 <= original.len() * 95).then_some(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn text_shrinks_and_noise_is_left_alone() {
        let text = "body { color: teal; margin: 0 }\n".repeat(100);
        let gz = gzip(text.as_bytes()).expect("text compresses");
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        let br = brotli(text.as_bytes()).expect("text compresses");
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
        assert_eq!(back, text.as_bytes());
        assert_eq!(gzip(text.as_bytes()), Some(gz), "deterministic");

        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift64: no structure for a compressor to find.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(gzip(&noise).is_none() && brotli(&noise).is_none());
        assert!(gzip(b"a").is_none());
    }
}
