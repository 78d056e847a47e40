//! Fuzzes the frame decoders: whole-frame decoding (WebSocket) and the length-prefixed
//! stream decoder fed in the chunk sizes the input's first byte chooses (TCP).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use magpie_proto::codec::{decode_frame, decode_prefixed};

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame(data, 64 * 1024);
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decode_prefixed(&mut buf, 64 * 1024) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
