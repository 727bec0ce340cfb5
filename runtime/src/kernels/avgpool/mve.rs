//! Armv8.1-M Helium (MVE) variants: these cores also have the DSP extension, and the DSP
//! kernel (`dsp.rs`) is what runs for now.

pub(crate) use super::dsp::*;
