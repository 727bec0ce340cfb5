//! Writing model files (feature `alloc`): the trainer's exporter builds a [`ModelDesc`]
//! whose [`TensorRef`]s point into a [`DataBuilder`], then calls [`encode`].

extern crate alloc;
use alloc::vec::Vec;

use half::f16;

use crate::desc::{DType, ModelDesc, TensorRef};
use crate::header::{Header, HEADER_LEN, TENSOR_ALIGN, VERSION};
use crate::Error;

/// Accumulates tensors, each at a [`TENSOR_ALIGN`]-aligned offset.
#[derive(Debug, Default, Clone)]
pub struct DataBuilder {
    data: Vec<u8>,
}

impl DataBuilder {
    /// An empty data section.
    pub fn new() -> Self {
        Self::default()
    }

    fn push_raw(&mut self, dtype: DType, len: usize, bytes: &[u8]) -> TensorRef {
        while !self.data.len().is_multiple_of(TENSOR_ALIGN) {
            self.data.push(0);
        }
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        TensorRef {
            dtype,
            offset,
            len: len as u32,
        }
    }

    /// Appends f32 values.
    pub fn f32(&mut self, v: &[f32]) -> TensorRef {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push_raw(DType::F32, v.len(), &bytes)
    }

    /// Appends f32 values rounded to f16.
    pub fn f16(&mut self, v: &[f32]) -> TensorRef {
        let bytes: Vec<u8> = v
            .iter()
            .flat_map(|x| f16::from_f32(*x).to_le_bytes())
            .collect();
        self.push_raw(DType::F16, v.len(), &bytes)
    }

    /// Appends int8 values.
    pub fn i8(&mut self, v: &[i8]) -> TensorRef {
        let bytes: Vec<u8> = v.iter().map(|x| *x as u8).collect();
        self.push_raw(DType::I8, v.len(), &bytes)
    }

    /// Appends int32 values.
    pub fn i32(&mut self, v: &[i32]) -> TensorRef {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push_raw(DType::I32, v.len(), &bytes)
    }

    /// The bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// Encodes a model file: header, postcard metadata, padding, data section.
///
/// The result is not validated here; callers that want certainty run
/// [`crate::Model::from_bytes`] on an aligned copy (the trainer's exporter does).
/// `data` is the data section (a [`DataBuilder`] derefs to it).
pub fn encode(desc: &ModelDesc<'_>, data: &[u8]) -> Result<Vec<u8>, Error> {
    let meta = postcard::to_allocvec(desc).map_err(|_| Error::Encode)?;
    let data_offset = (HEADER_LEN + meta.len()).div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN;
    let data_len = data.len();
    if data_offset
        .checked_add(data_len)
        .is_none_or(|t| t > u32::MAX as usize)
    {
        return Err(Error::Encode);
    }
    let mut out = Vec::with_capacity(data_offset + data_len);
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&meta);
    out.resize(data_offset, 0);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    let header = Header {
        version: VERSION,
        meta_len: meta.len(),
        data_offset,
        data_len,
        crc,
    };
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(out)
}

impl core::ops::Deref for DataBuilder {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

/// A heap copy of a model file at a 16-byte aligned address, for hosts that read models
/// from disk (a `Vec<u8>` is only guaranteed 1-byte alignment).
#[derive(Debug, Clone)]
pub struct AlignedBuf {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBuf {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = alloc::vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBuf {
            words,
            len: bytes.len(),
        }
    }
}

impl core::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }
}
