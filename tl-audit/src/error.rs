//! Errors of configuration and of the auditor's life cycle.

use core::fmt;
use std::io;
use std::time::Duration;

/// A configuration value was refused. Nothing was installed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The scan interval is outside `[min, max]`.
    IntervalOutOfRange {
        /// The value given.
        interval: Duration,
        /// The smallest accepted value.
        min: Duration,
        /// The largest accepted value.
        max: Duration,
    },
    /// The grace period is longer than `max`.
    GraceOutOfRange {
        /// The value given.
        grace: Duration,
        /// The largest accepted value.
        max: Duration,
    },
    /// `idle_after` is longer than `max`.
    IdleAfterOutOfRange {
        /// The value given.
        idle_after: Duration,
        /// The largest accepted value.
        max: Duration,
    },
    /// `sample_every(0)`: one task end in zero cannot be audited.
    ZeroSampleRate,
    /// A threshold of zero: growth would report every thread, and metrics
    /// would label no key.
    ZeroThreshold {
        /// `"max_entries_per_thread"`, `"max_bytes_per_thread"` or `"metrics_max_keys"`.
        setting: &'static str,
    },
    /// The rate limit allows no event, or its window is outside `[min, max]`.
    RateLimitOutOfRange {
        /// Events allowed per window.
        events: u32,
        /// The window.
        per: Duration,
        /// The smallest accepted window.
        min: Duration,
        /// The largest accepted window.
        max: Duration,
    },
    /// The auditor thread's name is empty or contains a NUL byte.
    InvalidThreadName {
        /// The name given.
        name: String,
    },
    /// A mode string is not one of `off`, `sampled`, `full`, `deny`.
    InvalidMode {
        /// The environment variable it came from, if any.
        var: Option<&'static str>,
        /// The text given (lossily decoded if it was not UTF-8).
        value: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IntervalOutOfRange { interval, min, max } => write!(
                f,
                "scan interval must be between {min:?} and {max:?}, got {interval:?}"
            ),
            Self::GraceOutOfRange { grace, max } => {
                write!(f, "grace period must be at most {max:?}, got {grace:?}")
            }
            Self::IdleAfterOutOfRange { idle_after, max } => {
                write!(f, "idle_after must be at most {max:?}, got {idle_after:?}")
            }
            Self::ZeroSampleRate => f.write_str(
                "sample_every must be at least 1 (1 audits every task end, like Mode::Full)",
            ),
            Self::ZeroThreshold {
                setting: "metrics_max_keys",
            } => f.write_str(
                "metrics_max_keys must be at least 1 (keys past it are labelled \"other\")",
            ),
            Self::ZeroThreshold { setting } => write!(
                f,
                "{setting} must be at least 1 (leave it unset to disable growth findings)"
            ),
            Self::RateLimitOutOfRange {
                events,
                per,
                min,
                max,
            } => write!(
                f,
                "rate limit must allow at least 1 event per window of {min:?} to {max:?}, got {events} per {per:?}"
            ),
            Self::InvalidThreadName { name } => write!(
                f,
                "auditor thread name must be non-empty and free of NUL bytes, got {name:?}"
            ),
            Self::InvalidMode {
                var: Some(var),
                value,
            } => write!(
                f,
                "{var}={value:?} is not an audit mode: expected one of off, sampled, full, deny (unset it, or leave it empty, to use the builder's mode)"
            ),
            Self::InvalidMode { var: None, value } => write!(
                f,
                "{value:?} is not an audit mode: expected one of off, sampled, full, deny"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Installing, using or stopping an [`Auditor`](crate::Auditor) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuditError {
    /// The configuration was refused; nothing was installed.
    Config(ConfigError),
    /// Another auditor is installed in this process; shut it down first.
    AlreadyInstalled,
    /// Something other than tl-audit installed tl-core's task-end hook.
    HookInUse,
    /// The auditor was shut down; it can no longer scan or report.
    ShutDown,
    /// The auditor thread could not be spawned.
    Spawn(io::Error),
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid audit configuration: {e}"),
            Self::AlreadyInstalled => f.write_str(
                "a tl-audit auditor is already installed in this process: shut it down (or drop it) before installing another",
            ),
            Self::HookInUse => f.write_str(
                "tl-core's task-end hook is already set by something other than tl-audit: remove it with tl_core::checkpoint::set_task_end_hook(None) first",
            ),
            Self::ShutDown => {
                f.write_str("the auditor was shut down: install a new one to keep auditing")
            }
            Self::Spawn(e) => write!(f, "failed to spawn the auditor thread: {e}"),
        }
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for AuditError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}
