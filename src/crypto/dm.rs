//! End-to-end direct messages (`proto/dm.md`): one-way Noise X from the sender's
//! static key to the recipient's, in a single message, so a DM can be sealed for a
//! recipient who is offline and carried by any relay.
//!
//! Node identities are ed25519; the Noise keys are their X25519 twins, derived the
//! way libsodium does (`crypto_sign_ed25519_{sk,pk}_to_curve25519`). The envelope
//! signature says who posted the bytes; [`open_dm`] also checks that the Noise
//! static key inside is that same author's, so nobody can re-post someone else's DM
//! under their own name.

use super::CryptoError;
use curve25519_dalek::edwards::CompressedEdwardsY;
use libp2p::identity::ed25519;
use sha2::{digest::generic_array::GenericArray, Digest, Sha512};
use zeroize::Zeroizing;

/// DM format version; the first byte of every sealed DM.
pub const VERSION: u8 = 1;
/// Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_X_25519_ChaChaPoly_BLAKE2s";
/// Noise prologue: binds the handshake to this use, so a Noise X message made for
/// another protocol never opens as a DM.
pub const PROLOGUE: &[u8] = b"fieldmesh/dm/v1";
/// Largest Noise message (the Noise specification's limit).
pub const NOISE_MAX_MSG_LEN: usize = 65_535;
/// Bytes the X handshake message adds to the payload: ephemeral key (32), encrypted
/// sender static key (32 + 16 tag), payload tag (16).
pub const NOISE_OVERHEAD: usize = 32 + 32 + 16 + 16;
/// Largest plaintext a DM can carry: 65 439 bytes.
pub const MAX_DM_PLAINTEXT: usize = NOISE_MAX_MSG_LEN - NOISE_OVERHEAD;
/// Largest sealed DM: version byte + the Noise message (65 536 bytes, exactly the
/// default envelope body cap).
pub const MAX_DM_LEN: usize = 1 + NOISE_MAX_MSG_LEN;
/// Smallest sealed DM (empty plaintext).
pub const MIN_DM_LEN: usize = 1 + NOISE_OVERHEAD;

/// The 32-byte ed25519 seed of a libp2p keypair (what the identity file holds),
/// zeroized on drop. Feed it to [`seal_dm`] and [`open_dm`].
pub fn seed_of(keypair: &ed25519::Keypair) -> Zeroizing<[u8; 32]> {
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(keypair.secret().as_ref());
    seed
}

/// The X25519 secret key of an ed25519 identity: the first half of SHA-512(seed),
/// clamped. The same scalar ed25519 signs with, as libsodium's
/// `crypto_sign_ed25519_sk_to_curve25519` computes it.
pub fn x25519_secret_from_ed25519_seed(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut digest = Zeroizing::new([0u8; 64]);
    let mut hasher = Sha512::new();
    hasher.update(seed);
    hasher.finalize_into(GenericArray::from_mut_slice(&mut digest[..]));
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&digest[..32]);
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    secret
}

/// The X25519 public key of an ed25519 public key: the Edwards point mapped to its
/// Montgomery u-coordinate (libsodium's `crypto_sign_ed25519_pk_to_curve25519`).
/// Refuses bytes that are not a canonical point encoding, and small-order points
/// (they would make every Diffie-Hellman result public).
pub fn x25519_public_from_ed25519(public: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or(CryptoError::BadPublicKey)?;
    if point.is_small_order() || point.compress().as_bytes() != public {
        return Err(CryptoError::BadPublicKey);
    }
    Ok(point.to_montgomery().to_bytes())
}

/// Seals `plaintext` for one recipient: version byte 1 ‖ the Noise X handshake
/// message carrying the payload. Only the recipient's identity key opens it; the
/// sender's key is authenticated inside.
pub fn seal_dm(
    sender_seed: &[u8; 32],
    recipient_ed25519_public: &[u8; 32],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal_inner(sender_seed, recipient_ed25519_public, plaintext, None)
}

/// [`seal_dm`] with a fixed Noise ephemeral key, for golden vectors only: a reused
/// ephemeral key reuses the message key.
#[cfg(test)]
pub(crate) fn seal_dm_fixed_ephemeral(
    sender_seed: &[u8; 32],
    recipient_ed25519_public: &[u8; 32],
    plaintext: &[u8],
    ephemeral: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    seal_inner(
        sender_seed,
        recipient_ed25519_public,
        plaintext,
        Some(ephemeral),
    )
}

fn seal_inner(
    sender_seed: &[u8; 32],
    recipient_ed25519_public: &[u8; 32],
    plaintext: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_DM_PLAINTEXT {
        return Err(CryptoError::TooLarge {
            len: plaintext.len(),
            max: MAX_DM_PLAINTEXT,
        });
    }
    let remote = x25519_public_from_ed25519(recipient_ed25519_public)?;
    let local = x25519_secret_from_ed25519_seed(sender_seed);
    let params = NOISE_PARAMS.parse().map_err(|_| CryptoError::Noise)?;
    let mut builder = snow::Builder::new(params)
        .local_private_key(&local[..])
        .and_then(|b| b.remote_public_key(&remote))
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(|_| CryptoError::Noise)?;
    if let Some(e) = ephemeral {
        builder = builder.fixed_ephemeral_key_for_testing_only(e);
    }
    let mut handshake = builder.build_initiator().map_err(|_| CryptoError::Noise)?;
    let mut out = vec![0u8; 1 + plaintext.len() + NOISE_OVERHEAD];
    out[0] = VERSION;
    let written = handshake
        .write_message(plaintext, &mut out[1..])
        .map_err(|_| CryptoError::Noise)?;
    out.truncate(1 + written);
    Ok(out)
}

/// Opens a DM addressed to `recipient_seed`'s identity and checks that it was sealed
/// by `author_ed25519_public` (the signer of the envelope that carried it).
///
/// Errors: [`CryptoError::Truncated`], [`CryptoError::UnknownVersion`],
/// [`CryptoError::TooLarge`], [`CryptoError::BadPublicKey`] (author key),
/// [`CryptoError::Decrypt`] (not for us, or altered) and
/// [`CryptoError::SenderMismatch`] (sealed by someone other than the author).
pub fn open_dm(
    recipient_seed: &[u8; 32],
    author_ed25519_public: &[u8; 32],
    bytes: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (&version, message) = bytes
        .split_first()
        .ok_or(CryptoError::Truncated { len: 0 })?;
    if version != VERSION {
        return Err(CryptoError::UnknownVersion { version });
    }
    if bytes.len() < MIN_DM_LEN {
        return Err(CryptoError::Truncated { len: bytes.len() });
    }
    if bytes.len() > MAX_DM_LEN {
        return Err(CryptoError::TooLarge {
            len: bytes.len(),
            max: MAX_DM_LEN,
        });
    }
    let expected_sender = x25519_public_from_ed25519(author_ed25519_public)?;
    let local = x25519_secret_from_ed25519_seed(recipient_seed);
    let params = NOISE_PARAMS.parse().map_err(|_| CryptoError::Noise)?;
    let mut handshake = snow::Builder::new(params)
        .local_private_key(&local[..])
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_responder())
        .map_err(|_| CryptoError::Noise)?;
    let mut plaintext = Zeroizing::new(vec![0u8; message.len()]);
    let read = handshake
        .read_message(message, &mut plaintext)
        .map_err(|_| CryptoError::Decrypt)?;
    // The payload only decrypts if the sender knew the private half of this static
    // key (the `ss` token), so comparing it with the author's key is the whole check.
    let sender = handshake.get_remote_static().ok_or(CryptoError::Decrypt)?;
    if sender != expected_sender {
        return Err(CryptoError::SenderMismatch);
    }
    Ok(plaintext[..read].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keypair(seed: u8) -> ed25519::Keypair {
        ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes([seed; 32]).unwrap())
    }

    fn public(seed: u8) -> [u8; 32] {
        keypair(seed).public().to_bytes()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn round_trips_between_two_identities() {
        let sealed = seal_dm(&[1; 32], &public(2), b"bay 4: need O2").unwrap();
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 14 + MIN_DM_LEN);
        assert_eq!(
            open_dm(&[2; 32], &public(1), &sealed).unwrap(),
            b"bay 4: need O2"
        );
    }

    #[test]
    fn a_third_party_cannot_open() {
        let sealed = seal_dm(&[1; 32], &public(2), b"secret").unwrap();
        assert_eq!(
            open_dm(&[3; 32], &public(1), &sealed),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn a_dm_reposted_under_another_author_is_refused() {
        let sealed = seal_dm(&[1; 32], &public(2), b"from 1").unwrap();
        assert_eq!(
            open_dm(&[2; 32], &public(3), &sealed),
            Err(CryptoError::SenderMismatch)
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let sealed = seal_dm(&[1; 32], &public(2), b"abc").unwrap();
        for at in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x40;
            assert!(open_dm(&[2; 32], &public(1), &bad).is_err(), "byte {at}");
        }
        let mut bad = sealed.clone();
        bad[0] = 2;
        assert_eq!(
            open_dm(&[2; 32], &public(1), &bad),
            Err(CryptoError::UnknownVersion { version: 2 })
        );
        assert_eq!(
            open_dm(&[2; 32], &public(1), &sealed[..MIN_DM_LEN - 1]),
            Err(CryptoError::Truncated {
                len: MIN_DM_LEN - 1
            })
        );
        assert_eq!(
            open_dm(&[2; 32], &public(1), &[]),
            Err(CryptoError::Truncated { len: 0 })
        );
    }

    #[test]
    fn size_limits_are_exact() {
        let max = vec![7u8; MAX_DM_PLAINTEXT];
        let sealed = seal_dm(&[1; 32], &public(2), &max).unwrap();
        assert_eq!(sealed.len(), MAX_DM_LEN);
        assert_eq!(open_dm(&[2; 32], &public(1), &sealed).unwrap(), max);
        assert_eq!(
            seal_dm(&[1; 32], &public(2), &[0; MAX_DM_PLAINTEXT + 1]),
            Err(CryptoError::TooLarge {
                len: MAX_DM_PLAINTEXT + 1,
                max: MAX_DM_PLAINTEXT
            })
        );
        let mut long = sealed;
        long.push(0);
        assert!(matches!(
            open_dm(&[2; 32], &public(1), &long),
            Err(CryptoError::TooLarge { .. })
        ));
    }

    #[test]
    fn conversion_matches_x25519_dalek() {
        for seed in [[0u8; 32], [1; 32], [0xfe; 32]] {
            let secret = x25519_secret_from_ed25519_seed(&seed);
            let from_secret =
                x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret));
            let ed_public = keypair(seed[0]).public().to_bytes();
            assert_eq!(
                x25519_public_from_ed25519(&ed_public).unwrap(),
                *from_secret.as_bytes()
            );
        }
    }

    #[test]
    fn conversion_matches_libsodium_known_answer() {
        // libsodium test/default/ed25519_convert.{c,exp}.
        let seed: [u8; 32] =
            unhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
                .try_into()
                .unwrap();
        let ed_public = ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes(seed).unwrap())
            .public()
            .to_bytes();
        assert_eq!(
            hex(&x25519_secret_from_ed25519_seed(&seed)[..]),
            "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166"
        );
        assert_eq!(
            hex(&x25519_public_from_ed25519(&ed_public).unwrap()),
            "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50"
        );
    }

    #[test]
    fn bad_public_keys_are_refused() {
        // Not on the curve (y = 2 has no x), the identity (small order), and a
        // non-canonical encoding of y = 1 (y + p).
        let mut not_on_curve = [0u8; 32];
        not_on_curve[0] = 2;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        for bad in [not_on_curve, identity, non_canonical] {
            assert_eq!(
                x25519_public_from_ed25519(&bad),
                Err(CryptoError::BadPublicKey),
                "{}",
                hex(&bad)
            );
            assert_eq!(
                seal_dm(&[1; 32], &bad, b"x"),
                Err(CryptoError::BadPublicKey)
            );
        }
    }

    #[test]
    fn seed_of_is_the_identity_seed() {
        assert_eq!(*seed_of(&keypair(9)), [9; 32]);
    }

    #[test]
    fn golden_vector_matches_proto() {
        let sealed =
            seal_dm_fixed_ephemeral(&[1; 32], &public(2), b"bay 4: need O2", &[3; 32]).unwrap();
        let golden = include_str!("../../proto/vectors/dm-v1.hex");
        assert_eq!(hex(&sealed), golden.split_whitespace().collect::<String>());
        assert_eq!(
            open_dm(&[2; 32], &public(1), &unhex(golden)).unwrap(),
            b"bay 4: need O2"
        );
    }

    proptest! {
        #[test]
        fn any_plaintext_round_trips(sender in any::<[u8; 32]>(), recipient in any::<[u8; 32]>(),
                                     pt in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let to = ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes(recipient).unwrap());
            let from = ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes(sender).unwrap());
            let sealed = seal_dm(&sender, &to.public().to_bytes(), &pt).unwrap();
            prop_assert_eq!(sealed.len(), pt.len() + MIN_DM_LEN);
            prop_assert_eq!(open_dm(&recipient, &from.public().to_bytes(), &sealed).unwrap(), pt);
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut dm = vec![VERSION];
            dm.extend_from_slice(&bytes);
            prop_assert!(open_dm(&[2; 32], &public(1), &dm).is_err());
        }
    }
}
