//! What the engine's errors share. Each module has its own error type
//! (thiserror), naming what callers may act on; the failures of a system
//! call or of I/O travel as an [`IoError`] that says what was being done,
//! with the OS error as its source. A front end prints the whole chain
//! ([`chain`], or anyhow's `{:#}`).

use std::fmt::Write as _;

/// An I/O or system call failure, and what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct IoError {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Self { what: what.into(), source: source.into() }
    }

    /// The OS error behind it.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }
}

/// Says what was being done when an I/O or system call failed.
pub trait IoContext<T> {
    fn io_context(self, what: impl Into<String>) -> Result<T, IoError>;
    fn with_io_context(self, what: impl FnOnce() -> String) -> Result<T, IoError>;
}

impl<T, E: Into<std::io::Error>> IoContext<T> for Result<T, E> {
    fn io_context(self, what: impl Into<String>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(what, e))
    }

    fn with_io_context(self, what: impl FnOnce() -> String) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(what(), e))
    }
}

/// An error that can say, in front of its own message, what was being
/// done (as anyhow's `context` does, but keeping the type).
pub trait Contextual: Sized {
    fn context(self, what: String) -> Self;
}

impl Contextual for IoError {
    fn context(self, what: String) -> Self {
        Self { what: format!("{what}: {}", self.what), source: self.source }
    }
}

/// [`Contextual::context`] on a result.
pub trait ResultExt<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, E>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, E>;
}

impl<T, E: Contextual> ResultExt<T, E> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, E> {
        self.map_err(|e| e.context(what.into()))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, E> {
        self.map_err(|e| e.context(what()))
    }
}

/// For a module's error enum with `Io(IoError)`, `Os(io::Error)`,
/// `Sys(Errno)` and `Context { what, source }` variants: its `context`
/// method (an OS error becomes an [`IoError`] that says what failed, any
/// other is wrapped), and the module's context trait, `context` and
/// `with_context` on every result whose error converts into the enum and,
/// with `none => Variant`, on options (`None` becomes that variant).
/// One mechanism instead of a copy per module.
macro_rules! module_error_context {
    ($vis:vis trait $name:ident for $error:ident $(, none => $invalid:ident)?) => {
        impl $error {
            /// The error with `what` in front.
            pub fn context(self, what: String) -> Self {
                match self {
                    $error::Io(io) => $error::Io($crate::error::Contextual::context(io, what)),
                    $error::Os(e) => $error::Io($crate::error::IoError::new(what, e)),
                    $error::Sys(errno) => $error::Io($crate::error::IoError::new(what, errno)),
                    other => $error::Context { what, source: Box::new(other) },
                }
            }
        }

        /// `context` for anything that becomes the module's error.
        $vis trait $name<T> {
            fn context(self, what: impl Into<String>) -> std::result::Result<T, $error>;
            fn with_context(self, what: impl FnOnce() -> String) -> std::result::Result<T, $error>;
        }

        impl<T, E: Into<$error>> $name<T> for std::result::Result<T, E> {
            fn context(self, what: impl Into<String>) -> std::result::Result<T, $error> {
                self.map_err(|e| e.into().context(what.into()))
            }

            fn with_context(self, what: impl FnOnce() -> String) -> std::result::Result<T, $error> {
                self.map_err(|e| e.into().context(what()))
            }
        }

        $(
            impl<T> $name<T> for Option<T> {
                fn context(self, what: impl Into<String>) -> std::result::Result<T, $error> {
                    self.ok_or_else(|| $error::$invalid(what.into()))
                }

                fn with_context(self, what: impl FnOnce() -> String) -> std::result::Result<T, $error> {
                    self.ok_or_else(|| $error::$invalid(what()))
                }
            }
        )?
    };
}
pub(crate) use module_error_context;

/// An error and its causes on one line, outermost first ("a: b: c").
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let _ = write!(text, ": {e}");
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_and_chain() {
        let e = std::fs::read("/nonexistent/ctr").io_context("read the thing").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "read the thing");
        assert!(chain(&e).starts_with("read the thing: No such file"), "{}", chain(&e));
        let errno: nix::Result<()> = Err(nix::errno::Errno::EPERM);
        assert!(chain(&errno.io_context("setns").unwrap_err()).starts_with("setns: Operation not permitted"));
    }
}
