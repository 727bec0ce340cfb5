//! The fixed 32-byte header, little endian, hand-laid so that it never depends on the
//! metadata encoding:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `KSTL` |
//! | 4..6 | format version (u16) |
//! | 6..8 | flags, must be 0 |
//! | 8..12 | metadata length (u32) |
//! | 12..16 | data section offset from file start (u32, multiple of 16, ≥ 32 + metadata length) |
//! | 16..20 | data section length (u32) |
//! | 20..24 | CRC32 (IEEE) of bytes 32..end |
//! | 24..32 | reserved, must be 0 |

use crate::Error;

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"KSTL";
/// The format version this build reads and writes.
pub const VERSION: u16 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 32;
/// Alignment of the data section (from file start) and of every tensor in it.
pub const TENSOR_ALIGN: usize = 16;

/// A parsed, bounds-checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Metadata length in bytes (it starts at [`HEADER_LEN`]).
    pub meta_len: usize,
    /// Data section offset from the file start.
    pub data_offset: usize,
    /// Data section length.
    pub data_len: usize,
    /// CRC32 of everything after the header.
    pub crc: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Parses and checks the header against the buffer length (not the CRC).
    pub fn parse(bytes: &[u8]) -> Result<Header, Error> {
        let got = bytes.len();
        if got < MAGIC.len() {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                got,
            });
        }
        let found = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if found != MAGIC {
            return Err(Error::BadMagic { found });
        }
        if got < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                got,
            });
        }
        let version = u16_at(bytes, 4);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        if u16_at(bytes, 6) != 0 {
            return Err(Error::BadHeader { offset: 6 });
        }
        if let Some(i) = bytes[24..32].iter().position(|&b| b != 0) {
            return Err(Error::BadHeader { offset: 24 + i });
        }
        let meta_len = u32_at(bytes, 8) as usize;
        let data_offset = u32_at(bytes, 12) as usize;
        let data_len = u32_at(bytes, 16) as usize;
        let crc = u32_at(bytes, 20);
        let meta_end = HEADER_LEN
            .checked_add(meta_len)
            .ok_or(Error::BadHeader { offset: 8 })?;
        if !data_offset.is_multiple_of(TENSOR_ALIGN) || data_offset < meta_end {
            return Err(Error::BadHeader { offset: 12 });
        }
        let total = data_offset
            .checked_add(data_len)
            .ok_or(Error::BadHeader { offset: 16 })?;
        if got < total {
            return Err(Error::Truncated { needed: total, got });
        }
        if got > total {
            return Err(Error::TrailingBytes {
                expected: total,
                got,
            });
        }
        Ok(Header {
            version,
            meta_len,
            data_offset,
            data_len,
            crc,
        })
    }

    /// Lays the header out as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&(self.meta_len as u32).to_le_bytes());
        b[12..16].copy_from_slice(&(self.data_offset as u32).to_le_bytes());
        b[16..20].copy_from_slice(&(self.data_len as u32).to_le_bytes());
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b
    }
}
