//! Node identity and its secrets at rest: the ed25519 identity key and the store's
//! data key live in a passphrase-protected vault file in the data dir (argon2id +
//! AES-256-GCM, `proto/at-rest.md`), created on first start with mode 0600. The peer
//! id is also written in clear to `peer-id` so `fieldmesh id` works without the
//! passphrase. A node started with no passphrase uses drill mode: an empty
//! passphrase with fast key derivation — encrypted, but not protected.

use crate::crypto::at_rest::{self, KdfParams, Key, VaultError, VaultKey};
use libp2p::identity::{ed25519, Keypair, PeerId};
use serde::{Deserialize, Serialize};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The vault file inside the data dir.
pub const VAULT_FILE: &str = "vault";
/// The peer id, in clear, inside the data dir.
pub const PEER_ID_FILE: &str = "peer-id";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing a file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The passphrase does not open the vault (or the vault was altered).
    #[error("wrong passphrase for {path} (nothing was changed)")]
    WrongPassphrase {
        /// The vault file.
        path: PathBuf,
    },
    /// The vault file is not a fieldmesh vault, or its contents do not decode.
    #[error("vault {path} is damaged: {what}")]
    Damaged {
        /// The vault file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// There is no vault yet (the node never ran in this data dir).
    #[error("no identity in {0} (run `fieldmesh up` first)")]
    Missing(PathBuf),
}

/// What the vault holds, encoded with [`crate::wire`].
#[derive(Serialize, Deserialize)]
struct VaultContents {
    identity_seed: [u8; 32],
    data_key: [u8; 32],
    teams: Vec<TeamEntry>,
}

/// A team this node belongs to, as kept in the vault: what `team create` or `team
/// join` learnt. Later rosters, certificates and key updates travel as messages on
/// the team's `team` channel and are replayed from the store at start.
#[derive(Clone, Serialize, Deserialize)]
pub struct TeamEntry {
    /// Team id.
    pub id: [u8; 16],
    /// Display name.
    pub name: String,
    /// The admin's ed25519 public key.
    pub admin: [u8; 32],
    /// Epoch of `key`.
    pub epoch: u32,
    /// The team key of that epoch.
    pub key: [u8; 32],
    /// This node's join certificate (empty for the admin).
    #[serde(with = "serde_bytes")]
    pub join_cert: Vec<u8>,
}

/// How the user unlocks the vault.
#[derive(Clone)]
pub enum Passphrase {
    /// A real passphrase: argon2id with [`KdfParams::DEFAULT`].
    Given(Zeroizing<Vec<u8>>),
    /// Unattended drill mode: empty passphrase, [`KdfParams::FAST_INSECURE`]. The
    /// data is encrypted but anyone with the disk can open it.
    Drill,
}

impl Passphrase {
    fn bytes(&self) -> &[u8] {
        match self {
            Passphrase::Given(p) => p,
            Passphrase::Drill => b"",
        }
    }

    fn params(&self) -> KdfParams {
        match self {
            Passphrase::Given(_) => KdfParams::DEFAULT,
            Passphrase::Drill => KdfParams::FAST_INSECURE,
        }
    }
}

/// The node's signing identity.
#[derive(Clone)]
pub struct Identity {
    key: ed25519::Keypair,
}

/// An opened vault: the identity, the store's data key, and the vault key (kept to
/// rewrite the vault without asking for the passphrase again).
pub struct Unlocked {
    /// The node identity.
    pub identity: Identity,
    /// The key that seals message records in the store.
    pub data_key: Key,
    /// The derived vault key.
    pub vault_key: VaultKey,
    /// Teams this node belongs to.
    pub teams: Vec<TeamEntry>,
}

impl Unlocked {
    /// Rewrites the vault in `data_dir` with `self.teams` (no passphrase needed).
    pub fn save(&self, data_dir: &Path) -> Result<(), IdentityError> {
        let path = data_dir.join(VAULT_FILE);
        let contents = VaultContents {
            identity_seed: *crate::crypto::dm::seed_of(self.identity.signing_key()),
            data_key: *self.data_key.as_bytes(),
            teams: self.teams.clone(),
        };
        let encoded =
            Zeroizing::new(
                crate::wire::encode(&contents).map_err(|e| IdentityError::Damaged {
                    path: path.clone(),
                    what: e.to_string(),
                })?,
            );
        write_private(&path, &at_rest::vault_reseal(&self.vault_key, &encoded))
    }
}

impl Identity {
    /// Opens the vault in `data_dir`, creating it (and the identity) on first start.
    pub fn unlock_or_create(
        data_dir: &Path,
        passphrase: &Passphrase,
    ) -> Result<Unlocked, IdentityError> {
        let path = data_dir.join(VAULT_FILE);
        match std::fs::read(&path) {
            Ok(file) => Identity::open_vault(&path, &file, passphrase),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Identity::create(data_dir, passphrase)
            }
            Err(source) => Err(IdentityError::Io { path, source }),
        }
    }

    /// Opens an existing vault (for `unlock`); never creates one.
    pub fn unlock(data_dir: &Path, passphrase: &Passphrase) -> Result<Unlocked, IdentityError> {
        let path = data_dir.join(VAULT_FILE);
        match std::fs::read(&path) {
            Ok(file) => Identity::open_vault(&path, &file, passphrase),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(IdentityError::Missing(data_dir.to_owned()))
            }
            Err(source) => Err(IdentityError::Io { path, source }),
        }
    }

    fn open_vault(
        path: &Path,
        file: &[u8],
        passphrase: &Passphrase,
    ) -> Result<Unlocked, IdentityError> {
        let (contents, vault_key) =
            at_rest::vault_open(file, passphrase.bytes()).map_err(|e| match e {
                VaultError::WrongPassphrase => IdentityError::WrongPassphrase {
                    path: path.to_owned(),
                },
                other => IdentityError::Damaged {
                    path: path.to_owned(),
                    what: other.to_string(),
                },
            })?;
        let contents: VaultContents =
            crate::wire::decode(&contents).map_err(|e| IdentityError::Damaged {
                path: path.to_owned(),
                what: e.to_string(),
            })?;
        let secret = ed25519::SecretKey::try_from_bytes(contents.identity_seed).map_err(|_| {
            IdentityError::Damaged {
                path: path.to_owned(),
                what: "identity key".into(),
            }
        })?;
        Ok(Unlocked {
            identity: Identity {
                key: ed25519::Keypair::from(secret),
            },
            data_key: Key::from_bytes(contents.data_key),
            vault_key,
            teams: contents.teams,
        })
    }

    fn create(data_dir: &Path, passphrase: &Passphrase) -> Result<Unlocked, IdentityError> {
        let path = data_dir.join(VAULT_FILE);
        let key = ed25519::Keypair::generate();
        let data_key = Key::random();
        let contents = VaultContents {
            identity_seed: *crate::crypto::dm::seed_of(&key),
            data_key: *data_key.as_bytes(),
            teams: Vec::new(),
        };
        let encoded =
            Zeroizing::new(
                crate::wire::encode(&contents).map_err(|e| IdentityError::Damaged {
                    path: path.clone(),
                    what: e.to_string(),
                })?,
            );
        let (file, vault_key) =
            at_rest::vault_create(passphrase.bytes(), &passphrase.params(), &encoded).map_err(
                |e| IdentityError::Damaged {
                    path: path.clone(),
                    what: e.to_string(),
                },
            )?;
        write_private(&path, &file)?;
        let identity = Identity { key };
        write_private(
            &data_dir.join(PEER_ID_FILE),
            identity.peer_id().to_string().as_bytes(),
        )?;
        Ok(Unlocked {
            identity,
            data_key,
            vault_key,
            teams: Vec::new(),
        })
    }

    /// The peer id recorded in `data_dir` (no passphrase needed).
    pub fn peer_id_of(data_dir: &Path) -> Result<PeerId, IdentityError> {
        let path = data_dir.join(PEER_ID_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|_| IdentityError::Missing(data_dir.to_owned()))?;
        text.trim().parse().map_err(|_| IdentityError::Damaged {
            path,
            what: "not a peer id".into(),
        })
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

    /// A fresh identity that lives only in memory (benchmarks, tests).
    pub fn ephemeral() -> Identity {
        Identity {
            key: ed25519::Keypair::generate(),
        }
    }
}

/// Writes `bytes` to a temp file (mode 0600), syncs it and renames it over `path`,
/// so a crash never leaves a half-written file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let io = |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    // Elsewhere the file keeps the default permissions of its directory.
    #[cfg(unix)]
    opts.mode(0o600);
    let mut file = opts.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn pass(p: &str) -> Passphrase {
        Passphrase::Given(Zeroizing::new(p.as_bytes().to_vec()))
    }

    #[test]
    fn vault_is_created_once_with_mode_0600_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::unlock_or_create(dir.path(), &Passphrase::Drill).unwrap();
        let mode = std::fs::metadata(dir.path().join(VAULT_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Identity::unlock_or_create(dir.path(), &Passphrase::Drill).unwrap();
        assert_eq!(a.identity.peer_id(), b.identity.peer_id());
        assert_eq!(a.data_key.as_bytes(), b.data_key.as_bytes());
        assert_eq!(
            Identity::peer_id_of(dir.path()).unwrap(),
            a.identity.peer_id()
        );
    }

    #[test]
    fn wrong_passphrase_is_a_clear_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // FAST params keep the test quick: create with drill mode, then a wrong one.
        Identity::unlock_or_create(dir.path(), &Passphrase::Drill).unwrap();
        let before = std::fs::read(dir.path().join(VAULT_FILE)).unwrap();
        let err = Identity::unlock(dir.path(), &pass("not it")).err().unwrap();
        assert!(
            matches!(err, IdentityError::WrongPassphrase { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("wrong passphrase"));
        assert_eq!(std::fs::read(dir.path().join(VAULT_FILE)).unwrap(), before);
    }

    #[test]
    fn a_damaged_vault_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(VAULT_FILE), b"garbage").unwrap();
        let err = Identity::unlock_or_create(dir.path(), &Passphrase::Drill)
            .err()
            .unwrap();
        assert!(matches!(err, IdentityError::Damaged { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join(VAULT_FILE)).unwrap(),
            b"garbage"
        );
        assert!(matches!(
            Identity::unlock(&dir.path().join("x"), &Passphrase::Drill),
            Err(IdentityError::Missing(_))
        ));
    }
}
