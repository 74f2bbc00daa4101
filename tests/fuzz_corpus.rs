//! Replays every fuzz target's seed corpus (`fuzz/seeds/<target>/`) through
//! the same entry point the fuzzer drives, so the parsers run on every
//! `cargo test`. A target with no corpus fails the test.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut n = 0;
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.expect("readable corpus directory").path();
        entry(&std::fs::read(&path).expect("readable corpus file"));
        n += 1;
    }
    assert!(n > 0, "empty seed corpus for {target}");
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name), tower_otp::fuzzing::$name);
            }
        )*
    };
}

corpus_tests!(
    phone,
    email,
    jwt_decode,
    request_body,
    forwarded,
    x_forwarded_for,
    render_template,
    api_key,
    webhook_verify,
    http_date
);
