//! Device choice: `--device auto|cpu|cuda[:N]` on every training command.
//!
//! `auto` probes for CUDA without touching a library that is not there (`cudarc` panics
//! when asked to load a missing one): the driver library is looked up first, then the
//! driver is initialised and its devices counted. Without a usable device, `auto` runs on
//! the CPU and says why in one line; an explicit `cuda` that cannot run is an
//! [`Error::Device`], never a panic.
//!
//! ```
//! use kestrel_trainer::backend::Device;
//! let (device, notice) = Device::select("auto")?;
//! // On a machine without a CUDA driver or device: the CPU, and the reason.
//! assert!(device == Device::Cpu && notice.is_some() || matches!(device, Device::Cuda(0)));
//! # Ok::<(), kestrel_trainer::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Where to train: `cpu`, `cuda` or `cuda:N` (`auto` resolves to one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU backend ([`super::cpu::Cpu`]), threads from rayon's pool.
    Cpu,
    /// A CUDA device by ordinal ([`super::cuda::Cuda`]).
    Cuda(usize),
}

/// The NVIDIA driver's library, which `auto` looks for first.
pub const CUDA_DRIVER_LIBRARY: &str = "libcuda.so";

/// Counts the CUDA devices the driver sees, or says why there are none to use: no driver
/// library, a driver that fails to initialise (no kernel module, no permission), or zero
/// devices.
pub fn cuda_devices() -> std::result::Result<usize, String> {
    // SAFETY: only tries to dlopen the driver library's candidate names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(format!(
            "no NVIDIA driver library ({CUDA_DRIVER_LIBRARY}) found"
        ));
    }
    cudarc::driver::result::init().map_err(|e| format!("the CUDA driver failed to start: {e}"))?;
    let n = cudarc::driver::result::device::get_count()
        .map_err(|e| format!("the CUDA driver could not count its devices: {e}"))?;
    match usize::try_from(n) {
        Ok(0) | Err(_) => Err("the CUDA driver sees no device".into()),
        Ok(n) => Ok(n),
    }
}

impl Device {
    /// The best device available: CUDA device 0 when the driver is present and sees a
    /// device, else the CPU, with the reason CUDA was passed over.
    pub fn auto() -> (Device, Option<String>) {
        match cuda_devices() {
            Ok(_) => (Device::Cuda(0), None),
            Err(why) => (Device::Cpu, Some(why)),
        }
    }

    /// Parses `--device` and checks it can run here: `auto` resolves to [`Device::auto`]
    /// and returns its notice (print it: "device: cpu (auto: …)"); `cpu`, `cuda`, `cuda:N`
    /// are checked with [`Device::check`].
    pub fn select(s: &str) -> Result<(Device, Option<String>)> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(Device::auto());
        }
        Ok((s.parse::<Device>()?.check()?, None))
    }

    /// Fails with [`Error::Device`] when this machine cannot run on `self`: no CUDA driver,
    /// no device, or an ordinal past the last device.
    pub fn check(self) -> Result<Device> {
        match self {
            Device::Cpu => Ok(self),
            Device::Cuda(i) => {
                let err = |message: String| Error::Device {
                    device: self.to_string(),
                    message,
                };
                let n = cuda_devices()
                    .map_err(|why| err(format!("{why}; use --device cpu or auto")))?;
                if i >= n {
                    return Err(err(format!(
                        "the CUDA driver sees {n} device{} (cuda:0{})",
                        if n == 1 { "" } else { "s" },
                        if n == 1 {
                            String::new()
                        } else {
                            format!(" to cuda:{}", n - 1)
                        }
                    )));
                }
                Ok(self)
            }
        }
    }
}

/// A backend opened for `--device`.
pub enum Opened {
    /// The CPU, with the reason when `auto` passed CUDA over.
    Cpu(Option<String>),
    /// A CUDA device, ready.
    Cuda(Box<super::cuda::Cuda>),
}

/// Opens the backend `--device s` names ([`Device::auto`] or the parsed device, then
/// [`super::cuda::Cuda::new`] with TF32 GEMMs when `tf32`). `auto` falls back to the CPU, saying why, also when it finds
/// a device it then cannot open (no NVRTC or cuBLAS library, a driver too old for the
/// kernels); an explicit `cuda` fails with that [`Error::Device`].
pub fn open(s: &str, tf32: bool) -> Result<Opened> {
    let auto = s.trim().eq_ignore_ascii_case("auto");
    // `Cuda::new` checks the device itself (`Device::check`).
    let (device, notice) = if auto {
        Device::auto()
    } else {
        (s.parse::<Device>()?, None)
    };
    Ok(match device {
        Device::Cpu => Opened::Cpu(notice),
        Device::Cuda(i) => match super::cuda::Cuda::new(i) {
            Ok(mut be) => {
                be.set_tf32(tf32)?;
                Opened::Cuda(Box::new(be))
            }
            Err(e @ Error::Device { .. }) if auto => Opened::Cpu(Some(e.to_string())),
            Err(e) => return Err(e),
        },
    })
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

    /// `cpu`, `cuda` (meaning `cuda:0`) or `cuda:N`, not checked against this machine;
    /// `auto` is [`Device::select`]'s (it probes).
    fn from_str(s: &str) -> Result<Device> {
        let bad = |message: String| Error::Device {
            device: s.to_string(),
            message,
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "auto" => Err(bad("`auto` is resolved by Device::select".into())),
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
    fn devices_parse_and_bad_ones_are_typed_errors() {
        assert_eq!(" CPU ".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        for bad in ["gpu", "cuda:x", "cuda:-1", ""] {
            assert!(
                matches!(Device::select(bad), Err(Error::Device { .. })),
                "{bad}"
            );
        }
        assert_eq!(Device::select("cpu").unwrap(), (Device::Cpu, None));
    }

    /// `auto` and `cuda` agree with the probe: on a machine without CUDA, `auto` is the CPU
    /// with a reason and `cuda` a typed error carrying the same reason; with a device,
    /// `auto` is `cuda:0` and an ordinal past the last device is refused.
    #[test]
    fn auto_and_cuda_follow_the_probe() {
        match cuda_devices() {
            Err(why) => {
                println!("no CUDA here: {why}");
                assert_eq!(Device::auto(), (Device::Cpu, Some(why.clone())));
                let err = Device::select("cuda").unwrap_err();
                assert!(err.to_string().contains(&why), "{err}");
                assert!(err.to_string().contains("--device cpu"), "{err}");
                assert!(matches!(open("auto", true), Ok(Opened::Cpu(Some(w))) if w == why));
                assert!(matches!(open("cuda:0", false), Err(Error::Device { .. })));
            }
            Ok(n) => {
                println!("{n} CUDA device(s) here");
                assert_eq!(Device::auto(), (Device::Cuda(0), None));
                assert_eq!(Device::select("cuda:0").unwrap().0, Device::Cuda(0));
                let err = Device::select(&format!("cuda:{n}")).unwrap_err();
                assert!(err.to_string().contains("sees"), "{err}");
            }
        }
    }
}
