//! Audit modes and the `TL_AUDIT` environment variable.

use core::fmt;
use core::str::FromStr;
use std::ffi::OsStr;

use crate::error::ConfigError;

/// How much the auditor does, like Netty's leak detection levels.
///
/// | Mode | Task ends audited | Overwrites, idle scans, park, gate | Finding level | [`Report::exit_status`](crate::Report::exit_status) with findings |
/// |---|---|---|---|---|
/// | `off` | none (no hook, no thread: no cost) | none | - | 0 |
/// | `sampled` (default) | one in N per thread ([`AuditorBuilder::sample_every`](crate::AuditorBuilder::sample_every)) | all | WARN | 0 |
/// | `full` | every one | all | WARN | 0 |
/// | `deny` | every one | all | ERROR | 1 (and test scopes fail) |
///
/// What each mode guarantees, for a task-scoped value that work leaves bound
/// on a pooled thread:
/// - `full` and `deny` report it when its task ends, with the task's name
///   and the panic flag, on the thread that ran it.
/// - `sampled` reports it at the latest when the next task on that thread
///   replaces it with its own `set` ([`Detection::Overwrite`](crate::Detection::Overwrite)),
///   when the thread goes idle where a pool says so ([`Detection::Park`](crate::Detection::Park)),
///   when a scan finds it held longer than
///   [`idle_after`](crate::AuditorBuilder::idle_after) by a thread running no
///   task ([`Detection::Idle`](crate::Detection::Idle)), or at the final gate
///   ([`Detection::Gate`](crate::Detection::Gate)); a sampled task end
///   reports it at once. Nothing sampling skips is lost, only reported
///   later. The sampling keeps the cost of tasks that leave nothing, the
///   common case, at a thread-local decrement.
/// - Every mode but `off` reports each bind once, whichever check sees it
///   first, and reports stranded values and growth at every scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Nothing is audited and nothing runs.
    Off,
    /// One task end in N is audited on each thread (the first one on each
    /// thread always is); every other check runs (see the table above).
    #[default]
    Sampled,
    /// Every task end is audited; scans run every interval.
    Full,
    /// Like `Full`, and every finding is an error: events are emitted at
    /// ERROR, test scopes fail, and the process gate's exit status is 1.
    Deny,
}

impl Mode {
    /// The environment variable read by [`Mode::from_env`]; a valid value
    /// overrides the builder's mode.
    pub const ENV_VAR: &'static str = "TL_AUDIT";

    /// `"off"`, `"sampled"`, `"full"` or `"deny"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Sampled => "sampled",
            Self::Full => "full",
            Self::Deny => "deny",
        }
    }

    /// Reads [`Mode::ENV_VAR`]: `Ok(None)` when it is unset or blank,
    /// `Ok(Some(mode))` for a valid mode (case-insensitive, surrounding
    /// whitespace ignored), and an error for anything else, so that a typo in
    /// CI (`TL_AUDIT=dney`) cannot silently weaken the audit.
    ///
    /// # Errors
    /// [`ConfigError::InvalidMode`] naming the variable and its value.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_env_value(Self::ENV_VAR, std::env::var_os(Self::ENV_VAR).as_deref())
    }

    /// [`Mode::from_env`] for the value `value` of the variable `var`.
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use tl_audit::Mode;
    ///
    /// assert_eq!(Mode::from_env_value("TL_AUDIT", None), Ok(None));
    /// assert_eq!(Mode::from_env_value("TL_AUDIT", Some(OsStr::new(" "))), Ok(None));
    /// assert_eq!(Mode::from_env_value("TL_AUDIT", Some(OsStr::new("Deny"))), Ok(Some(Mode::Deny)));
    /// assert!(Mode::from_env_value("TL_AUDIT", Some(OsStr::new("dney"))).is_err());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidMode`] naming `var` and the value.
    pub fn from_env_value(
        var: &'static str,
        value: Option<&OsStr>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let invalid = || ConfigError::InvalidMode {
            var: Some(var),
            value: value.to_string_lossy().into_owned(),
        };
        let text = value.to_str().ok_or_else(invalid)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| invalid())
    }

    /// Whether every task end is audited.
    pub(crate) fn audits_every_task(self) -> bool {
        matches!(self, Self::Full | Self::Deny)
    }
}

impl FromStr for Mode {
    type Err = ConfigError;

    /// Parses `off`, `sampled`, `full` or `deny`, ignoring case and
    /// surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let mode = s.trim();
        [Self::Off, Self::Sampled, Self::Full, Self::Deny]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(mode))
            .ok_or_else(|| ConfigError::InvalidMode {
                var: None,
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mode_in_any_case() {
        for (text, mode) in [
            ("off", Mode::Off),
            ("SAMPLED", Mode::Sampled),
            (" full\n", Mode::Full),
            ("Deny", Mode::Deny),
        ] {
            assert_eq!(text.parse::<Mode>(), Ok(mode));
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_variable() {
        let err = Mode::from_env_value("TL_AUDIT", Some(OsStr::new("loud"))).unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidMode {
                var: Some("TL_AUDIT"),
                value: "loud".to_owned()
            }
        );
        let text = err.to_string();
        assert!(text.contains("TL_AUDIT=\"loud\""), "{text}");
        assert!(text.contains("off, sampled, full, deny"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        let err =
            Mode::from_env_value("TL_AUDIT", Some(OsStr::from_bytes(b"de\xffny"))).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidMode { .. }));
    }

    #[test]
    fn blank_means_unset() {
        assert_eq!(
            Mode::from_env_value("TL_AUDIT", Some(OsStr::new(""))),
            Ok(None)
        );
        assert_eq!(
            Mode::from_env_value("TL_AUDIT", Some(OsStr::new(" \t"))),
            Ok(None)
        );
    }
}
