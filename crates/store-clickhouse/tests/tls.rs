//! TLS to ClickHouse (`clickhouses://`, issue 21 §2): the backend talks HTTPS to a server whose
//! certificate a private authority signed, when given that authority (`ca_file`, as
//! `[clickhouse] ca_file` or `MODELWATCH_CLICKHOUSE_CA_FILE` give it to `modelwatch`), and
//! refuses the server without it (the Mozilla roots do not know that authority). The server is
//! the current release through scripts/clickhouse/chdb_shim.py serving HTTPS (Python's `ssl`),
//! the certificates are made here with `openssl`.
//!
//! Run: `MODELWATCH_CHDB_PYTHON=path/to/python cargo test -p modelwatch-store-clickhouse --test
//! tls` (skipped with a message without chdb, failed when `CI` or
//! `MODELWATCH_REQUIRE_CLICKHOUSE` is set).

mod common;

use modelwatch_store_clickhouse::{ClickHouseConfig, ClickHouseStore};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An authority and a server certificate it signed for 127.0.0.1: (authority, certificate,
/// key), PEM files in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (Debian's openssl package)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=modelwatch test authority",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    // A leaf for the address the test connects to (rustls checks the IP against the SAN).
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn the_backend_speaks_tls_to_a_server_whose_authority_it_is_given_and_refuses_it_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let Some(mut server) = common::Cluster::chdb_tls(&cert, &key) else {
        return;
    };
    let url = server.url("mw_tls");
    assert!(url.starts_with("clickhouses://127.0.0.1:"), "{url}");

    // Without the authority: the Mozilla roots do not know it, and the error says so.
    let err = ClickHouseStore::connect(&ClickHouseConfig::from_url(&url).unwrap())
        .expect_err("a server signed by an unknown authority is refused")
        .to_string();
    assert!(
        err.contains("https://127.0.0.1") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    // A file that holds no certificate is named.
    let not_pem = dir.path().join("server.csr");
    let err = ClickHouseStore::connect(
        &ClickHouseConfig::from_url(&url)
            .unwrap()
            .with_ca_file(Some(not_pem)),
    )
    .expect_err("no authority in the file")
    .to_string();
    assert!(err.contains("server.csr: no PEM certificate"), "{err}");

    // With it: what a user sees of the store, over TLS (writes, the label join, scans).
    server.ca_file = Some(ca);
    common::summary::the_summary_is_the_embedded_stores_after_every_write_and_kept_per_hour(
        &server.store("mw_tls_summary"),
        &server,
        "mw_tls_summary",
    );
    common::run_checks(&server, "mw_tls", &["idempotency", "late labels"]);
    common::run_alert_checks(&server, "mw_tls_alerts");
}
