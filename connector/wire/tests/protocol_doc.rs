//! PROTOCOL.md quotes the snapshots' byte dumps: every dump in the document must be, line for
//! line, a dump some snapshot holds, so an encoding change that updates the snapshots and not the
//! document fails here instead of leaving a stale worked example.

use std::path::Path;

/// A hex dump line as `render_bytes` writes it: a 4-digit offset, two spaces, bytes.
fn is_dump_line(l: &str) -> bool {
    l.len() > 6 && l[..4].bytes().all(|b| b.is_ascii_hexdigit()) && &l[4..6] == "  "
}

/// The runs of consecutive dump lines in a text.
fn dumps(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![];
    let mut current = vec![];
    for l in text.lines() {
        if is_dump_line(l) {
            current.push(l);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[test]
fn every_byte_dump_in_the_protocol_document_is_a_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("PROTOCOL.md")).unwrap();
    let mut snapshots = vec![];
    for e in std::fs::read_dir(root.join("tests/snapshots")).unwrap() {
        let path = e.unwrap().path();
        snapshots.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    let quoted = dumps(&doc);
    assert!(
        quoted.len() >= 8,
        "found only {} dumps in PROTOCOL.md",
        quoted.len()
    );
    for q in quoted {
        // A quote is a whole dump: the same lines, all of them.
        let found = snapshots.iter().find(|(_, s)| {
            dumps(s)
                .iter()
                .any(|d| d.len() == q.len() && d.iter().zip(&q).all(|(a, b)| a == b))
        });
        assert!(
            found.is_some(),
            "PROTOCOL.md quotes a byte dump no snapshot holds (update it from tests/snapshots/):\n{}",
            q.join("\n")
        );
    }
}
