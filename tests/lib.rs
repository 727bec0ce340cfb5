//! Shared fixtures for the workspace-level tests: a `lenet` trained once per test binary
//! on the real Fashion-MNIST data, and the test split.

use std::path::PathBuf;
use std::sync::OnceLock;

use kestrel_trainer::checkpoint::Checkpoint;
use kestrel_trainer::config::Arch;
use kestrel_trainer::data::{self, Images, Split, DEFAULT_DATA_DIR};
use kestrel_trainer::train::{train, TrainOptions};

/// `KESTREL_DATA` or Debian's Fashion-MNIST directory. Panics with the fix if missing:
/// these tests need real data, and `scripts/test.sh` installs it.
pub fn data_dir() -> PathBuf {
    let dir =
        PathBuf::from(std::env::var("KESTREL_DATA").unwrap_or_else(|_| DEFAULT_DATA_DIR.into()));
    assert!(
        dir.join("t10k-labels-idx1-ubyte.gz").exists()
            || dir.join("t10k-labels-idx1-ubyte").exists(),
        "no MNIST-format data in {} (run scripts/install-deps.sh, or set KESTREL_DATA)",
        dir.display()
    );
    dir
}

/// The test split.
pub fn test_set() -> &'static Images {
    static SET: OnceLock<Images> = OnceLock::new();
    SET.get_or_init(|| data::load(&data_dir(), Split::Test).expect("test split loads"))
}

/// `lenet` trained for three epochs on the whole training split (seed 7), once per source
/// state: the checkpoint is cached in the build directory under a fingerprint of the
/// trainer's sources, the architectures and `Cargo.lock` (`build.rs`), so the test
/// binaries that share it train it once (training is deterministic). Or, when
/// `KESTREL_CHECKPOINT` names a checkpoint (e.g. the 15-epoch model of
/// `scripts/pipeline.sh`), that one.
pub fn trained_lenet() -> &'static Checkpoint {
    static CKPT: OnceLock<Checkpoint> = OnceLock::new();
    CKPT.get_or_init(|| {
        if let Ok(path) = std::env::var("KESTREL_CHECKPOINT") {
            println!("using checkpoint {path}");
            return Checkpoint::load(path.as_ref()).expect("KESTREL_CHECKPOINT loads");
        }
        let cache = PathBuf::from(env!("KESTREL_FIXTURE_DIR"))
            .join(format!("lenet3-{}.ckpt", env!("KESTREL_FIXTURE_KEY")));
        if let Ok(ck) = Checkpoint::load(&cache) {
            println!("using the fixture trained earlier: {}", cache.display());
            return ck;
        }
        let (ck, written) = train_lenet3();
        let bytes = std::fs::read(written).expect("checkpoint written");
        kestrel_trainer::checkpoint::write_atomic(&cache, &bytes).expect("cache the fixture");
        ck
    })
}

/// Three epochs of the shipped `lenet` recipe, seed 7, and where its checkpoint was written.
fn train_lenet3() -> (Checkpoint, PathBuf) {
    let dir = tempfile_dir();
    let arch = Arch::load("lenet").expect("built-in arch");
    let mut config = arch.train.clone();
    // Three epochs of the shipped recipe: a model about as confident as the 15-epoch one
    // (int8 agreement is hardest on near-ties), at a fifth of the cost.
    config.epochs = 3;
    config.seed = 7;
    let opts = TrainOptions {
        arch,
        config,
        data_dir: data_dir(),
        skip_bad_images: false,
        out: dir.join("lenet.ckpt"),
        limit: None,
        resume: None,
        quiet: true,
        init_from: None,
    };
    let ck = train(kestrel_trainer::backend::cpu::Cpu::new(), &opts).expect("training runs");
    (ck, opts.out)
}

/// A fresh directory under the target dir's tmp.
pub fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kestrel-tests-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
