//! The libp2p request-response codec of `/fieldmesh/sync/1`: each message is a
//! 4-byte little-endian length followed by that many bytes of `wire` bincode.

use super::{SyncRequest, SyncResponse};
use crate::wire;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use std::io;

/// Largest request or response frame: the wire decode limit (a full batch fits with
/// room for its length prefixes).
pub const MAX_FRAME_BYTES: usize = wire::MAX_DECODE_BYTES;

/// The codec; stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sync frame too large",
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sync frame too large",
        ));
    }
    io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

/// Decodes a request frame body; typed error on bad input.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, wire::WireError> {
    wire::decode(bytes)
}

/// Decodes a response frame body; typed error on bad input.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, wire::WireError> {
    wire::decode(bytes)
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_request(&read_frame(io).await?).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_response(&read_frame(io).await?).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &wire::encode(&req).map_err(invalid)?).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &wire::encode(&res).map_err(invalid)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{Bound, Fingerprint, RangeFp};

    #[test]
    fn frames_round_trip_and_garbage_is_a_typed_error() {
        let req = SyncRequest::Reconcile {
            channel: "triage".into(),
            ranges: vec![RangeFp {
                lower: None,
                upper: Bound::max(),
                fingerprint: Fingerprint([3; 16]),
                count: 2,
            }],
        };
        let bytes = wire::encode(&req).unwrap();
        assert_eq!(decode_request(&bytes).unwrap(), req);
        assert!(decode_request(&[9, 9, 9, 9, 9]).is_err());
        assert!(decode_response(&[]).is_err());
        assert!(decode_request(&bytes[..bytes.len() - 1]).is_err());
    }

    #[tokio::test]
    async fn oversized_frame_header_is_refused_before_allocating() {
        let mut header = &((MAX_FRAME_BYTES as u32) + 1).to_le_bytes()[..];
        let err = read_frame(&mut header).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
