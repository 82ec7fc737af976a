//! A bundle's tokenizer section (tokenizer.json) as the runtime loads and uses it: parse, the
//! largest id it can emit (checked against the embedding table at load), and encoding of an
//! ordinary and a worst-case text under a token limit. Errors are fine; panics, hangs and
//! unbounded growth are not.
//!
//! cd runtime/fuzz && cargo +nightly fuzz run tokenizer corpus/tokenizer -- -max_len=65536 \
//!     -rss_limit_mb=512 -timeout=10 -max_total_time=600
#![no_main]

use kinglet_runtime::tokenize::TextTokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut tokenizer) = TextTokenizer::from_bytes(data) else {
        return;
    };
    let _ = tokenizer.max_id();
    let _ = tokenizer.encode("a gripping, funny and thoroughly original film", 128);
    let _ = tokenizer.encode(&"!?.,".repeat(1024), 128);
});
