//! The errors partnerctl ends with, and the exit code each one means.

use tonic::Code;

/// Exit codes, documented in `partnerctl --help` and the README.
pub mod exit {
    /// The command did what it was asked.
    pub const OK: u8 = 0;
    /// Something unexpected (a local I/O problem, a bug, an unknown server error).
    pub const UNEXPECTED: u8 = 1;
    /// Bad usage: unknown flag, missing argument, contradictory options.
    pub const USAGE: u8 = 2;
    /// Not logged in, or the session expired (UNAUTHENTICATED).
    pub const UNAUTHENTICATED: u8 = 3;
    /// PERMISSION_DENIED.
    pub const PERMISSION_DENIED: u8 = 4;
    /// NOT_FOUND.
    pub const NOT_FOUND: u8 = 5;
    /// INVALID_ARGUMENT or OUT_OF_RANGE: the server refused the input.
    pub const INVALID_ARGUMENT: u8 = 6;
    /// ALREADY_EXISTS, ABORTED (stale etag) or FAILED_PRECONDITION.
    pub const CONFLICT: u8 = 7;
    /// UNAVAILABLE, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED: try again later.
    pub const UNAVAILABLE: u8 = 8;
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The command line asks for something that cannot be done.
    Usage(String),
    /// No stored session, or it can no longer be renewed.
    NotLoggedIn(String),
    /// The server refused the call.
    Rpc(tonic::Status),
    /// Anything else, with its context chain.
    Other(anyhow::Error),
}

/// A command's result.
pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    /// A usage error with `message`.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::NotLoggedIn(_) => exit::UNAUTHENTICATED,
            Self::Other(_) => exit::UNEXPECTED,
            Self::Rpc(status) => code_exit(status.code()),
        }
    }
}

/// The exit code for a gRPC status code.
pub fn code_exit(code: Code) -> u8 {
    match code {
        Code::Ok => exit::OK,
        Code::Unauthenticated => exit::UNAUTHENTICATED,
        Code::PermissionDenied => exit::PERMISSION_DENIED,
        Code::NotFound => exit::NOT_FOUND,
        Code::InvalidArgument | Code::OutOfRange => exit::INVALID_ARGUMENT,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => exit::CONFLICT,
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded => exit::UNAVAILABLE,
        _ => exit::UNEXPECTED,
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc(status)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self::Other(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self::Other(error.into())
    }
}
