//! The frame codec: `u32` little-endian length, then a postcard body.
//!
//! Owns the only calls to postcard in Gatehouse (so the serialization format
//! can be reviewed and swapped in one place) and the frame size limit.
//! Must never: allocate before checking the announced length against
//! [`MAX_FRAME`], or leave a decoded frame's bytes in memory unzeroized (frames
//! can carry secrets).

use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

/// Hard maximum size of one frame body (8 MiB). Bigger frames are refused
/// before any allocation, and the connection that sent one is closed.
pub const MAX_FRAME: usize = 8 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("peer closed the connection")]
    Closed,
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as one frame with its length prefix, into a buffer of
/// exactly the right size (no reallocation leaves a partial copy behind);
/// the buffer is zeroized when dropped.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let malformed = |e: postcard::Error| FrameError::Malformed(e.to_string());
    let len: usize = postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(malformed)?;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let mut frame = Zeroizing::new(vec![0u8; 4 + len]);
    frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
    postcard::to_slice(msg, &mut frame[4..]).map_err(malformed)?;
    Ok(frame)
}

/// Decodes one frame body. Trailing bytes are an error: a frame is exactly one message.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Parses a length prefix, refusing sizes over the limit.
pub fn check_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Reads one frame and decodes it.
pub async fn read_frame<T, R>(r: &mut R) -> Result<T, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = check_len(prefix)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Malformed(format!("truncated frame: expected {len} bytes"))
        } else {
            FrameError::Io(e)
        }
    })?;
    decode(&body)
}

/// Encodes and writes one frame (prefix and body in one write).
pub async fn write_frame<T, W>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let frame = encode_frame(msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roundtrip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, &("hello".to_string(), 7u32))
            .await
            .unwrap();
        let got: (String, u32) = read_frame(&mut b).await.unwrap();
        assert_eq!(got, ("hello".to_string(), 7));
    }

    #[tokio::test]
    async fn oversized_prefix_refused_before_reading_body() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
        let err = read_frame::<u32, _>(&mut b).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, .. } if len == u32::MAX as usize));
    }

    #[tokio::test]
    async fn truncated_body_is_malformed() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_le_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        let err = read_frame::<u32, _>(&mut b).await.unwrap_err();
        assert!(
            matches!(err, FrameError::Malformed(ref m) if m.contains("truncated")),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_refused() {
        let mut body = postcard::to_stdvec(&5u32).unwrap();
        body.push(0);
        assert!(matches!(
            decode::<u32>(&body),
            Err(FrameError::Malformed(_))
        ));
    }
}
