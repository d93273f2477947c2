//! A criterion measurement of this thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) instead of wall-clock time: time the bench
//! thread spends preempted by other processes is not counted, so a busy
//! machine does not skew the ratio of two nanosecond-scale handlers.
//! Values are nanoseconds, formatted like criterion's wall time. Elsewhere
//! than 64-bit Linux, it falls back to wall-clock time.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// This thread's CPU time.
pub struct ThreadTime;

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn now() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable `struct timespec` (two 64-bit
    // fields on 64-bit Linux), and the clock id is Linux's thread CPU clock.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &raw mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(
        u64::try_from(time.tv_sec).expect("non-negative"),
        u32::try_from(time.tv_nsec).expect("below one second"),
    )
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn now() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl Measurement for ThreadTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        now()
    }

    fn end(&self, start: Duration) -> Duration {
        now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_secs_f64() * 1e9
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as wall time's are.
        WallTime.formatter()
    }
}
