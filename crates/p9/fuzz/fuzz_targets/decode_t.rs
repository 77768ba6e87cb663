//! Arbitrary bytes as a T-message frame: the server's decoder never panics,
//! and whatever it accepts round-trips through the encoder.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use p9::wire::Tmessage;
use p9_fuzz::{check_round_trip, with_honest_size};

fuzz_target!(|data: &[u8]| {
    check_round_trip(data, Tmessage::decode, Tmessage::encode);
    if let Some(frame) = with_honest_size(data) {
        check_round_trip(&frame, Tmessage::decode, Tmessage::encode);
    }
});
