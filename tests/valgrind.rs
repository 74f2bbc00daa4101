//! The crate's clock runs under valgrind.
//!
//! `CoarseClock` reads the kernel's vDSO through rustix. rustix used to find
//! the vDSO from the kernel's auxiliary vector, which valgrind does not map,
//! and crashed any program run under valgrind (rustix issue 1559). This test
//! runs its own binary under `valgrind --tool=none` and reads the clock there.

use std::process::Command;

use tower_otp::clock::{Clock, CoarseClock, SystemClock};

/// Run by `coarse_clock_runs_under_valgrind` inside valgrind.
#[test]
#[ignore = "run inside valgrind by coarse_clock_runs_under_valgrind"]
fn read_the_coarse_clock() {
    let coarse = CoarseClock.now_us();
    let precise = SystemClock.now_us();
    let tick = u64::try_from(CoarseClock::resolution().as_micros()).unwrap_or(u64::MAX);
    assert!(coarse <= precise && precise - coarse <= tick.max(10_000) + 1_000_000);
}

#[test]
fn coarse_clock_runs_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "valgrind is not installed (CI installs it: .ci/run)"
        );
        eprintln!("\n*** SKIPPED coarse_clock_runs_under_valgrind: valgrind not installed ***\n");
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("valgrind")
        .args(["--tool=none", "--error-exitcode=99", "-q"])
        .arg(exe)
        .args([
            "--exact",
            "read_the_coarse_clock",
            "--ignored",
            "--test-threads=1",
        ])
        .output()
        .expect("run valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "under valgrind: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
