//! Node identity: the ed25519 keypair created on first start and kept in the data
//! directory with mode 0600. Its public key is the author key in every envelope and
//! its libp2p peer id names the node on the mesh.

use libp2p::identity::{ed25519, Keypair, PeerId};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the key inside the data dir.
pub const KEY_FILE: &str = "identity.key";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("identity key file {path}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not 32 bytes of ed25519 secret key.
    #[error("identity key file {path} is not a 32-byte ed25519 secret key")]
    BadKey {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is readable by others: refuse to use a possibly leaked key.
    #[error("identity key file {path} has mode {mode:o}; it must be 0600")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// The node's signing identity.
#[derive(Clone)]
pub struct Identity {
    key: ed25519::Keypair,
}

impl Identity {
    /// Loads the key from `data_dir`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(IdentityError::Permissions { path, mode });
                }
                let secret = ed25519::SecretKey::try_from_bytes(bytes)
                    .map_err(|_| IdentityError::BadKey { path: path.clone() })?;
                Ok(Identity {
                    key: ed25519::Keypair::from(secret),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ed25519::Keypair::generate();
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(key.secret().as_ref()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Identity { key })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Reads an existing key without creating one (for `fieldmesh id`).
    pub fn load(data_dir: &Path) -> Result<Identity, IdentityError> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            return Err(IdentityError::Io {
                path,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        Identity::load_or_create(data_dir)
    }

    /// The ed25519 keypair used to sign envelopes.
    pub fn signing_key(&self) -> &ed25519::Keypair {
        &self.key
    }

    /// The libp2p keypair for the swarm.
    pub fn libp2p_keypair(&self) -> Keypair {
        Keypair::from(self.key.clone())
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.libp2p_keypair().public().to_peer_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
    }

    #[test]
    fn refuses_a_world_readable_or_malformed_key() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::Permissions { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::BadKey { .. })
        ));
    }
}
