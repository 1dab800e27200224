//! The config-file handling on arbitrary text: `parse` (never panics; errors carry a position),
//! the byte-preserving `"enable"` rewrite (its output parses, with `enable` set as asked and every
//! other field unchanged), and the effective-config JSON.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ms_service_profiler::control::config::{parse, set_enable_text};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let home = Path::new("/home/fuzz");
    match parse(text, home) {
        Ok((cfg, _warnings)) => {
            let _ = cfg.to_json();
            for on in [false, true] {
                if let Some(new) = set_enable_text(text, on) {
                    let (c2, _) = parse(&new, home).expect("the rewritten config parses");
                    assert_eq!(c2.enable, on, "enable rewritten: {new:?}");
                    assert_eq!(c2.prof_dir, cfg.prof_dir);
                    assert_eq!(c2.ring, cfg.ring);
                    assert_eq!(c2.domains, cfg.domains);
                }
            }
        }
        Err(e) => {
            assert!(e.line >= 1 || text.trim().is_empty() || e.line == 0);
            assert!(set_enable_text(text, true).is_none());
        }
    }
});
