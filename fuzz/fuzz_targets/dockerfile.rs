//! Fuzzes parse + graph::build + plan::render: none may panic on any input.
#![no_main]

use hoist::graph::{self, GraphOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(df) = hoist::parser::parse(text) {
        let opts = GraphOptions {
            platform: Some("linux/amd64".into()),
            ..GraphOptions::default()
        };
        if let Ok(g) = graph::build(&df, &opts) {
            let _ = graph::plan::render_with_escape(&g, df.directives.escape);
        }
    }
});
