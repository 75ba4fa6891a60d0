//! Progress on stderr, drawn only when stderr is a terminal: piped or redirected output gets
//! nothing extra.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner with a running count (`⠋ exported 1200`); advance it with `inc`.
pub(crate) fn counter(what: &str) -> ProgressBar {
    styled(&format!("{{spinner}} {what} {{pos}}"))
}

/// A spinner for one long operation without a count (`⠋ counting`).
pub(crate) fn waiting(what: &str) -> ProgressBar {
    styled(&format!("{{spinner}} {what}"))
}

fn styled(template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
