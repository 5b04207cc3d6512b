//! Records the exact versions of the engines' crates, read from this
//! crate's Cargo.lock, so that db_bench can print what it was built with.

use std::path::Path;

fn main() {
    let lock =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for (name, var) in [
        ("aidb", "BENCH_AIDB_VERSION"),
        ("rocksdb", "BENCH_ROCKSDB_CRATE_VERSION"),
        ("librocksdb-sys", "BENCH_LIBROCKSDB_SYS_VERSION"),
        ("fjall", "BENCH_FJALL_VERSION"),
        ("lsm-tree", "BENCH_LSM_TREE_VERSION"),
    ] {
        println!("cargo:rustc-env={var}={}", locked_version(&text, name));
    }
}

/// The version of package `name` in a Cargo.lock ("?" if absent).
fn locked_version(lock: &str, name: &str) -> String {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "?".to_string()
}
