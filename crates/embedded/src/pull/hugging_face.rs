//! The Hugging Face source: one HTTP download, resumed with a `Range` request.
//!
//! Often unreachable (blocked networks, hanging connections), so connecting is bounded by a
//! short timeout and any remote failure only means "try PyPI". The partial file is touched only
//! once the server has answered, so a failed attempt leaves an earlier download as it was.

use std::error::Error;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};

use super::partial::{Meter, Partial};
use super::{PullError, PullOptions, PullProgress, PullSource};
use crate::catalog::CatalogModel;

/// Why Hugging Face did not deliver.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server could not be reached or misbehaved: try the next source.
    Remote(String),
    /// Something here failed (disk full, ...): another source would fail the same way.
    Local(PullError),
}

pub(super) fn fetch(
    partial: &mut Partial<'_>,
    model: &CatalogModel,
    options: &PullOptions,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<(), Failure> {
    // Our own small runtime: `pull` is blocking and must not need the caller's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Remote(format!("could not start an HTTP runtime: {e}")))?;
    runtime.block_on(download(partial, model, options, progress))
}

async fn download(
    partial: &mut Partial<'_>,
    model: &CatalogModel,
    options: &PullOptions,
    progress: &mut dyn FnMut(PullProgress),
) -> Result<(), Failure> {
    let client = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .user_agent(concat!("nightshift/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Remote(describe(&e)))?;
    let from = partial.on_disk();
    let mut request = client.get(model.hugging_face_url);
    if from > 0 {
        request = request.header(RANGE, format!("bytes={from}-"));
    }
    // Bounds the whole exchange up to the response headers (DNS, connect, TLS, redirects).
    let answer = tokio::time::timeout(options.connect_timeout * 2, request.send()).await;
    let mut response = match answer {
        Err(_) => {
            return Err(Failure::Remote(format!(
                "no answer within {}s",
                (options.connect_timeout * 2).as_secs_f32()
            )));
        }
        Ok(result) => result.map_err(|e| Failure::Remote(describe(&e)))?,
    };
    let start = match response.status() {
        StatusCode::PARTIAL_CONTENT => {
            let range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if parse_content_range(range) != Some((from, model.size)) {
                return Err(Failure::Remote(format!(
                    "asked for bytes {from}- of {}, got range `{range}`",
                    model.size
                )));
            }
            from
        }
        StatusCode::OK => {
            if let Some(length) = response.content_length()
                && length != model.size
            {
                return Err(Failure::Remote(format!(
                    "the file has {length} bytes, the catalog says {}",
                    model.size
                )));
            }
            0
        }
        status => return Err(Failure::Remote(format!("HTTP {status}"))),
    };
    partial.rewind_to(start, progress).map_err(Failure::Local)?;
    if start > 0 {
        progress(PullProgress::Resuming {
            source: PullSource::HuggingFace,
            from: start,
        });
    }
    let mut meter = Meter::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(Failure::Remote(format!(
                    "the download broke off after {} bytes: {}",
                    partial.len(),
                    describe(&e)
                )));
            }
        };
        match partial.append(&chunk, PullSource::HuggingFace) {
            Ok(()) => {}
            Err(PullError::SizeMismatch { actual, .. }) => {
                return Err(Failure::Remote(format!(
                    "sent {actual} bytes or more, the catalog says {}",
                    model.size
                )));
            }
            Err(error) => return Err(Failure::Local(error)),
        }
        if meter.due() {
            progress(PullProgress::Bytes {
                source: PullSource::HuggingFace,
                done: partial.len(),
                total: model.size,
            });
        }
    }
    if partial.len() != model.size {
        return Err(Failure::Remote(format!(
            "the download ended after {} of {} bytes",
            partial.len(),
            model.size
        )));
    }
    progress(PullProgress::Bytes {
        source: PullSource::HuggingFace,
        done: partial.len(),
        total: model.size,
    });
    Ok(())
}

/// `bytes 100-999/1000` → `(100, 1000)`.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// An error with its causes: reqwest's own message rarely says what actually went wrong.
fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = inner.source();
    }
    text
}
