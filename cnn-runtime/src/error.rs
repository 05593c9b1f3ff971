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
    /// A training step met a NaN or an infinity; the step's update was not
    /// applied.
    #[error("{0}")]
    Diverged(Divergence),
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

/// Where a training step first met a NaN or an infinity ([`Error::Diverged`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    pub culprit: Culprit,
    /// The first non-finite value found there.
    pub value: f32,
    /// The loss of the step (finite when only a gradient is not).
    pub loss: f32,
    /// 1-based epoch and step within it, when `fit` ran the step.
    pub epoch: Option<usize>,
    pub step: Option<usize>,
}

/// What held the first non-finite value of a diverged step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// The output of a layer: the first in the forward pass that is not
    /// finite. `index` is the top-level statement (`layer_output(index)`),
    /// `statement` the layer's number among all statements, nested ones
    /// included, in source order (`cnn_plan::Step::id`); `join`: the step is
    /// the join of a graph statement (`add`, `concat`, `residual`).
    Output {
        index: usize,
        statement: usize,
        join: bool,
    },
    /// A parameter gradient (every layer's output finite): the tensor's name
    /// (`layer3.kernel`) and its layer's `statement` as above.
    Gradient { tensor: String, statement: usize },
    /// A weight the step's update made NaN or infinite (finite gradient,
    /// too large a rate): the update is applied, so the model in memory is
    /// spoiled; the last checkpoint, written before, is not.
    Update { tensor: String, statement: usize },
    /// The loss itself (every output finite).
    Loss,
}

impl Divergence {
    /// A divergence found outside `fit` (no epoch or step yet).
    pub fn new(culprit: Culprit, value: f32, loss: f32) -> Divergence {
        Divergence {
            culprit,
            value,
            loss,
            epoch: None,
            step: None,
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "training diverged")?;
        match (self.epoch, self.step) {
            (Some(e), Some(s)) => write!(f, " at epoch {e}, step {s}")?,
            (None, Some(s)) => write!(f, " at step {s}")?,
            _ => {}
        }
        write!(f, ": the loss is {}", self.loss)?;
        match &self.culprit {
            Culprit::Output {
                index, join: true, ..
            } => write!(
                f,
                "; the first output that is not finite is the join of layer {index} ({})",
                self.value
            )?,
            Culprit::Output { index, .. } => write!(
                f,
                "; the first layer whose output is not finite is layer {index} ({})",
                self.value
            )?,
            Culprit::Gradient { tensor, .. } => write!(
                f,
                "; the gradient of `{tensor}` is not finite ({})",
                self.value
            )?,
            Culprit::Update { tensor, .. } => {
                return write!(
                    f,
                    "; its update made `{tensor}` not finite ({}): a lower learning rate may help",
                    self.value
                )
            }
            Culprit::Loss => {}
        }
        write!(
            f,
            "; this step's update was not applied (a lower learning rate may help)"
        )
    }
}
