use std::path::PathBuf;

/// Everything that can go wrong at run time. No runtime function panics on bad
/// input (wrong shapes, hostile files, NaNs): it returns one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input whose per-sample shape or batch size does not fit the model.
    #[error("input shape mismatch: the model expects {expected}, got {got}")]
    Shape { expected: String, got: String },
    /// Labels that do not fit (count differs from the batch, or a class out of range).
    #[error("bad labels: {0}")]
    Labels(String),
    /// A file that cannot be parsed (truncated, corrupt, hostile, wrong dtype).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// Weights that do not fit the model (missing tensor, wrong shape).
    #[error("weights do not fit the model: {0}")]
    Weights(String),
    /// A loss or value that became NaN or infinite.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// A bad argument (e.g. batch size 0, empty data set).
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
