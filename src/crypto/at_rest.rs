//! Passphrase protection of data at rest (`proto/at-rest.md`): argon2id turns a
//! passphrase into an AES-256 key, AES-256-GCM seals the data, and the vault format
//! ties the two together in one self-describing file image.
//!
//! Pure: the caller reads and writes the file. [`vault_reseal`] lets a node that is
//! already unlocked rewrite its vault without asking for the passphrase again.

use super::CryptoError;
use crate::wire;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// AES-GCM nonce length: 96 bits, random per seal.
pub const NONCE_LEN: usize = 12;
/// AES-GCM authentication tag length.
pub const TAG_LEN: usize = 16;
/// Bytes [`seal`] adds to the plaintext: nonce in front, tag behind.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Argon2 salt length in a vault header.
pub const SALT_LEN: usize = 16;
/// First bytes of every vault file.
pub const VAULT_MAGIC: [u8; 8] = *b"FMVAULT1";
/// Vault header length: magic, three `u32` parameters, salt.
pub const VAULT_HEADER_LEN: usize = 8 + 3 * 4 + SALT_LEN;

/// Largest argon2 memory a vault may ask for (4 GiB in KiB). A tampered header can
/// make unlocking slow and memory-hungry, but never unbounded.
pub const MAX_M_KIB: u32 = 4 * 1024 * 1024;
/// Largest argon2 pass count a vault may ask for.
pub const MAX_T_COST: u32 = 64;
/// Largest argon2 lane count a vault may ask for (lanes run one after another here).
pub const MAX_P_COST: u32 = 16;

/// Argon2id cost parameters. Stored in the vault header so that a vault opens with the
/// parameters it was made with, whatever the current default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB. At least `8 × p_cost`, at most [`MAX_M_KIB`].
    pub m_kib: u32,
    /// Passes over the memory, 1 ..= [`MAX_T_COST`].
    pub t_cost: u32,
    /// Lanes, 1 ..= [`MAX_P_COST`].
    pub p_cost: u32,
}

impl KdfParams {
    /// Production parameters: argon2id, 64 MiB, 3 passes, 1 lane (the OWASP-style
    /// "second recommended" setting; under a second on a field laptop).
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// **Insecure.** 64 KiB, 1 pass: for tests and drills only, where the passphrase
    /// is empty, so no KDF cost could resist a guess. Never for real data. (It was
    /// 8 MiB: freeing that made glibc keep every later large zeroed allocation on
    /// its heap, resident; README, Performance.)
    pub const FAST_INSECURE: KdfParams = KdfParams {
        m_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// Whether the parameters are inside the range this node will run.
    pub fn in_range(&self) -> bool {
        (1..=MAX_P_COST).contains(&self.p_cost)
            && (1..=MAX_T_COST).contains(&self.t_cost)
            && self.m_kib >= 8 * self.p_cost
            && self.m_kib <= MAX_M_KIB
    }
}

/// A 256-bit symmetric key. Zeroized on drop; `Debug` shows nothing of it. No
/// `PartialEq`: comparing secrets byte by byte would leak timing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 32]);

impl Key {
    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Key {
        let mut key = Key([0; 32]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps raw key bytes, for example a data key kept inside a vault.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Derives a key from a passphrase with argon2id (version 0x13), 32-byte output.
/// Refuses parameters outside [`KdfParams::in_range`] with [`CryptoError::Kdf`].
pub fn derive_key(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    params: &KdfParams,
) -> Result<Key, CryptoError> {
    if !params.in_range() {
        return Err(CryptoError::Kdf);
    }
    let argon_params = argon2::Params::new(params.m_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|_| CryptoError::Kdf)?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut key = Key([0; 32]);
    argon
        .hash_password_into(passphrase, salt, &mut key.0)
        .map_err(|_| CryptoError::Kdf)?;
    Ok(key)
}

/// AES-256-GCM with a random 96-bit nonce. Output: nonce ‖ ciphertext ‖ tag.
///
/// Random nonces are safe for up to about 2³² seals under one key; every key in
/// fieldmesh is either per vault or per (team key, team, channel).
///
/// # Panics
/// Only if `plaintext` exceeds AES-GCM's limit of 64 GiB, which no fieldmesh
/// value approaches (decoders cap values at 1 MiB).
pub fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    seal_with_nonce(key, &nonce, aad, plaintext)
}

/// [`seal`] with a caller-chosen nonce. Private to the crate: a repeated nonce under
/// one key loses both confidentiality and integrity. Golden vectors use it.
pub(crate) fn seal_with_nonce(
    key: &Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&key.0.into());
    let ct = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("invariant: plaintexts are far below AES-GCM's 64 GiB limit");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens what [`seal`] produced with the same key and associated data.
pub fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Truncated { len: sealed.len() });
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    Aes256Gcm::new(&key.0.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)
}

/// The vault header, in file order (`proto/at-rest.md` §2). bincode with fixed-width
/// integers writes it as exactly [`VAULT_HEADER_LEN`] bytes, with no length prefixes.
#[derive(Serialize, Deserialize)]
struct VaultHeader {
    magic: [u8; 8],
    params: KdfParams,
    salt: [u8; SALT_LEN],
}

/// Why a vault file could not be created or opened.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    /// Not a vault this node will try to open: too short, wrong magic, or argon2
    /// parameters outside the accepted range (a hostile header cannot make the
    /// node allocate or spin without bound).
    #[error("malformed vault: {what}")]
    Malformed {
        /// Which check failed.
        what: &'static str,
    },
    /// The passphrase is wrong, or the file was altered. The two cannot be told apart.
    #[error("wrong passphrase or damaged vault")]
    WrongPassphrase,
    /// [`vault_create`] was given parameters outside [`KdfParams::in_range`].
    #[error("key derivation parameters out of range")]
    BadParams,
}

/// The unlocked state of a vault: the derived key and the header it belongs to.
/// Keep it in memory while the node runs to rewrite the vault with [`vault_reseal`].
#[derive(Clone)]
pub struct VaultKey {
    key: Key,
    params: KdfParams,
    header: [u8; VAULT_HEADER_LEN],
}

impl VaultKey {
    /// The argon2 parameters the vault was made with.
    pub fn params(&self) -> KdfParams {
        self.params
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKey")
            .field("params", &self.params())
            .finish_non_exhaustive()
    }
}

/// Creates a vault image holding `contents`, with a fresh random salt. Returns the
/// file bytes and the key to rewrite it later. Runs argon2 once.
pub fn vault_create(
    passphrase: &[u8],
    params: &KdfParams,
    contents: &[u8],
) -> Result<(Vec<u8>, VaultKey), VaultError> {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let vault_key = unlock(passphrase, params, salt)?;
    Ok((vault_reseal(&vault_key, contents), vault_key))
}

/// Checks a vault image's framing without running argon2: the header decodes, has
/// the magic and argon2 parameters in range, and a sealed part at least as long as
/// the seal overhead follows. Returns the parameters and the sealed part.
pub fn vault_check(file: &[u8]) -> Result<(KdfParams, &[u8]), VaultError> {
    vault_parse(file).map(|(h, sealed)| (h.params, sealed))
}

fn vault_parse(file: &[u8]) -> Result<(VaultHeader, &[u8]), VaultError> {
    let header_bytes = file
        .get(..VAULT_HEADER_LEN)
        .ok_or(VaultError::Malformed { what: "too short" })?;
    let header: VaultHeader =
        wire::decode(header_bytes).map_err(|_| VaultError::Malformed { what: "header" })?;
    if header.magic != VAULT_MAGIC {
        return Err(VaultError::Malformed { what: "bad magic" });
    }
    if !header.params.in_range() {
        return Err(VaultError::Malformed {
            what: "argon2 parameters out of range",
        });
    }
    let sealed = &file[VAULT_HEADER_LEN..];
    if sealed.len() < SEAL_OVERHEAD {
        return Err(VaultError::Malformed { what: "too short" });
    }
    Ok((header, sealed))
}

/// Opens a vault image with the passphrase. Returns the contents (zeroized on drop)
/// and the key to rewrite the vault. Runs argon2 once, with the header's parameters,
/// after checking them against the accepted range.
pub fn vault_open(
    file: &[u8],
    passphrase: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, VaultKey), VaultError> {
    let (header, sealed) = vault_parse(file)?;
    let vault_key = unlock(passphrase, &header.params, header.salt).map_err(|e| match e {
        // in_range was checked above, so this is argon2 refusing something odd.
        VaultError::BadParams => VaultError::Malformed {
            what: "argon2 parameters refused",
        },
        other => other,
    })?;
    let contents =
        open(&vault_key.key, &vault_key.header, sealed).map_err(|_| VaultError::WrongPassphrase)?;
    Ok((Zeroizing::new(contents), vault_key))
}

/// Seals new contents under an unlocked vault's key: same header and salt, fresh
/// nonce. No passphrase and no argon2 run needed.
pub fn vault_reseal(key: &VaultKey, contents: &[u8]) -> Vec<u8> {
    reseal_with(key, contents, seal)
}

fn reseal_with(
    key: &VaultKey,
    contents: &[u8],
    seal_fn: impl FnOnce(&Key, &[u8], &[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let sealed = seal_fn(&key.key, &key.header, contents);
    let mut file = Vec::with_capacity(VAULT_HEADER_LEN + sealed.len());
    file.extend_from_slice(&key.header);
    file.extend_from_slice(&sealed);
    file
}

/// Derives the key and builds the header for `params` and `salt`.
fn unlock(
    passphrase: &[u8],
    params: &KdfParams,
    salt: [u8; SALT_LEN],
) -> Result<VaultKey, VaultError> {
    let key = derive_key(passphrase, &salt, params).map_err(|_| VaultError::BadParams)?;
    let header = VaultHeader {
        magic: VAULT_MAGIC,
        params: *params,
        salt,
    };
    let bytes = wire::encode(&header).map_err(|_| VaultError::BadParams)?;
    let header: [u8; VAULT_HEADER_LEN] = bytes
        .try_into()
        .map_err(|_| VaultError::Malformed { what: "header" })?;
    Ok(VaultKey {
        key,
        params: *params,
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PASS: &[u8] = b"correct horse battery staple";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The parameters of the golden vectors (`proto/at-rest.md` §5): the drill
    /// parameters before they dropped to 64 KiB.
    const GOLDEN_KDF: KdfParams = KdfParams {
        m_kib: 8 * 1024,
        t_cost: 1,
        p_cost: 1,
    };

    /// A vault with fixed salt and nonce, for the golden vector.
    fn fixed_vault() -> Vec<u8> {
        let vk = unlock(PASS, &GOLDEN_KDF, [0x11; SALT_LEN]).unwrap();
        reseal_with(&vk, b"fieldmesh", |k, aad, pt| {
            seal_with_nonce(k, &[0x22; NONCE_LEN], aad, pt)
        })
    }

    /// Worked example in proto/at-rest.md §5; cross-checked against Python
    /// `cryptography` (Argon2id + AESGCM) when it was written.
    const GOLDEN_VAULT: &str = concat!(
        "464d5641554c5431",
        "00200000",
        "01000000",
        "01000000",
        "11111111111111111111111111111111",
        "222222222222222222222222",
        "b3565a9793c7c69df0c7bdeef806bbf24633796cefd35a09d4"
    );

    #[test]
    fn vault_golden_vector_matches_proto() {
        let file = fixed_vault();
        assert_eq!(hex(&file), GOLDEN_VAULT);
        let (contents, _) = vault_open(&file, PASS).unwrap();
        assert_eq!(&contents[..], b"fieldmesh");
    }

    #[test]
    fn vault_round_trips_and_reseals_without_the_passphrase() {
        let (file, vk) = vault_create(PASS, &KdfParams::FAST_INSECURE, b"team keys").unwrap();
        assert_eq!(&file[..8], b"FMVAULT1");
        let (contents, vk2) = vault_open(&file, PASS).unwrap();
        assert_eq!(&contents[..], b"team keys");
        assert_eq!(vk2.params(), KdfParams::FAST_INSECURE);

        let again = vault_reseal(&vk, b"more team keys");
        assert_eq!(again[..VAULT_HEADER_LEN], file[..VAULT_HEADER_LEN]);
        assert_ne!(
            again[VAULT_HEADER_LEN..VAULT_HEADER_LEN + NONCE_LEN],
            file[VAULT_HEADER_LEN..VAULT_HEADER_LEN + NONCE_LEN],
            "a reseal uses a fresh nonce"
        );
        let (contents, _) = vault_open(&again, PASS).unwrap();
        assert_eq!(&contents[..], b"more team keys");
    }

    #[test]
    fn wrong_passphrase_is_refused() {
        let (file, _) = vault_create(PASS, &KdfParams::FAST_INSECURE, b"x").unwrap();
        assert_eq!(
            vault_open(&file, b"Correct horse battery staple").unwrap_err(),
            VaultError::WrongPassphrase
        );
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let file = fixed_vault();
        // Salt, a ciphertext byte, the tag: all authenticated.
        for at in [
            VAULT_HEADER_LEN - 1,
            VAULT_HEADER_LEN + NONCE_LEN,
            file.len() - 1,
        ] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            assert_eq!(
                vault_open(&bad, PASS).unwrap_err(),
                VaultError::WrongPassphrase
            );
        }
        // t_cost 1 -> 2 is in range, so argon2 runs and the key differs.
        let mut bad = file.clone();
        bad[12] = 2;
        assert_eq!(
            vault_open(&bad, PASS).unwrap_err(),
            VaultError::WrongPassphrase
        );
    }

    #[test]
    fn malformed_headers_are_refused_before_argon2_runs() {
        let file = fixed_vault();
        let mut bad_magic = file.clone();
        bad_magic[7] = b'2';
        let mut huge_memory = file.clone();
        huge_memory[8..12].copy_from_slice(&(MAX_M_KIB + 1).to_le_bytes());
        let mut many_passes = file.clone();
        many_passes[12..16].copy_from_slice(&(MAX_T_COST + 1).to_le_bytes());
        let mut no_lanes = file.clone();
        no_lanes[16..20].copy_from_slice(&0u32.to_le_bytes());
        let mut tiny_memory = file.clone();
        tiny_memory[8..12].copy_from_slice(&7u32.to_le_bytes());
        for bad in [
            &bad_magic[..],
            &huge_memory,
            &many_passes,
            &no_lanes,
            &tiny_memory,
            &file[..VAULT_HEADER_LEN - 1],
            &file[..VAULT_HEADER_LEN + SEAL_OVERHEAD - 1],
            &[],
        ] {
            assert!(
                matches!(vault_open(bad, PASS), Err(VaultError::Malformed { .. })),
                "{}",
                hex(bad)
            );
        }
    }

    #[test]
    fn create_refuses_out_of_range_params() {
        let bad = KdfParams {
            m_kib: 8,
            t_cost: 0,
            p_cost: 1,
        };
        assert_eq!(
            vault_create(PASS, &bad, b"").unwrap_err(),
            VaultError::BadParams
        );
    }

    #[test]
    fn default_params_are_the_documented_ones() {
        assert_eq!(
            KdfParams::DEFAULT,
            KdfParams {
                m_kib: 65536,
                t_cost: 3,
                p_cost: 1
            }
        );
        assert!(KdfParams::DEFAULT.in_range() && KdfParams::FAST_INSECURE.in_range());
    }

    #[test]
    fn derive_key_is_deterministic_and_salted() {
        let p = KdfParams::FAST_INSECURE;
        let a = derive_key(PASS, &[1; SALT_LEN], &p).unwrap();
        let same = derive_key(PASS, &[1; SALT_LEN], &p).unwrap();
        let other_salt = derive_key(PASS, &[2; SALT_LEN], &p).unwrap();
        assert_eq!(a.as_bytes(), same.as_bytes());
        assert_ne!(a.as_bytes(), other_salt.as_bytes());
    }

    #[test]
    fn seal_refuses_truncation_and_wrong_aad() {
        let key = Key::random();
        let sealed = seal(&key, b"aad", b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&key, b"aad", &sealed).unwrap(), b"hello");
        assert_eq!(open(&key, b"other", &sealed), Err(CryptoError::Decrypt));
        assert_eq!(
            open(&key, b"aad", &sealed[..SEAL_OVERHEAD - 1]),
            Err(CryptoError::Truncated {
                len: SEAL_OVERHEAD - 1
            })
        );
        assert_eq!(
            open(&Key::random(), b"aad", &sealed),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn debug_output_hides_key_material() {
        let key = Key::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "Key(..)");
        let vk = unlock(PASS, &KdfParams::FAST_INSECURE, [0; SALT_LEN]).unwrap();
        assert_eq!(
            format!("{vk:?}"),
            "VaultKey { params: KdfParams { m_kib: 64, t_cost: 1, p_cost: 1 }, .. }"
        );
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(key in any::<[u8; 32]>(),
                                aad in proptest::collection::vec(any::<u8>(), 0..64),
                                pt in proptest::collection::vec(any::<u8>(), 0..512)) {
            let key = Key::from_bytes(key);
            let sealed = seal(&key, &aad, &pt);
            prop_assert_eq!(open(&key, &aad, &sealed).unwrap(), pt);
        }

        #[test]
        fn vault_open_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            // Random headers almost never pass the magic check, so argon2 rarely runs.
            let _ = vault_open(&bytes, PASS);
        }
    }
}
