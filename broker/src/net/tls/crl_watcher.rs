//! Keeps CA CRLs in the trust snapshot in step with CRL files on disk: loads
//! each file (PEM or DER) and reloads it when its modification time or size
//! changes. A file that cannot be read or checked is logged and the CRL
//! loaded before it stays in force: a broken file must not un-revoke anyone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use tokio::task::JoinHandle;

use super::trust::{CrlError, TrustStore};

/// How often files are checked for changes.
pub const CRL_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What a file looked like when we last read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: SystemTime,
    len: u64,
}

#[derive(Debug)]
struct Watched {
    ca_id: String,
    path: PathBuf,
    seen: Option<Stamp>,
    /// The last problem logged, so a file that stays broken is logged once
    /// rather than every poll.
    last_error: Option<String>,
}

/// Watches CRL files, one per CA id.
#[derive(Debug)]
pub struct CrlWatcher {
    store: Arc<TrustStore>,
    files: Vec<Watched>,
    interval: Duration,
}

/// Stops the watcher task when dropped.
#[derive(Debug)]
pub struct CrlWatcherHandle {
    task: JoinHandle<()>,
}

impl Drop for CrlWatcherHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CrlWatcher {
    /// `files` pairs a CA id (SHA-256 hex of the CA certificate) with the
    /// path of that CA's CRL.
    pub fn new(store: Arc<TrustStore>, files: impl IntoIterator<Item = (String, PathBuf)>) -> Self {
        Self {
            store,
            files: files
                .into_iter()
                .map(|(ca_id, path)| Watched {
                    ca_id,
                    path,
                    seen: None,
                    last_error: None,
                })
                .collect(),
            interval: CRL_POLL_INTERVAL,
        }
    }

    /// Polls every `interval` instead of every [`CRL_POLL_INTERVAL`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Loads every file that changed since the last poll (all of them the
    /// first time). Returns how many CRLs were loaded into the store.
    pub async fn poll(&mut self) -> usize {
        let mut loaded = 0;
        for w in &mut self.files {
            match reload_if_changed(&self.store, w).await {
                Ok(true) => {
                    loaded += 1;
                    w.last_error = None;
                    tracing::info!(ca_id = %w.ca_id, path = %w.path.display(), "CRL loaded");
                }
                Ok(false) => {}
                Err(e) => {
                    let e = e.to_string();
                    if w.last_error.as_ref() != Some(&e) {
                        tracing::warn!(ca_id = %w.ca_id, path = %w.path.display(), error = %e,
                            "CRL not loaded; the previous one stays in force");
                    }
                    w.last_error = Some(e);
                }
            }
        }
        loaded
    }

    /// Loads the files now, then keeps polling on a tokio task until the
    /// handle is dropped.
    pub fn spawn(mut self) -> CrlWatcherHandle {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            // After a stall, one check is enough.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                self.poll().await;
            }
        });
        CrlWatcherHandle { task }
    }
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Crl(#[from] CrlError),
}

/// `Ok(true)` if the file changed and its CRL is now in the store.
async fn reload_if_changed(store: &TrustStore, w: &mut Watched) -> Result<bool, LoadError> {
    let meta = tokio::fs::metadata(&w.path).await?;
    let stamp = Stamp {
        modified: meta.modified()?,
        len: meta.len(),
    };
    if w.seen == Some(stamp) {
        return Ok(false);
    }
    // Remember the stamp even if the content is bad: a broken file is
    // retried when it changes again, not every poll.
    w.seen = Some(stamp);
    let bytes = tokio::fs::read(&w.path).await?;
    let der = parse_crl_file(&bytes)?;
    store.update(|s| s.with_crl(&w.ca_id, der))?;
    Ok(true)
}

/// PEM (`-----BEGIN X509 CRL-----`) or raw DER.
fn parse_crl_file(bytes: &[u8]) -> Result<CertificateRevocationListDer<'static>, CrlError> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::from_pem_slice(trimmed)
            .map_err(|e| CrlError::BadPem(e.to_string()))
    } else {
        Ok(CertificateRevocationListDer::from(bytes.to_vec()))
    }
}
