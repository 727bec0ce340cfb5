//! Progress for long steps (evaluation, firmware builds): drawn on stderr when it is a
//! terminal, nothing at all in logs and pipes (indicatif hides its stderr target when
//! stderr is not a terminal), so CI output stays readable.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` steps labelled `what`; call `finish_and_clear` when done.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A spinner for a step of unknown length, with the elapsed time.
pub fn spinner(what: String) -> ProgressBar {
    let s = ProgressBar::new_spinner();
    s.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
    s.set_message(what);
    s.enable_steady_tick(Duration::from_millis(120));
    s
}
