//! Delivery of members' one-time sign-in codes: pluggable, so a deployment can send them
//! by email or SMS. Tally ships two senders: one that writes the code to the log (for
//! development and the demo, where tests read it there) and one that refuses (the
//! default of `tally serve`, so codes never reach a production log by accident).

/// Sends a one-time code to an email address or phone number.
pub trait CodeSender: Send + Sync {
    /// Delivers `code` to `destination`; an error is logged (the page does not say, so
    /// it reads the same for an address that is no member's).
    fn send(&self, destination: &str, code: &str) -> Result<(), String>;

    /// Whether codes can be sent at all; when not, the sign-in form says so to everyone.
    fn available(&self) -> bool {
        true
    }
}

/// Writes each code to the log at `info`, target `tally::codes`.
pub struct LogSender;

impl CodeSender for LogSender {
    fn send(&self, destination: &str, code: &str) -> Result<(), String> {
        tracing::info!(target: "tally::codes", %destination, %code, "one-time sign-in code (development sender)");
        Ok(())
    }
}

/// No sender configured: members cannot sign in with a code.
pub struct NoSender;

impl CodeSender for NoSender {
    fn send(&self, _destination: &str, _code: &str) -> Result<(), String> {
        Err("sign-in codes are not available on this server".into())
    }

    fn available(&self) -> bool {
        false
    }
}
