//! The server's certificate and key (`--tls-cert`, `--tls-key`), read from PEM files
//! and read again when they change.
//!
//! Handshakes take the pair [`Certificates`] holds now, so a new pair reaches new
//! connections at once and leaves those already open alone. The files are looked at
//! every [`RELOAD_CHECK`]; a change is loaded once both files have stayed as they are
//! for one more look, so a certificate written a moment before its key is not paired
//! with the old key. A pair that does not load is logged and the old one kept, until
//! the files change again.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the certificate files are looked at: a renewed certificate is served
/// within two looks, and a look is two `stat` calls.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Where the certificate and its key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate, then any intermediates, in PEM.
    pub cert: PathBuf,
    /// Its private key in PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Why a certificate and key could not be used. Each names the file to fix.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no `BEGIN CERTIFICATE` block; --tls-cert takes the certificate (and its chain) in PEM", .0.display())]
    NoCertificate(PathBuf),
    #[error("{}: no private key (`BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`); --tls-key takes the certificate's key in PEM", .0.display())]
    NoKey(PathBuf),
    #[error("{}: not valid PEM: {why}", .path.display())]
    Pem { path: PathBuf, why: String },
    #[error("{}: the key cannot sign: {why}", .path.display())]
    Key { path: PathBuf, why: String },
    #[error("{} is not the private key of the certificate in {}", .key.display(), .cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: the certificate cannot be used: {why}", .path.display())]
    Certificate { path: PathBuf, why: String },
}

/// The pair handshakes are served with, swapped whole when the files change.
pub struct Certificates {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// How the files looked just before they were first read.
    first: (Stamp, Stamp),
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Loads the pair in `files`, or says what is wrong with it.
    pub fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, CertError> {
        let first = stamps(&files);
        let current = load_pair(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: RwLock::new(Arc::new(current)),
            first,
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The pair served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // Only whole `Arc`s are ever stored, so a panic while it was held left one.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn replace(&self, pair: CertifiedKey) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
    }

    /// Looks at the files every [`RELOAD_CHECK`] and loads them again once they have
    /// changed and settled (see the module docs). Runs until aborted.
    pub async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(RELOAD_CHECK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What the pair served now was read from, and what the last look saw.
        let mut loaded = self.first;
        let mut seen = loaded;
        loop {
            ticks.tick().await;
            let now = stamps(&self.files);
            let settled = now == seen;
            seen = now;
            if now == loaded || !settled {
                continue;
            }
            loaded = now;
            let this = self.clone();
            let reloaded =
                tokio::task::spawn_blocking(move || load_pair(&this.files, &this.provider)).await;
            match reloaded {
                Ok(Ok(pair)) => {
                    self.replace(pair);
                    tracing::info!(cert = %self.files.cert.display(), key = %self.files.key.display(),
                        "TLS certificate reloaded; new connections get it");
                }
                Ok(Err(error)) => tracing::error!(%error,
                    "the changed TLS certificate files could not be loaded; still serving the previous certificate"),
                Err(error) => tracing::error!(%error, "loading the TLS certificate files failed"),
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// What a look at a file sees: when it was last written, its length and its inode
/// (a file replaced by a rename is a new inode). `None` for a file that is not there.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    // Through symbolic links, so a link switched to a new file (as Kubernetes updates
    // a mounted secret) is a change.
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

fn stamps(files: &TlsFiles) -> (Stamp, Stamp) {
    (stamp(&files.cert), stamp(&files.key))
}

/// Reads `files` and checks that the key is the certificate's.
pub fn load_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let pem_error = |path: &Path, error: pem::Error| CertError::Pem {
        path: path.to_owned(),
        why: error.to_string(),
    };
    let (cert, key) = (&files.cert, &files.key);
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(cert, error))?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate(cert.clone()));
    }
    let private = match PrivateKeyDer::from_pem_slice(&read(key)?) {
        Ok(private) => private,
        Err(pem::Error::NoItemsFound) => return Err(CertError::NoKey(key.clone())),
        Err(error) => return Err(pem_error(key, error)),
    };
    let signer = provider
        .key_provider
        .load_private_key(private)
        .map_err(|error| CertError::Key {
            path: key.clone(),
            why: error.to_string(),
        })?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(CertError::Mismatch {
            cert: cert.clone(),
            key: key.clone(),
        }),
        Err(error) => Err(CertError::Certificate {
            path: cert.clone(),
            why: error.to_string(),
        }),
    }
}
