//! The layering rule: a module of `src/` uses only modules below its own, in the order
//! DESIGN.md states (its `layers` block, read here: the order is written once). A cycle
//! between modules, or a low module reaching up, fails this test with the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where each top-level module stands, bottom first (a line of DESIGN.md's block each).
fn layers() -> BTreeMap<String, usize> {
    let design = std::fs::read_to_string(root().join("DESIGN.md")).expect("DESIGN.md");
    let block = design
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("DESIGN.md holds a ```layers block");
    let mut layers = BTreeMap::new();
    for (level, line) in block.lines().enumerate() {
        for module in line.split_whitespace() {
            let earlier = layers.insert(module.to_owned(), level);
            assert!(
                earlier.is_none(),
                "{module} is listed twice in DESIGN.md's layers"
            );
        }
    }
    layers
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/store/sql.rs` → `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// The modules a line of code names through `crate::` (comments are not code: a doc link
/// to a module above is allowed).
fn named_modules(line: &str) -> Vec<&str> {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices("crate::")
        .map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Each use of a module at or above the user's own layer, as `file:line: a uses b`.
fn violations(src: &Path, layers: &BTreeMap<String, usize>) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        // The binary's entry and the crate root sit above every module.
        let Some(&own) = layers.get(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read a source");
        for (number, line) in text.lines().enumerate() {
            for used in named_modules(line) {
                if used == module {
                    continue;
                }
                let above = layers.get(used).is_none_or(|&level| level >= own);
                if above {
                    found.push(format!(
                        "{}:{}: {module} uses {used}",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_module_is_placed_once_in_the_order() {
    let layers = layers();
    let src = root().join("src");
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("entry").path();
        let module = module_of(&src, &path);
        if module != "lib" && module != "main" {
            modules.push(module);
        }
    }
    modules.sort();
    let mut listed: Vec<String> = layers.keys().cloned().collect();
    listed.sort();
    assert_eq!(
        modules, listed,
        "DESIGN.md's layers must name every module of src/, and only those"
    );
}

#[test]
fn no_module_uses_one_at_or_above_its_own_layer() {
    let found = violations(&root().join("src"), &layers());
    assert!(
        found.is_empty(),
        "modules reaching up (DESIGN.md's layers):\n{}",
        found.join("\n")
    );
}

#[test]
fn a_line_names_the_modules_it_uses_and_comments_name_none() {
    assert_eq!(
        named_modules("use crate::store::{JobStore, StoreError};"),
        ["store"]
    );
    assert_eq!(
        named_modules("    let p = crate::memory::pace::RedisPacer::beside(&crate::queue::Q);"),
        ["memory", "queue"]
    );
    assert!(named_modules("/// See [`crate::api`].").is_empty());
    assert!(named_modules("let x = 1; // crate::api").is_empty());
}
