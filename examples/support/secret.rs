//! The development examples' server secret: `OTP_SECRET`, or a fresh random
//! one per run (shared by quickstart.rs and hyper_only.rs through `#[path]`).

/// `OTP_SECRET` when set (the router refuses a weak one at build time), else
/// 32 random bytes, said on stderr without printing them: codes and tokens
/// then die with the process, which suits a development server.
pub(crate) fn otp_secret_or_random() -> Vec<u8> {
    match std::env::var("OTP_SECRET") {
        Ok(secret) => secret.into_bytes(),
        Err(_) => {
            eprintln!(
                "OTP_SECRET is not set: generated a random 32-byte secret for this run (codes and tokens die with the process)."
            );
            rand::random::<[u8; 32]>().to_vec()
        }
    }
}
