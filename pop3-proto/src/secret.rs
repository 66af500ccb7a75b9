//! [`Secret`]: a wrapper whose `Debug` never shows its contents.

use core::fmt;

/// A value that must never appear in logs, `Debug` output or error messages:
/// passwords, APOP digests, SASL payloads, OAuth tokens.
///
/// `Debug` prints `Secret(<redacted>)`. There is deliberately no `Display`.
/// Use [`Secret::expose`] at the one place that needs the value (encoding it
/// onto the wire).
///
/// ```
/// use pop3_proto::Secret;
/// let s = Secret::new(String::from("hunter2"));
/// assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrows the secret value. Call this only where the value must be used.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
