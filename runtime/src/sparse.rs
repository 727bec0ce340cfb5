//! On-device exact sparse coding for a model whose last layer is a `Dictionary`: the
//! problem `min_h ½‖x − D h‖² + λ‖h‖₁` over the model's preprocessed input `x`, solved by
//! FISTA with the same f32 step kernel as the LISTA layer (`h ← shrink_θ(b + S y)` with
//! `S = I − DᵀD/L`, `b = Dᵀx/L`, `θ = λ/L`, all precomputed in the model file).
//!
//! No heap: the caller owns `x`, `h` and a scratch of [`Problem::scratch_len`] f32.
//! Results are deterministic: the same bits on every run of a given kernel set.
//!
//! ```
//! # use kestrel_format::{encode, AlignedBuf, DataBuilder, InputSpec, LayerDesc, Model,
//! #     ModelDesc, Op, Precision, Provenance, Shape};
//! use kestrel_runtime::sparse::{FistaOptions, Problem};
//! # let mut data = DataBuilder::new();
//! # // Two orthonormal atoms in 2-D: D = I, L = 1, Dᵀ/L = I, I − DᵀD/L = 0.
//! # let eye = [1.0, 0.0, 0.0, 1.0];
//! # let (atoms, w, s) = (data.f32(&eye), data.f32(&eye), data.f32(&[0.0; 4]));
//! # let mut desc = ModelDesc { name: "doc", precision: Precision::F32,
//! #     input: InputSpec { shape: Shape::new(2, 1, 1), mean: 0.0, std: 1.0, quant: None },
//! #     layers: Default::default(), classes: Default::default(),
//! #     provenance: Provenance { arch: "doc", dataset: "-", train_samples: 0, epochs: 0,
//! #         float_accuracy: f32::NAN, trainer: "-" } };
//! # let op = Op::Dictionary { atoms, lambda: 0.25, lipschitz: 1.0, fista_weight: w, fista_s: s };
//! # let v = Shape::new(2, 1, 1);
//! # desc.layers.push(LayerDesc { op, input: v, output: v, out_quant: None }).unwrap();
//! # let file = AlignedBuf::new(&encode(&desc, &data).unwrap());
//! let model = Model::from_bytes(&file)?;
//! let problem = Problem::new(&model)?;
//! let mut x = [0.0f32; 2];
//! problem.preprocess(&[255, 51], &mut x)?; // p/255: [1.0, 0.2]
//! let mut h = [0.0f32; 2]; // cold start
//! let mut scratch = [0.0f32; 8];
//! assert!(scratch.len() >= problem.scratch_len());
//! let opts = FistaOptions { max_iter: 50, tol: 1e-6, target_energy: None };
//! let stats = problem.fista(&x, &mut h, &opts, &mut scratch)?;
//! // With D = I the optimum is shrink_λ(x).
//! assert!((h[0] - 0.75).abs() < 1e-6 && h[1] == 0.0);
//! assert!(stats.iterations <= 50);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use kestrel_format::{LayerKind, Model};

use crate::kernels::patchnorm::reference::patchnorm_f32;
use crate::kernels::table::Kernels;
use crate::Error;

/// How often [`Problem::fista`] evaluates the energy for
/// [`FistaOptions::target_energy`]: after every this many iterations (and the energy it
/// returns is always that of the final `h`). Each check costs about one step.
pub const ENERGY_CHECK_EVERY: usize = 8;

/// The sparse-coding problem a model's `Dictionary` layer defines, borrowing its tensors.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'m> {
    /// `D`, row-major `[k, n]`.
    atoms: &'m [f32],
    lambda: f32,
    lipschitz: f32,
    /// `Dᵀ/L`, row-major `[n, k]`.
    fista_weight: &'m [f32],
    /// `I − DᵀD/L`, `[n, n]` (symmetric, so also column-major).
    fista_s: &'m [f32],
    k: usize,
    n: usize,
    mean: f32,
    std: f32,
    /// The model's leading `PatchNorm`, if any: `Some(contrast)`.
    patch_norm: Option<Option<f32>>,
}

/// When [`Problem::fista`] stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FistaOptions {
    /// At most this many iterations (steps).
    pub max_iter: usize,
    /// Stop when the relative change `‖h − h_prev‖ ≤ tol·‖h‖` (checked every iteration;
    /// `0` never stops early on it).
    pub tol: f32,
    /// Stop once the energy `½‖x − D h‖² + λ‖h‖₁ ≤ target` (checked every
    /// [`ENERGY_CHECK_EVERY`] iterations).
    pub target_energy: Option<f32>,
}

/// What [`Problem::fista`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FistaStats {
    /// Iterations (steps) run.
    pub iterations: usize,
    /// Energy of the returned `h`.
    pub energy: f32,
}

impl<'m> Problem<'m> {
    /// The problem of `model`'s last layer; [`Error::NotDictionary`] if it is not a
    /// `Dictionary`.
    pub fn new(model: &'m Model<'_>) -> Result<Problem<'m>, Error> {
        let layers = model.layers();
        let last = layers.len().saturating_sub(1);
        let Some(LayerKind::Dictionary {
            atoms,
            lambda,
            lipschitz,
            fista_weight,
            fista_s,
        }) = layers.last().map(|l| l.kind)
        else {
            return Err(Error::NotDictionary { layer: last });
        };
        let patch_norm = match layers.first().map(|l| l.kind) {
            Some(LayerKind::PatchNorm { contrast }) => Some(contrast),
            _ => None,
        };
        let input = model.desc.input;
        Ok(Problem {
            atoms,
            lambda,
            lipschitz,
            fista_weight,
            fista_s,
            k: input.shape.len(),
            n: layers[last].output.len(),
            mean: input.mean,
            std: input.std,
            patch_norm,
        })
    }

    /// Atoms `n` (the code length).
    pub fn atoms(&self) -> usize {
        self.n
    }

    /// Input length `k = c·h·w` of the model input.
    pub fn input_len(&self) -> usize {
        self.k
    }

    /// `λ`.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// f32 elements of scratch [`Problem::fista`] needs: `4·n` (`b`, `θ`, the momentum
    /// point and the previous iterate). [`Problem::energy`] and
    /// [`Problem::residual_sq`] need none.
    pub fn scratch_len(&self) -> usize {
        4 * self.n
    }

    /// Raw pixels to the problem's `x`: `(p/255 − mean)/std` with the model input's
    /// normalization, then the model's leading `PatchNorm` if it has one (the layer's own
    /// f32 kernel). [`Error::InputLength`] unless both have [`Problem::input_len`] elements.
    pub fn preprocess(&self, raw: &[u8], x: &mut [f32]) -> Result<(), Error> {
        self.check_x(raw.len())?;
        self.check_x(x.len())?;
        for (x, &p) in x.iter_mut().zip(raw) {
            *x = (p as f32 / 255.0 - self.mean) / self.std;
        }
        if let Some(contrast) = self.patch_norm {
            patchnorm_f32(x, contrast);
        }
        Ok(())
    }

    /// FISTA with step `1/L` from the `h` given (a warm start; pass zeros for a cold one):
    /// `b = Dᵀx/L` once; then `h ← shrink_{λ/L}(b + S y)` with the LISTA layer's f32 step
    /// kernel, `t' = (1 + √(1 + 4t²))/2`, `y ← h + ((t − 1)/t')(h − h_prev)`, `t ← t'`
    /// (`y = h`, `t = 1` at the start). Stops as [`FistaOptions`] says; `h` holds the last
    /// iterate.
    ///
    /// Errors: [`Error::InputLength`] (`x`), [`Error::CodeLength`] (`h`),
    /// [`Error::ScratchTooSmall`] (fewer than [`Problem::scratch_len`] elements).
    pub fn fista(
        &self,
        x: &[f32],
        h: &mut [f32],
        opts: &FistaOptions,
        scratch: &mut [f32],
    ) -> Result<FistaStats, Error> {
        self.check_x(x.len())?;
        self.check_h(h.len())?;
        let n = self.n;
        if scratch.len() < self.scratch_len() {
            return Err(Error::ScratchTooSmall {
                needed: self.scratch_len(),
                got: scratch.len(),
            });
        }
        let (b, rest) = scratch.split_at_mut(n);
        let (theta, rest) = rest.split_at_mut(n);
        let (y, rest) = rest.split_at_mut(n);
        let h_prev = &mut rest[..n];

        // b = Dᵀx/L, row i of the [n, k] weight, summed from 0 in k order.
        for (i, b) in b.iter_mut().enumerate() {
            let row = &self.fista_weight[i * self.k..][..self.k];
            let mut acc = 0.0f32;
            for (w, x) in row.iter().zip(x) {
                acc += w * x;
            }
            *b = acc;
        }
        theta.fill(self.lambda / self.lipschitz);
        y.copy_from_slice(h);

        let mut t = 1.0f32;
        let mut iterations = 0;
        let step = crate::kernels::kernel!(Kernels::default_table(), lista::lista_step_f32);
        while iterations < opts.max_iter {
            h_prev.copy_from_slice(h);
            step(self.fista_s, b, theta, y, h);
            iterations += 1;

            let t_next = (1.0 + libm::sqrtf(1.0 + 4.0 * t * t)) / 2.0;
            let beta = (t - 1.0) / t_next;
            t = t_next;
            let (mut change, mut norm) = (0.0f32, 0.0f32);
            for ((y, &h), &hp) in y.iter_mut().zip(h.iter()).zip(h_prev.iter()) {
                let d = h - hp;
                *y = h + beta * d;
                change += d * d;
                norm += h * h;
            }
            if opts.tol > 0.0 && change <= opts.tol * opts.tol * norm {
                break;
            }
            if let Some(target) = opts.target_energy {
                if iterations % ENERGY_CHECK_EVERY == 0 && self.energy_of(x, h) <= target {
                    break;
                }
            }
        }
        Ok(FistaStats {
            iterations,
            energy: self.energy_of(x, h),
        })
    }

    /// `½‖x − D h‖² + λ‖h‖₁`. Uses no scratch (any slice, empty included, is accepted).
    /// Errors: [`Error::InputLength`], [`Error::CodeLength`].
    pub fn energy(&self, x: &[f32], h: &[f32], _scratch: &mut [f32]) -> Result<f32, Error> {
        self.check_x(x.len())?;
        self.check_h(h.len())?;
        Ok(self.energy_of(x, h))
    }

    /// `‖x − D h‖²`. Uses no scratch (any slice is accepted).
    /// Errors: [`Error::InputLength`], [`Error::CodeLength`].
    pub fn residual_sq(&self, x: &[f32], h: &[f32], _scratch: &mut [f32]) -> Result<f32, Error> {
        self.check_x(x.len())?;
        self.check_h(h.len())?;
        Ok(self.residual_sq_of(x, h))
    }

    fn energy_of(&self, x: &[f32], h: &[f32]) -> f32 {
        let mut l1 = 0.0f32;
        for &v in h {
            l1 += libm::fabsf(v);
        }
        0.5 * self.residual_sq_of(x, h) + self.lambda * l1
    }

    /// `Σ_r (x[r] − Σ_{j: h[j] ≠ 0} D[r, j]·h[j])²`, rows of `D` in order, f32.
    fn residual_sq_of(&self, x: &[f32], h: &[f32]) -> f32 {
        let mut sum = 0.0f32;
        for (r, &xr) in x.iter().enumerate() {
            let row = &self.atoms[r * self.n..][..self.n];
            let mut dh = 0.0f32;
            for (&d, &hj) in row.iter().zip(h) {
                if hj != 0.0 {
                    dh += d * hj;
                }
            }
            let e = xr - dh;
            sum += e * e;
        }
        sum
    }

    fn check_x(&self, got: usize) -> Result<(), Error> {
        if got == self.k {
            Ok(())
        } else {
            Err(Error::InputLength {
                expected: self.k,
                got,
            })
        }
    }

    fn check_h(&self, got: usize) -> Result<(), Error> {
        if got == self.n {
            Ok(())
        } else {
            Err(Error::CodeLength {
                expected: self.n,
                got,
            })
        }
    }
}
