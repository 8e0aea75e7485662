//! Fuzzes the STOMP decoder: see `src/round_trip.rs` for the properties checked.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../src/round_trip.rs"]
mod round_trip;

fuzz_target!(|data: &[u8]| round_trip::check(data));
