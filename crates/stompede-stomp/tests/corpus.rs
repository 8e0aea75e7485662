//! Replays the committed fuzz corpus (`fuzz/corpus/decode/`) through the same
//! round-trip check as the `decode` fuzz target, so the seeds run in CI even
//! where `cargo fuzz` (nightly) cannot.

use std::path::Path;

#[path = "../../../fuzz/src/round_trip.rs"]
mod round_trip;

#[test]
fn fuzz_corpus_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable corpus directory").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.display().to_string();
        let result = std::panic::catch_unwind(|| round_trip::check(&data));
        assert!(result.is_ok(), "corpus file {name} fails the round trip");
        seen += 1;
    }
    assert!(seen >= 15, "only {seen} corpus files in {}", dir.display());
}
