//! `TL_AUDIT`: a valid value overrides the builder; garbage is an error.
//! One test in its own binary, since it changes the process environment.

use tl_audit::{AuditError, Auditor, ConfigError, Mode};

fn set(value: Option<&str>) {
    // SAFETY: this binary has a single test, and no other thread of it reads
    // or writes the environment while it runs.
    unsafe {
        match value {
            Some(v) => std::env::set_var("TL_AUDIT", v),
            None => std::env::remove_var("TL_AUDIT"),
        }
    }
}

#[test]
fn tl_audit_variable_wins_over_the_builder() {
    let builder = || Auditor::builder().mode(Mode::Full).manual();

    set(None);
    let a = builder().install().unwrap();
    assert_eq!(a.mode(), Mode::Full);
    drop(a);

    set(Some("off"));
    let a = builder().install().unwrap();
    assert_eq!(a.mode(), Mode::Off);
    drop(a);

    set(Some(" DENY "));
    let a = builder().install().unwrap();
    assert_eq!(a.mode(), Mode::Deny);
    drop(a);

    set(Some(""));
    let a = builder().install().unwrap();
    assert_eq!(a.mode(), Mode::Full, "empty counts as unset");
    drop(a);

    set(Some("deny"));
    let a = builder().ignore_env().install().unwrap();
    assert_eq!(a.mode(), Mode::Full, "ignore_env");
    drop(a);

    // The last one spells "deny" with a Cyrillic "е".
    for garbage in ["loud", "sampled:10", "1", "dеny"] {
        set(Some(garbage));
        let err = builder().install().unwrap_err();
        let AuditError::Config(ConfigError::InvalidMode { var, value }) = &err else {
            panic!("{err}")
        };
        assert_eq!((*var, value.as_str()), (Some("TL_AUDIT"), garbage));
        assert!(
            err.to_string()
                .contains("expected one of off, sampled, full, deny"),
            "{err}"
        );
        assert!(!tl_core::checkpoint::has_task_end_hook());
    }
    set(None);
}
