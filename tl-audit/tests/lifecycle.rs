//! Installing, using and shutting down the auditor: misuse is an error,
//! never a panic inside.

mod common;

use std::time::{Duration, Instant};

use tl_audit::{AuditError, Auditor, ConfigError, Mode};
use tl_core::checkpoint::{TaskEnd, has_task_end_hook, set_task_end_hook};

#[test]
fn installing_twice_is_an_error() {
    let _serial = tl_audit::testing::serial();
    let first = common::full_manual().install().unwrap();
    let err = common::full_manual().install().unwrap_err();
    assert!(matches!(err, AuditError::AlreadyInstalled), "{err}");
    assert!(err.to_string().contains("already installed"), "{err}");
    // Off mode occupies the slot too.
    drop(first);
    let off = common::full_manual().mode(Mode::Off).install().unwrap();
    assert!(matches!(
        common::full_manual().install(),
        Err(AuditError::AlreadyInstalled)
    ));
    drop(off);
    // Freed on drop.
    drop(common::full_manual().install().unwrap());
}

#[test]
fn using_it_after_shutdown_is_an_error() {
    let _serial = tl_audit::testing::serial();
    let auditor = common::full_manual().install().unwrap();
    assert!(has_task_end_hook());
    auditor.shutdown().unwrap();
    assert!(!has_task_end_hook(), "shutdown removes the hook");
    assert!(auditor.is_shut_down());
    assert!(matches!(auditor.scan_now(), Err(AuditError::ShutDown)));
    assert!(matches!(auditor.summary(), Err(AuditError::ShutDown)));
    assert!(matches!(auditor.findings(), Err(AuditError::ShutDown)));
    let err = auditor.shutdown().unwrap_err();
    assert!(matches!(err, AuditError::ShutDown));
    assert!(err.to_string().contains("shut down"));
    assert!(matches!(auditor.finish(), Err(AuditError::ShutDown)));
    // The slot is free again.
    drop(common::full_manual().install().unwrap());
}

#[test]
fn invalid_settings_install_nothing() {
    let _serial = tl_audit::testing::serial();
    for builder in [
        common::full_manual().interval(Duration::ZERO),
        common::full_manual().interval(Duration::from_secs(10 * 86_400)),
        common::full_manual().sample_every(0),
        common::full_manual().max_entries_per_thread(0),
        common::full_manual().grace_period(Duration::MAX),
        common::full_manual().thread_name("bad\0name"),
    ] {
        let err = builder.install().unwrap_err();
        assert!(matches!(err, AuditError::Config(_)), "{err}");
        assert!(
            err.to_string().starts_with("invalid audit configuration: "),
            "{err}"
        );
        assert!(!has_task_end_hook());
    }
    let err = common::full_manual()
        .interval(Duration::ZERO)
        .install()
        .unwrap_err();
    let AuditError::Config(ConfigError::IntervalOutOfRange { interval, .. }) = err else {
        panic!("{err}")
    };
    assert_eq!(interval, Duration::ZERO);
    drop(common::full_manual().install().unwrap());
}

fn foreign_hook(_: &TaskEnd<'_>) {}

#[test]
fn a_foreign_task_end_hook_is_not_replaced() {
    let _serial = tl_audit::testing::serial();
    assert!(set_task_end_hook(Some(foreign_hook)).is_none());
    let err = common::full_manual().install().unwrap_err();
    assert!(matches!(err, AuditError::HookInUse), "{err}");
    assert!(set_task_end_hook(None).is_some(), "still the foreign hook");
    drop(common::full_manual().install().unwrap());
}

#[test]
#[cfg_attr(miri, ignore = "real time: starts the auditor thread")]
fn shutdown_wakes_and_joins_the_auditor_thread_at_once() {
    let _serial = tl_audit::testing::serial();
    let auditor = Auditor::builder()
        .mode(Mode::Full)
        .ignore_env()
        .interval(Duration::from_secs(86_400))
        .thread_name("audit-under-test")
        .install()
        .unwrap();
    let start = Instant::now();
    auditor.shutdown().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "joined without waiting a day"
    );

    // Dropping does the same.
    let auditor = Auditor::builder()
        .mode(Mode::Sampled)
        .ignore_env()
        .interval(Duration::from_millis(1))
        .install()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    drop(auditor);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!has_task_end_hook());
}

#[test]
fn auditor_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Auditor>();
    assert_send_sync::<tl_audit::Report>();
    assert_send_sync::<tl_audit::FindingsLayer>();
}
