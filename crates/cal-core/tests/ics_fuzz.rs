//! The parser never panics: random bytes, and real-shaped calendars with
//! bytes flipped, inserted or cut, either import or are rejected.

use cal_core::Zone;
use cal_core::ics::import::{ImportLimits, import};
use cal_core::time::Instant;
use proptest::prelude::*;

const SEEDS: [&str; 4] = [
    include_str!("../../calctl/tests/fixtures/ics/recurring-with-overrides.ics"),
    include_str!("../../calctl/tests/fixtures/ics/outlook-windows-zone.ics"),
    include_str!("../../calctl/tests/fixtures/ics/apple-custom-vtimezone.ics"),
    include_str!("../../calctl/tests/fixtures/ics/dst-crossings-new-york.ics"),
];

fn run(body: &[u8]) {
    let limits = ImportLimits { max_iterations: 20_000, max_occurrences: 5_000, ..ImportLimits::default() };
    let from = Instant::parse("2026-01-01T00:00:00Z").unwrap();
    let to = Instant::parse("2027-01-01T00:00:00Z").unwrap();
    if let Ok(imported) = import(body, Zone::parse("Europe/Berlin").unwrap(), from, to, limits) {
        for b in &imported.busy {
            assert!(b.end > b.start, "an empty interval came out: {b:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        run(&body);
        let mut with_header = b"BEGIN:VCALENDAR\r\n".to_vec();
        with_header.extend(&body);
        run(&with_header);
    }

    #[test]
    fn mutated_calendars_never_panic(
        seed in 0usize..SEEDS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = SEEDS[seed].as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let i = at.index(body.len().max(1));
            match kind {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i.min(body.len()), byte),
                _ if i < body.len() => { body.remove(i); }
                _ => {}
            }
        }
        run(&body);
        let keep = cut.index(body.len().max(1));
        run(&body[..keep]);
    }
}
