//! The words of the language (layers, activations, planned words, aliases from
//! other frameworks) and the typo suggester that picks among them.
//!
//! The grammar accepts any word as a statement head or option: which words mean
//! something is decided here, so that an unknown word gets a useful message.

use crate::ir::{Activation, Real};

/// `leaky_relu`'s slope when none is written.
pub(super) const DEFAULT_SLOPE: f32 = 0.3;

/// The layers the language has today.
pub const LAYERS: [&str; 20] = [
    "input",
    "conv",
    "dwconv",
    "sepconv",
    "deconv",
    "maxpool",
    "avgpool",
    "minpool",
    "flatten",
    "dense",
    "batchnorm",
    "dropout",
    "globalavgpool",
    "globalmaxpool",
    "zeropad",
    "upsample",
    "randomflip",
    "randomtranslate",
    "randomrotate",
    "randomzoom",
];
/// The activations (usable as a layer option or as a statement of their own),
/// aliases included (`swish` is `silu`, `hard_swish` is `hard_silu`).
pub const ACTIVATIONS: [&str; 16] = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "linear",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "softplus",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
];
/// Options that take a value (`stride 2`, `momentum 0.9`).
pub const VALUE_OPTIONS: [&str; 7] = [
    "stride",
    "dilation",
    "groups",
    "multiplier",
    "pad",
    "momentum",
    "epsilon",
];
/// Options that stand alone: the paddings, `nobias`, batchnorm's `noscale` and
/// `nocenter`, upsample's interpolations, randomflip's axes.
pub const FLAGS: [&str; 9] = [
    "same",
    "valid",
    "nobias",
    "noscale",
    "nocenter",
    "nearest",
    "bilinear",
    "horizontal",
    "vertical",
];
/// The words of graph statements (`shortcut` only inside a `residual`).
pub const GRAPH: [&str; 6] = ["residual", "add", "concat", "repeat", "block", "shortcut"];

/// What a statement takes after its numbers, and how it is written (for
/// help lines): one table, read by the checker of each layer and by the
/// helps that suggest an option.
pub(super) struct Accepts {
    /// The option words it takes (from `VALUE_OPTIONS` and `FLAGS`).
    pub(super) options: &'static [&'static str],
    /// Whether it takes an activation.
    pub(super) activation: bool,
    /// How the statement is written (`dense N [ACTIVATION] [nobias]`).
    pub(super) form: &'static str,
}

/// The [`Accepts`] of a layer statement (not of an activation or graph statement).
pub(super) fn accepts(word: &str) -> Option<Accepts> {
    const WINDOW: &[&str] = &["stride", "same", "valid", "pad"];
    let (form, options, activation): (&str, &[&str], bool) = match word {
        "input" => ("input HxWxC", &[], false),
        "conv" => (
            "conv F K [stride S] [same|valid] [dilation D] [groups G] [nobias] [pad P] [ACTIVATION]",
            &["stride", "same", "valid", "dilation", "groups", "nobias", "pad"],
            true,
        ),
        "dwconv" => (
            "dwconv K [stride S] [same|valid] [dilation D] [multiplier M] [nobias] [pad P] [ACTIVATION]",
            &["stride", "same", "valid", "dilation", "multiplier", "nobias", "pad"],
            true,
        ),
        "sepconv" => (
            "sepconv F K [stride S] [same|valid] [dilation D] [multiplier M] [nobias] [ACTIVATION]",
            &["stride", "same", "valid", "dilation", "multiplier", "nobias"],
            true,
        ),
        "deconv" => (
            "deconv F K [stride S] [same|valid] [nobias] [ACTIVATION]",
            &["stride", "same", "valid", "nobias"],
            true,
        ),
        "maxpool" => ("maxpool P [stride S] [same|valid] [pad P]", WINDOW, false),
        "avgpool" => ("avgpool P [stride S] [same|valid] [pad P]", WINDOW, false),
        "minpool" => ("minpool P [stride S] [same|valid] [pad P]", WINDOW, false),
        "flatten" => ("flatten", &[], false),
        "dense" => ("dense N [ACTIVATION] [nobias]", &["nobias"], true),
        "batchnorm" => (
            "batchnorm [momentum M] [epsilon E] [noscale] [nocenter]",
            &["momentum", "epsilon", "noscale", "nocenter"],
            false,
        ),
        "dropout" => ("dropout R", &[], false),
        "globalavgpool" => ("globalavgpool", &[], false),
        "globalmaxpool" => ("globalmaxpool", &[], false),
        "zeropad" => ("zeropad P", &[], false),
        "upsample" => ("upsample S [nearest|bilinear]", &["nearest", "bilinear"], false),
        "randomflip" => (
            "randomflip [horizontal] [vertical]",
            &["horizontal", "vertical"],
            false,
        ),
        "randomtranslate" => ("randomtranslate F", &[], false),
        "randomrotate" => ("randomrotate F", &[], false),
        "randomzoom" => ("randomzoom F", &[], false),
        _ => return None,
    };
    Some(Accepts {
        options,
        activation,
        form,
    })
}

/// Common names from other frameworks, mapped to ours (for "did you mean";
/// Keras's class names have helps of their own, see `keras`).
const ALIASES: [(&str, &str); 57] = [
    ("conv2d", "conv"),
    ("convolution", "conv"),
    ("convolution2d", "conv"),
    ("maxpool2d", "maxpool"),
    ("maxpooling", "maxpool"),
    ("maxpooling2d", "maxpool"),
    ("max_pool", "maxpool"),
    ("avgpool2d", "avgpool"),
    ("averagepooling2d", "avgpool"),
    ("averagepool", "avgpool"),
    ("avg_pool", "avgpool"),
    ("avgpooling", "avgpool"),
    ("minpool2d", "minpool"),
    ("minpooling", "minpool"),
    ("fc", "dense"),
    ("fully_connected", "dense"),
    ("linear_layer", "dense"),
    ("flat", "flatten"),
    ("reshape", "flatten"),
    ("activation", "relu"),
    ("depthwiseconv2d", "dwconv"),
    ("depthwise_conv", "dwconv"),
    ("separableconv2d", "sepconv"),
    ("separable_conv", "sepconv"),
    ("conv2dtranspose", "deconv"),
    ("convtranspose2d", "deconv"),
    ("batchnormalization", "batchnorm"),
    ("batchnorm2d", "batchnorm"),
    ("batch_norm", "batchnorm"),
    ("globalaveragepooling2d", "globalavgpool"),
    ("adaptiveavgpool2d", "globalavgpool"),
    ("globalmaxpooling2d", "globalmaxpool"),
    ("zeropadding2d", "zeropad"),
    ("upsampling2d", "upsample"),
    ("leakyrelu", "leaky_relu"),
    ("hardswish", "hard_swish"),
    // Spelled out, or as other frameworks and papers spell them: without
    // these, `convtranspose` got "did you mean `conv`?".
    ("depthwise", "dwconv"),
    ("depthwiseconv", "dwconv"),
    ("depthwise_conv2d", "dwconv"),
    ("separable", "sepconv"),
    ("separableconv", "sepconv"),
    ("separable_conv2d", "sepconv"),
    ("convtranspose", "deconv"),
    ("conv_transpose", "deconv"),
    ("conv2d_transpose", "deconv"),
    ("transposed_conv", "deconv"),
    ("transposeconv", "deconv"),
    ("deconvolution", "deconv"),
    ("gap", "globalavgpool"),
    ("bn", "batchnorm"),
    ("concatenate", "concat"),
    ("cat", "concat"),
    ("sum", "add"),
    ("skip", "residual"),
    ("resblock", "residual"),
    ("loop", "repeat"),
    ("upsampling", "upsample"),
];

/// The activation a word names, if any.
pub(super) fn activation_of(word: &str) -> Option<Activation> {
    Some(match word {
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        "linear" => Activation::Linear,
        "relu6" => Activation::Relu6,
        // The slope, when given, follows the word; this is the default (Keras's
        // `LeakyReLU` layer, also as a layer option, as the spec says).
        "leaky_relu" => Activation::LeakyRelu(Real::new(DEFAULT_SLOPE)),
        "elu" => Activation::Elu,
        "selu" => Activation::Selu,
        "gelu" => Activation::Gelu,
        "silu" | "swish" => Activation::Silu,
        "softplus" => Activation::Softplus,
        "hard_sigmoid" => Activation::HardSigmoid,
        "hard_silu" | "hard_swish" => Activation::HardSilu,
        _ => return None,
    })
}

/// Words a model name cannot be: it becomes a Rust type name.
pub(super) const RUST_KEYWORDS: [&str; 51] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// Our name for a name from another framework (`conv2d` -> `conv`); `lower` is
/// the word in lowercase.
pub(super) fn alias_of(lower: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == lower).map(|(_, b)| *b)
}

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    if let Some(c) = candidates.iter().find(|c| **c == lower) {
        return Some(c);
    }
    // Ranked by distance, then by a first letter in common (`dconv` is
    // one edit from `conv`, `dwconv` and `deconv`: not `conv`).
    let mut best: Option<((usize, bool), &'a str)> = None;
    for c in candidates {
        let d = (
            strsim::damerau_levenshtein(&lower, c),
            lower.chars().next() != c.chars().next(),
        );
        let limit = if c.len() <= 3 {
            1
        } else {
            (lower.len().max(c.len()) / 3).max(2)
        };
        let prefix = c.len() >= 4 && (lower.starts_with(c) || c.starts_with(lower.as_str()));
        if (d.0 <= limit || (prefix && lower.len() >= 3)) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Every word that can begin a statement, for "did you mean": the layers,
/// the graph statements and the activations.
pub(super) fn statement_words() -> Vec<&'static str> {
    let mut words: Vec<&str> = LAYERS.to_vec();
    words.extend(GRAPH.iter().filter(|w| **w != "shortcut"));
    words.extend(ACTIVATIONS);
    words
}

/// Is `word` the name of a statement (so that finding it among a statement's
/// arguments means a `;` is missing)? Activations are not: they are options too.
pub(super) fn is_statement_word(word: &str) -> bool {
    LAYERS.contains(&word) || (GRAPH.contains(&word) && word != "shortcut")
}

/// Is `word` an option of some statement (so that, as a statement, it is
/// "an option, not a layer")?
pub(super) fn is_option_word(word: &str) -> bool {
    VALUE_OPTIONS.contains(&word) || FLAGS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "did you mean" offers every statement, and only statements.
    #[test]
    fn suggestions_cover_every_statement() {
        let words = statement_words();
        for w in &words {
            assert_eq!(did_you_mean(w, &words), Some(*w));
        }
        for (alias, ours) in ALIASES {
            assert!(words.contains(&ours), "{alias} -> {ours}");
        }
        let typos = [
            ("dconv", "dwconv"),
            ("dwcov", "dwconv"),
            ("maxpooling", "maxpool"),
            ("residul", "residual"),
            ("concatt", "concat"),
            ("repat", "repeat"),
            ("sepcov", "sepconv"),
        ];
        for (typo, want) in typos {
            assert_eq!(did_you_mean(typo, &words), Some(want), "{typo}");
        }
    }
}
