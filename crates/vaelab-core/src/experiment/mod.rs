//! What a person declares: the YAML spec, its resolution into validated `RunConfig`s with
//! every default filled in, run identity, and expansion into labelled runs. The lowest
//! layer: it imports nothing else of vaelab.
pub mod attributes;
pub mod capacity;
pub mod config;
pub mod metric;
pub mod plan;
pub mod question;
pub mod resolve;
pub mod spec;

/// A file-name-safe form of a label.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "all".into() } else { out }
}
