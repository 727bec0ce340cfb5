//! Device choice: `--device auto|cpu|cuda[:N]` on every training command.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Where to train: `auto`, `cpu`, `cuda` or `cuda:N` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU backend ([`cpu::Cpu`]), threads from rayon's pool.
    Cpu,
    /// A CUDA device by ordinal (not built yet: [`Device::check`] reports it).
    Cuda(usize),
}

impl Device {
    /// The best device available: today always the CPU.
    pub fn auto() -> Device {
        Device::Cpu
    }

    /// Fails with [`Error::Device`] when this binary cannot run on `self`.
    pub fn check(self) -> Result<Device> {
        match self {
            Device::Cpu => Ok(self),
            Device::Cuda(_) => Err(Error::Device {
                device: self.to_string(),
                message: "CUDA backend not built yet (use --device cpu or auto)".into(),
            }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    /// `auto` resolves at once (to [`Device::auto`]); `cuda` means `cuda:0`.
    fn from_str(s: &str) -> Result<Device> {
        let bad = |message: String| Error::Device {
            device: s.to_string(),
            message,
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::auto()),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n.parse().map(Device::Cuda).map_err(|_| {
                    bad(format!(
                        "`{n}` is not a CUDA device ordinal (expected cuda:0, cuda:1, …)"
                    ))
                }),
                None => Err(bad("expected auto, cpu, cuda or cuda:N".into())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_cuda_is_a_typed_error() {
        assert_eq!("auto".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!(" CPU ".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        for bad in ["gpu", "cuda:x", "cuda:-1", ""] {
            assert!(
                matches!(bad.parse::<Device>(), Err(Error::Device { .. })),
                "{bad}"
            );
        }
        assert_eq!(Device::Cpu.check().unwrap(), Device::Cpu);
        let err = Device::Cuda(1).check().unwrap_err();
        assert!(
            err.to_string().contains("CUDA backend not built yet"),
            "{err}"
        );
    }
}
