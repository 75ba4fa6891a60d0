//! LZ4 bodies: a `u32` little-endian length of the serialized bytes, then one LZ4 block.

use super::envelope::envelope;
use crate::error::CodecError;

/// Compresses `body`; `None` when that does not make it smaller.
pub(crate) fn compress(body: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(body.len()).ok()?;
    let block = lz4_flex::block::compress(body);
    if block.len() + 4 >= body.len() {
        return None;
    }
    let mut out = Vec::with_capacity(block.len() + 4);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&block);
    Some(out)
}

/// Decompresses a body, refusing a declared size over `cap` before allocating anything.
pub(crate) fn decompress(body: &[u8], cap: usize) -> Result<Vec<u8>, CodecError> {
    let (len, block) = body
        .split_first_chunk::<4>()
        .ok_or(envelope("compressed body is shorter than its length"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > cap {
        return Err(CodecError::TooLarge { size: len, cap });
    }
    let out = lz4_flex::block::decompress(block, len)
        .map_err(|_| envelope("compressed body is corrupt"))?;
    if out.len() != len {
        return Err(envelope("compressed body has the wrong length"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_the_declared_size() {
        let body = br#"{"a":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
        let packed = compress(body).unwrap();
        assert!(packed.len() < body.len());
        assert_eq!(decompress(&packed, 1024).unwrap(), body);
        assert_eq!(
            decompress(&packed, 10),
            Err(CodecError::TooLarge {
                size: body.len(),
                cap: 10
            })
        );
        assert!(compress(b"{}").is_none());
        let mut lying = packed.clone();
        lying[0] = lying[0].wrapping_add(1);
        assert!(decompress(&lying, 1024).is_err());
        assert!(decompress(&[1, 0], 1024).is_err());
        assert!(decompress(&[0xff, 0xff, 0xff, 0x7f, 0x1f], 1 << 20).is_err());
    }
}
