//! Hostile input on the stable toolchain: the cargo-fuzz corpus in `fuzz/corpus/` and
//! generated inputs replayed through the fuzz targets' own entry points
//! (`keyward::fuzzing`), and arbitrary CSV through the whole `user import` path.

use super::common::{Env, open, rt};
use keyward::fuzzing::TARGETS;
use keyward::store::directory::UserQuery;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Every seed of every target: (target index, bytes).
static CORPUS: LazyLock<Vec<(usize, Vec<u8>)>> = LazyLock::new(|| {
    let mut all = Vec::new();
    for (i, (name, _)) in TARGETS.iter().enumerate() {
        for f in files(&fuzz_dir().join("corpus").join(name)) {
            all.push((i, std::fs::read(&f).unwrap()));
        }
    }
    all
});

/// The fuzz targets and the library's entry points are the same set, each target calls
/// its entry point, and each has a seed corpus.
#[test]
fn fuzz_targets_match_the_entry_points_and_have_a_corpus() {
    let on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(
        on_disk, names,
        "fuzz/fuzz_targets/ and keyward::fuzzing::TARGETS differ"
    );
    for name in &names {
        let src =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            src.contains(&format!("keyward::fuzzing::{name}(")),
            "fuzz target {name} does not call keyward::fuzzing::{name}"
        );
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            seeds.len() >= 5,
            "fuzz/corpus/{name} has {} seeds",
            seeds.len()
        );
    }
}

#[test]
fn the_fuzz_corpus_never_panics() {
    assert!(!CORPUS.is_empty());
    for (i, bytes) in CORPUS.iter() {
        let (name, f) = TARGETS[*i];
        let r = std::panic::catch_unwind(|| f(bytes));
        assert!(
            r.is_ok(),
            "fuzz target {name} panicked on a corpus file starting {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
        );
    }
}

/// Inputs near the kept corpus: a seed with a few bytes overwritten, inserted or cut.
fn mutated_seed() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (
        0..CORPUS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(|(seed, edits)| {
            let (target, mut b) = CORPUS[seed].clone();
            for (at, byte, op) in edits {
                let i = if b.is_empty() { 0 } else { at.index(b.len()) };
                match op {
                    0 if !b.is_empty() => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ => b.truncate(i),
                }
            }
            (target, b)
        })
}

/// Text made of the characters that matter to these parsers.
fn parser_text() -> impl Strategy<Value = Vec<u8>> {
    "([A-Za-z0-9@._=+/-]|[,\"\\n\\r\\[\\]{}:= ]|\\x1b|\u{202e}|\\PC){0,300}"
        .prop_map(String::into_bytes)
}

proptest! {
    // Bounded for CI: well under a second for both, debug build, two cores.
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn mutated_corpus_never_panics((target, bytes) in mutated_seed()) {
        (TARGETS[target].1)(&bytes);
    }

    #[test]
    fn generated_input_never_panics(
        target in 0..TARGETS.len(),
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..400), parser_text()],
    ) {
        (TARGETS[target].1)(&bytes);
    }
}

/// CSV files: mostly well-shaped rows (email, optional name, role and station) with
/// valid and invalid values, plus rows of arbitrary fields and of raw bytes.
fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    let email = prop_oneof![
        6 => "[a-e]{1,3}@(free\\.example\\.com|acme\\.example)",
        1 => "[a-e]{1,3}@?",
        1 => Just("email".to_string()),
        1 => "[\\x00-\\x1f\u{202e}]{1,3}",
    ];
    let text = prop_oneof![
        6 => "[A-Za-z ]{0,12}",
        1 => "\"[a-z,\\n\"]{0,8}\"?",
        1 => "[\\x00-\\x1f\u{202e}]{1,3}",
    ];
    let role = prop::sample::select(vec!["", "Consumer", "administrator", "NoSuchRole"]);
    let shaped = (
        email,
        prop::collection::vec(text.clone(), 0..2),
        role,
        prop::collection::vec(text.clone(), 0..2),
    )
        .prop_map(|(e, name, role, rest)| {
            let mut f = vec![e];
            f.extend(name);
            if !role.is_empty() || !rest.is_empty() {
                f.resize(2, String::new());
                f.push(role.to_string());
            }
            f.extend(rest);
            f.join(",").into_bytes()
        });
    let line = prop_oneof![
        6 => shaped,
        1 => prop::collection::vec(text, 0..6).prop_map(|f| f.join(",").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..20),
    ];
    (prop::collection::vec(line, 0..12), any::<bool>())
        .prop_map(|(lines, crlf)| lines.join(if crlf { &b"\r\n"[..] } else { &b"\n"[..] }))
}

/// Arbitrary CSV through `user import`: it never fails or panics, every row is counted
/// as created or refused (with its line, in order), a dry run writes nothing and
/// predicts the real run, the user count grows by exactly the rows created, and a
/// second import of the same file (every row now refused) changes nothing.
#[test]
fn csv_import_of_arbitrary_bytes_reports_every_row_and_changes_nothing_for_bad_rows() {
    let env = Env::sqlite();
    let rt = rt();
    let (kw, admin) = rt.block_on(open(&env));
    let count = |kw: &keyward::Keyward| {
        rt.block_on(kw.user_count(&admin, UserQuery::default()))
            .unwrap()
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&csv_file(), |csv| {
            let import = |dry| {
                rt.block_on(kw.user_import(&admin, "free.example.com", None, &csv, dry, |_| {}))
                    .unwrap_or_else(|e| panic!("import failed: {e}"))
            };
            let before = count(&kw);
            let dry = import(true);
            prop_assert_eq!(count(&kw), before, "a dry run wrote");
            let real = import(false);
            for r in [&dry, &real] {
                prop_assert_eq!(r.rows, r.created + r.errors.len() as u64);
                prop_assert!(r.errors.iter().all(|e| e.line >= 1 && !e.reason.is_empty()));
                prop_assert!(r.errors.is_sorted_by_key(|e| e.line));
            }
            let lines = |r: &keyward::service::import::ImportReport| {
                r.errors.iter().map(|e| e.line).collect::<Vec<_>>()
            };
            prop_assert_eq!((dry.rows, dry.created), (real.rows, real.created));
            prop_assert_eq!(lines(&dry), lines(&real));
            prop_assert_eq!(count(&kw), before + real.created as i64);
            let again = import(false);
            prop_assert_eq!(again.created, 0);
            prop_assert_eq!(again.errors.len() as u64, again.rows);
            prop_assert_eq!(count(&kw), before + real.created as i64);
            Ok(())
        })
        .unwrap();
    let chain = rt.block_on(kw.audit_verify(&admin)).unwrap();
    assert!(chain.ok, "{:?}", chain.problem);
    assert!(
        count(&kw) > 0,
        "no generated file created a user: the generator is off"
    );
}
