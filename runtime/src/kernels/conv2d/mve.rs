//! Armv8.1-M Helium (MVE) variants: none yet, so the reference runs.

pub(crate) use super::reference::*;
