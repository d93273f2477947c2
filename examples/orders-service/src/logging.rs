//! Where output goes: the log (text or JSON lines) on stdout, progress bars
//! on stderr, and the human summary on stdout in text mode but on stderr in
//! JSON mode.
//!
//! # Invariant
//! In JSON mode stdout carries JSON log lines only, one event per line, so
//! `orders-service --log-format json > run.jsonl` is a valid input of
//! `tl-audit check`. Everything else goes through [`Console`] to stderr.

use std::io::{self, IsTerminal as _, Write as _};

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// The log's format on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; the summary follows on stdout.
    Text,
    /// One JSON object per event (tracing-subscriber's format, which
    /// `tl-audit check` reads); the summary goes to stderr.
    Json,
}

/// The process's terminal output: the log, progress bars, and the summary.
#[derive(Clone, Debug)]
pub struct Console {
    format: LogFormat,
    /// Every progress bar, drawn on stderr when it is a terminal (hidden
    /// otherwise). Log lines and summaries are written with the bars
    /// suspended, so they never interleave with a half-drawn bar.
    bars: MultiProgress,
}

impl Console {
    /// Installs the process's global subscriber: the log at INFO and above,
    /// in `format`, on stdout.
    ///
    /// # Errors
    /// If a global subscriber is already installed.
    pub fn install(format: LogFormat) -> Result<Self, tracing::subscriber::SetGlobalDefaultError> {
        let bars = MultiProgress::new();
        let stdout = SuspendingStdout { bars: bars.clone() };
        let log = match format {
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(stdout)
                .with_ansi(io::stdout().is_terminal())
                .with_thread_names(true)
                .with_timer(tracing_subscriber::fmt::time::uptime())
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(stdout)
                .with_thread_names(true)
                .with_current_span(false)
                .with_span_list(false)
                .boxed(),
        };
        let subscriber = tracing_subscriber::registry().with(log.with_filter(LevelFilter::INFO));
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(Self { format, bars })
    }

    /// The log format.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Prints `text` for people: on stdout in text mode, on stderr in JSON
    /// mode (see the module's invariant).
    pub fn print(&self, text: &str) {
        self.bars.suspend(|| {
            let _ = match self.format {
                LogFormat::Text => write_all(&mut io::stdout().lock(), text),
                LogFormat::Json => write_all(&mut io::stderr().lock(), text),
            };
        });
    }

    /// A progress bar of `len` steps on stderr, hidden unless stderr is a
    /// terminal. Clear it with `finish_and_clear` when done.
    pub fn progress_bar(&self, len: u64, prefix: &'static str) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{prefix:>6} [{bar:40}] {pos}/{len} requests, {elapsed} ({per_sec})",
        )
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        self.bars
            .add(ProgressBar::new(len).with_style(style).with_prefix(prefix))
    }
}

fn write_all(out: &mut dyn io::Write, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Stdout for the fmt layer: each event is buffered whole and written at
/// once, with the progress bars suspended.
#[derive(Clone)]
struct SuspendingStdout {
    bars: MultiProgress,
}

impl<'a> MakeWriter<'a> for SuspendingStdout {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer {
            bytes: Vec::new(),
            bars: self.bars.clone(),
        }
    }
}

/// One event's bytes, written to stdout when dropped.
struct EventBuffer {
    bytes: Vec<u8>,
    bars: MultiProgress,
}

impl io::Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        self.bars.suspend(|| {
            let mut out = io::stdout().lock();
            // A closed stdout (`| head`) loses the log, not the run.
            let _ = out.write_all(&self.bytes).and_then(|()| out.flush());
        });
    }
}
