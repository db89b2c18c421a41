//! Gossip envelope decoder (`proto/envelope.md`): bytes from any peer, via gossip or
//! a sync `Push`/`Envelopes` batch. Checks that the single and batched decoders agree,
//! that a decoded envelope keeps its exact bytes and id, and that the undecoded relay
//! path (`relay_raw`) matches the decoded one.
#![no_main]

use fieldmesh::gossip::envelope::{id_of_bytes, relay_raw, Envelope, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let decoded = Envelope::decode(data, &limits);
    let relayed = relay_raw(data);
    let gossip_id = fieldmesh::gossip::message_id(data);
    assert_eq!(gossip_id.0.len(), 33);
    assert_eq!(gossip_id.0[..32], id_of_bytes(data).0);

    if let Ok(env) = &decoded {
        assert_eq!(env.as_bytes(), data);
        assert_eq!(env.id, id_of_bytes(data));
        assert!(env.hops < env.hop_limit);
        assert!(env.body.len() <= limits.max_body_bytes);
        assert_eq!(relayed, env.relay_bytes());
        // Bytes already validated must decode the same without the signature check.
        assert_eq!(Envelope::decode_stored(data).as_ref(), Ok(env));
        if let Some(next) = env.relay_bytes() {
            let again = Envelope::decode(&next, &limits).expect("relayed copy decodes");
            assert_eq!(again.id, env.id);
            assert_eq!(again.hops, env.hops + 1);
        }
    }

    // The batched decoder (one batched signature check) must agree with `decode`
    // element by element: on an all-good batch, and on a mixed batch that forces the
    // one-by-one fallback (a copy with a flipped signature byte, plus chunks of the input).
    let mut flipped = data.to_vec();
    if flipped.len() >= 2 {
        let at = flipped.len() - 2; // last signature byte
        flipped[at] ^= 0x01;
    }
    let step = (data.len() / 3).max(1);
    let mut mixed: Vec<Vec<u8>> = vec![data.to_vec(), flipped];
    mixed.extend(data.chunks(step).map(<[u8]>::to_vec));
    mixed.push(data.to_vec());
    for batch in [vec![data.to_vec(), data.to_vec()], mixed] {
        let results = Envelope::decode_batch(&batch, &limits);
        assert_eq!(results.len(), batch.len());
        for (bytes, got) in batch.iter().zip(&results) {
            assert_eq!(
                got,
                &Envelope::decode(bytes, &limits),
                "decode_batch != decode"
            );
        }
    }
});
