//! The guides must keep up with the code: every `Options`, `WriteOptions`
//! and `TransactionOptions` field appears in docs/configuration.md and every `Error` variant in
//! docs/troubleshooting.md; every guide is linked from the README.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Names of the `pub` fields of `struct name` in `source`.
fn pub_fields(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("struct {name} not found"));
    let body = &source[start..];
    let end = body.find("\n}").expect("end of struct");
    body[..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split(':').next())
        .filter(|f| !f.contains(' '))
        .map(str::to_string)
        .collect()
}

/// Names of the variants of `enum name` in `source`.
fn variants(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("enum {name} not found"));
    let body = &source[start..];
    let end = body.find("\n}").expect("end of enum");
    body[..end]
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .map(str::trim)
        .filter(|l| l.chars().next().is_some_and(char::is_uppercase))
        .map(|l| {
            l.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn every_option_is_in_the_configuration_guide() {
    let fields = pub_fields(&read("src/options.rs"), "Options");
    assert!(fields.len() > 15, "parsed {fields:?}");
    let guide = read("docs/configuration.md");
    for f in &fields {
        assert!(
            guide.contains(&format!("`{f}`")),
            "docs/configuration.md lacks Options::{f}"
        );
    }
    let write = pub_fields(&read("src/options.rs"), "WriteOptions");
    for f in &write {
        assert!(
            guide.contains(&format!("`{f}`")),
            "docs/configuration.md lacks WriteOptions::{f}"
        );
    }
    let txn = pub_fields(&read("src/txn/mod.rs"), "TransactionOptions");
    assert_eq!(txn.len(), 3, "parsed {txn:?}");
    for f in &txn {
        assert!(
            guide.contains(&format!("`{f}`")),
            "docs/configuration.md lacks TransactionOptions::{f}"
        );
    }
}

#[test]
fn every_error_is_in_the_troubleshooting_guide() {
    let names = variants(&read("src/error.rs"), "Error");
    assert!(names.len() >= 8, "parsed {names:?}");
    let guide = read("docs/troubleshooting.md");
    for v in &names {
        assert!(
            guide.contains(&format!("`{v}")),
            "docs/troubleshooting.md lacks Error::{v}"
        );
    }
}

#[test]
fn every_guide_is_linked_from_the_readme() {
    let readme = read("README.md");
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            assert!(
                readme.contains(&format!("docs/{name}")),
                "README does not link docs/{name}"
            );
        }
    }
}

#[test]
fn every_example_main_is_under_20_lines() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let body: Vec<&str> = source
            .lines()
            .skip_while(|l| !l.starts_with("fn main"))
            .skip(1)
            .take_while(|l| *l != "}")
            .collect();
        assert!(!body.is_empty(), "{}: no main", path.display());
        assert!(
            body.len() < 20,
            "{}: main has {} lines",
            path.display(),
            body.len()
        );
    }
}
