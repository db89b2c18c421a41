//! Writes `fuzz/regressions/envelope/batch-accepts-torsion-signature`: an envelope whose
//! signature fails single verification but passes ed25519-dalek's `verify_batch` when it
//! appears twice in one batch. Before 8cbd6cb, `Envelope::decode` refused it
//! (`BadSignature`) while `Envelope::decode_batch` accepted it.
//!
//! The author (here the test key, seed `[7; 32]`) signs honestly except that the nonce
//! point is `R = r·B + T`, with `T` the point of order 2. Single verification recomputes
//! `s·B − k·A = r·B` and compares it with `R`: no match. The batch equation
//! `Σ zᵢ(sᵢ·B − Rᵢ − kᵢ·Aᵢ) = −(Σ zᵢ)·T` is the identity whenever `Σ zᵢ` is even, so
//! about one try in two passes; the generator varies the body until one does. A peer
//! choosing the envelopes of a sync `Envelopes` reply or a `Push` controls the batch.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example batch_torsion
//! ```

use anyhow::Context;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::traits::IsIdentity;
use curve25519_dalek::Scalar;
use ed25519_dalek::SigningKey;
use fieldmesh::gossip::envelope::{ChannelName, Draft, Envelope, SIGNING_DOMAIN};
use fieldmesh::gossip::priority::Priority;
use libp2p::identity::ed25519;
use sha2::{Digest, Sha512};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let seed = [7u8; 32];
    let key = ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes(seed)?);
    let a = SigningKey::from_bytes(&seed).to_scalar();
    let a_bytes = key.public().to_bytes();
    // EIGHT_TORSION[4] is (0, −1), the point of order 2.
    let t = EIGHT_TORSION[4];
    anyhow::ensure!(
        !t.is_identity() && (t + t).is_identity(),
        "point of order 2"
    );
    for attempt in 0u32..64 {
        let draft = Draft {
            channel: ChannelName::new("triage")?,
            created_at_ms: 1_800_000_000_000,
            ttl: Duration::from_secs(60),
            hop_limit: 16,
            priority: Priority::P1,
            body: format!("torsion {attempt}").into_bytes(),
        };
        let honest = Envelope::sign(draft, &key)?;
        let bytes = honest.as_bytes();
        let signed = &bytes[..bytes.len() - 65];
        let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(attempt.to_le_bytes()).into());
        let big_r = (r * ED25519_BASEPOINT_POINT + t).compress();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(a_bytes)
                .chain_update(SIGNING_DOMAIN)
                .chain_update(signed)
                .finalize()
                .into(),
        );
        let s = r + k * a;
        let mut forged = signed.to_vec();
        forged.extend_from_slice(big_r.as_bytes());
        forged.extend_from_slice(s.as_bytes());
        forged.push(0);
        // Checked with ed25519-dalek directly, so the generator still works once
        // `Envelope` no longer lets the two disagree.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&a_bytes)?;
        let msg = [SIGNING_DOMAIN, signed].concat();
        let sig = ed25519_dalek::Signature::from_slice(&forged[signed.len()..signed.len() + 64])?;
        anyhow::ensure!(
            vk.verify_strict(&msg, &sig).is_err()
                && ed25519_dalek::Verifier::verify(&vk, &msg, &sig).is_err(),
            "single verification should refuse a torsion nonce"
        );
        let batch_ok = ed25519_dalek::verify_batch(&[&msg, &msg], &[sig, sig], &[vk, vk]).is_ok();
        if batch_ok {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions/envelope");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("batch-accepts-torsion-signature");
            std::fs::write(&path, &forged).with_context(|| path.display().to_string())?;
            println!(
                "attempt {attempt}: single check refuses, batch of two accepts; wrote {}",
                path.display()
            );
            return Ok(());
        }
        println!("attempt {attempt}: batch refused too (odd z sum), next");
    }
    anyhow::bail!("no attempt passed the batch check")
}
