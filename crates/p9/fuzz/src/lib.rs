//! Checks shared by the p9 fuzz targets: a decoded frame must re-encode to
//! the same bytes, and a frame accepted under one msize must be accepted
//! unchanged under every larger one.
#![forbid(unsafe_code)]

use std::fmt::Debug;

use p9::server::{MAX_MSIZE, MIN_MSIZE};
use p9::wire::{WireError, HEADER_SIZE};

/// The msizes each input is decoded under, smallest first: the bare header,
/// the least either side negotiates, a common one and the server's largest.
pub const MSIZES: [u32; 4] = [HEADER_SIZE as u32, MIN_MSIZE, 8192, MAX_MSIZE];

/// `data` with its size field set to its length, so the fuzzer spends its
/// time in message bodies rather than on guessing the size; `None` if
/// `data` has no room for a size field.
pub fn with_honest_size(data: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(data.len()).ok()?;
    let mut frame = data.get(..4).map(|_| data.to_vec())?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    Some(frame)
}

/// A message type's strict decoder: `Tmessage::decode` or `Rmessage::decode`.
pub type Decoder<M> = fn(&[u8], u32) -> Result<(u16, M), WireError>;
/// A message type's encoder: `Tmessage::encode` or `Rmessage::encode`.
pub type Encoder<M> = fn(&M, u16) -> Result<Vec<u8>, WireError>;

/// Decodes `frame` under each of `MSIZES`; whatever decodes must re-encode
/// to exactly `frame` and decode again to the same message.
pub fn check_round_trip<M: PartialEq + Debug>(frame: &[u8], decode: Decoder<M>, encode: Encoder<M>) {
    let mut accepted: Option<(u32, (u16, M))> = None;
    for msize in MSIZES {
        match decode(frame, msize) {
            Ok((tag, msg)) => {
                let again = encode(&msg, tag).unwrap_or_else(|e| panic!("{msg:?} decoded but will not encode: {e}"));
                assert_eq!(again, frame, "{msg:?} re-encodes to different bytes");
                let redecoded = decode(&again, msize).expect("a re-encoded frame must decode");
                assert_eq!(redecoded, (tag, msg), "decode(encode(m)) != m");
                if let Some((smaller, earlier)) = &accepted {
                    assert_eq!(earlier, &redecoded, "decodes differently under msize {smaller} and {msize}");
                }
                accepted = Some((msize, redecoded));
            }
            Err(e) => {
                if let Some((smaller, _)) = &accepted {
                    panic!("accepted under msize {smaller} but refused under {msize}: {e}");
                }
            }
        }
    }
}
