//! Arbitrary bytes as an R-message frame: the client's decoder never panics,
//! and whatever it accepts round-trips through the encoder.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use p9::wire::Rmessage;
use p9_fuzz::{check_round_trip, with_honest_size};

fuzz_target!(|data: &[u8]| {
    check_round_trip(data, Rmessage::decode, Rmessage::encode);
    if let Some(frame) = with_honest_size(data) {
        check_round_trip(&frame, Rmessage::decode, Rmessage::encode);
    }
});
