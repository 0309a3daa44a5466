//! Progress on a terminal: a bar while the agent reads the exports and while it uploads,
//! drawn only when stdout is a terminal. Elsewhere (a scheduler, a service, a log file) there
//! is no bar, and the plain lines each step prints are the record.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One step's bar, or nothing when bars are off.
#[derive(Debug, Clone)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar of `len` units, prefixed `what` (`reading`, `uploading`), when `shown`.
    pub fn new(shown: bool, what: &str, len: u64) -> Self {
        if !shown {
            return Self(None);
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(Some(bar))
    }

    pub fn set_length(&self, len: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(len);
        }
    }

    /// Says what is being done now.
    pub fn doing(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
        }
    }

    /// `done` more units are done.
    pub fn advance(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(done);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }

    /// `out`, with the bar set aside while each line is written, so lines and bar never mix.
    pub fn around<'a>(&self, out: &'a mut dyn Write) -> AroundBar<'a> {
        AroundBar {
            bar: self.0.clone(),
            out,
        }
    }
}

/// A writer that suspends a bar while it writes.
pub struct AroundBar<'a> {
    bar: Option<ProgressBar>,
    out: &'a mut dyn Write,
}

impl Write for AroundBar<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.out.write(buf)),
            None => self.out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_lines_pass_through_unchanged() {
        let bar = Bar::new(false, "uploading", 3);
        bar.advance(1);
        bar.doing("Students");
        let mut out = Vec::new();
        writeln!(bar.around(&mut out), "sent Students: 2 rows").unwrap();
        bar.finish();
        assert_eq!(String::from_utf8(out).unwrap(), "sent Students: 2 rows\n");
    }

    #[test]
    fn a_shown_bar_counts_and_lines_still_reach_the_writer() {
        let bar = Bar::new(true, "reading", 2);
        bar.advance(2);
        let mut out = Vec::new();
        writeln!(bar.around(&mut out), "warning: x").unwrap();
        bar.finish();
        assert_eq!(String::from_utf8(out).unwrap(), "warning: x\n");
    }
}
