//! What decides a prediction's class, and what the task is, through the real binary: the
//! logged prediction is the decision (a model deciding at 0.65 gets its own confusion matrix),
//! `threshold=` is a what-if; whole-number regression targets are not taken for classes; a
//! model's task can be declared (API and config file) and stays declared across a restart; a
//! model with many classes gets a reply of bounded size.

use crate::common;

use common::{client, decode, Server};
use serde_json::{json, Value};

/// The model's own decision threshold in the first test.
const MODEL_THRESHOLD: f64 = 0.65;

fn put(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    decode(
        client()
            .put(format!("{}{}", server.url, path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request"),
    )
}

/// GET returning the body's size in bytes too.
fn get_sized(server: &Server, path: &str) -> (u16, Value, usize) {
    let r = client()
        .get(format!("{}{}", server.url, path))
        .send()
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    let size = text.len();
    (status, serde_json::from_str(&text).expect("JSON"), size)
}

fn confusion(w: &Value) -> [u64; 4] {
    let cm = &w["confusion_matrix"];
    ["tp", "fp", "tn", "fn"].map(|k| cm[k].as_u64().unwrap_or_else(|| panic!("{cm}")))
}

/// Counts (tp, fp, tn, fn) of labels against decided classes.
fn count(rows: &[(bool, bool)]) -> [u64; 4] {
    let mut c = [0u64; 4];
    for &(label, predicted) in rows {
        let i = match (predicted, label) {
            (true, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (false, true) => 3,
        };
        c[i] += 1;
    }
    c
}

#[test]
fn a_model_deciding_at_its_own_threshold_gets_the_confusion_matrix_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    // (label, logged prediction) and (label, score >= 0.5), row by row.
    let (mut logged, mut at_half) = (Vec::new(), Vec::new());
    for i in 0..400 {
        // Scores spread over [0.02, 0.98]; a fifth of the rows fall between 0.5 and 0.65,
        // where the model said 0 and a score-at-0.5 rule would say 1.
        let score = 0.02 + 0.96 * ((i * 37 % 400) as f64 / 399.0);
        let label = (i * 7919) % 10 < (score * 10.0) as usize;
        let predicted = score >= MODEL_THRESHOLD;
        let id = format!("r{i}");
        preds.push(json!({
            "request_id": id, "timestamp": format!("2026-03-02T{:02}:10:00Z", i % 24),
            "features": {"amount": i}, "prediction": u8::from(predicted), "score": score
        }));
        labels.push(json!({"request_id": id, "label": u8::from(label)}));
        logged.push((label, predicted));
        at_half.push((label, score >= 0.5));
    }
    server.post_ok("/v1/models/fraud/predictions", preds);
    server.post_ok("/v1/models/fraud/labels", labels);
    let want = count(&logged);
    assert_ne!(
        want,
        count(&at_half),
        "the model's threshold must matter here"
    );

    // Default: the logged prediction decides, from the hourly aggregates (whole-day range)
    // and from the raw events (a range not on whole hours) alike.
    for path in [
        "/v1/models/fraud/metrics?window=1d",
        "/v1/models/fraud/metrics?window=1d&from=2026-03-02T00:00:01Z&to=2026-03-03T00:00:00Z",
    ] {
        let (s, body) = server.get(path);
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["task"], "binary");
        let w = &body["windows"][0];
        assert_eq!(confusion(w), want, "{path}");
        assert_eq!(body["decision"], "prediction", "{path}");
        assert_eq!(w["decision"], "prediction");
        let tp_fp = (want[0] + want[1]) as f64;
        let precision = w["precision"]["value"].as_f64().unwrap();
        assert!((precision - want[0] as f64 / tp_fp).abs() < 1e-12, "{w}");
        // The score still feeds the threshold-free metrics.
        assert_eq!(w["roc_auc"]["status"], "defined", "{w}");
    }

    // What-if: threshold=0.5 lets the score decide, and says so.
    let (s, body) = server.get("/v1/models/fraud/metrics?window=1d&threshold=0.5");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["decision"], "threshold");
    assert_eq!(body["threshold"], 0.5);
    assert_eq!(confusion(&body["windows"][0]), count(&at_half));
}

#[test]
fn whole_number_prices_are_regression_with_a_small_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..3000u64 {
        // About 1,000 distinct whole-number prices, predictions off by a few units.
        let price = 100 + (i * 7919) % 1000;
        let predicted = price + (i % 7) - 3;
        let id = format!("p{i}");
        preds.push(json!({
            "request_id": id, "timestamp": format!("2026-03-{:02}T{:02}:00:00Z", 2 + i % 5, i % 24),
            "features": {"rooms": i % 6}, "prediction": predicted
        }));
        labels.push(json!({"request_id": id, "label": price}));
    }
    server.post_ok("/v1/models/prices/predictions", preds);
    server.post_ok("/v1/models/prices/labels", labels);

    let (s, body, size) = get_sized(&server, "/v1/models/prices/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "regression", "{}", body["task_reason"]);
    let reason = body["task_reason"].as_str().unwrap();
    assert!(
        reason.contains("whole numbers") && reason.contains("more than 50"),
        "{reason}"
    );
    assert_eq!(body["windows"].as_array().unwrap().len(), 5);
    let mae = body["windows"][0]["mae"]["value"].as_f64().unwrap();
    assert!(mae > 0.0 && mae <= 3.0, "{mae}");
    // Five windows of regression metrics: tens of kilobytes, not a thousand classes squared.
    assert!(size < 200_000, "reply of {size} bytes");
}

#[test]
fn a_declared_task_overrides_detection_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    // Star ratings 1..5: detected as classes (few whole numbers), but the team scores them
    // as a regression.
    for i in 0..200u64 {
        let id = format!("s{i}");
        preds.push(json!({
            "request_id": id, "timestamp": format!("2026-03-02T{:02}:00:00Z", i % 24),
            "features": {"len": i}, "prediction": 1 + i % 5
        }));
        labels.push(json!({"request_id": id, "label": 1 + (i + i / 3) % 5}));
    }
    server.post_ok("/v1/models/stars/predictions", preds);
    server.post_ok("/v1/models/stars/labels", labels);
    let (s, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "multiclass", "{}", body["task_reason"]);

    let (s, body) = put(
        &server,
        "/v1/models/stars/task",
        &json!({"task": "regresion"}),
    );
    assert_eq!(s, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("regresion"),
        "{body}"
    );
    let (s, body) = put(
        &server,
        "/v1/models/nobody/task",
        &json!({"task": "binary"}),
    );
    assert_eq!(s, 404, "{body}");

    let (s, body) = put(
        &server,
        "/v1/models/stars/task",
        &json!({"task": "regression"}),
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body,
        json!({"name": "stars", "task": "regression", "declared_in": "api"})
    );
    let (s, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "regression");
    assert!(
        body["task_reason"].as_str().unwrap().contains("declared"),
        "{body}"
    );
    assert!(
        body["windows"][0]["mae"]["value"].as_f64().is_some(),
        "{body}"
    );

    server.stop();
    let server = Server::start(dir.path());
    let (s, body) = server.get("/v1/models/stars/task");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "regression");
    assert_eq!(body["declared_in"], "api");
    let (s, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "regression");

    // Back to detection.
    let (s, body) = put(&server, "/v1/models/stars/task", &json!({"task": null}));
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["declared_in"], Value::Null);
    let (_, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(body["task"], "multiclass");
}

#[test]
fn a_task_declared_in_the_config_file_wins_and_the_api_cannot_contradict_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(&cfg, "[models.stars]\ntask = \"regression\"\n").unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, &["--config", cfg.to_str().unwrap()], &[]);
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..100u64 {
        let id = format!("s{i}");
        preds.push(json!({
            "request_id": id, "timestamp": "2026-03-02T10:00:00Z",
            "features": {"len": i}, "prediction": 1 + i % 5
        }));
        labels.push(json!({"request_id": id, "label": 1 + (i / 2) % 5}));
    }
    server.post_ok("/v1/models/stars/predictions", preds);
    server.post_ok("/v1/models/stars/labels", labels);
    let (s, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "regression", "{}", body["task_reason"]);
    let (_, body) = server.get("/v1/models/stars/task");
    assert_eq!(body["declared_in"], "config");
    let (s, body) = put(
        &server,
        "/v1/models/stars/task",
        &json!({"task": "multiclass"}),
    );
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("config"),
        "{body}"
    );

    // Kept with the model: without the config file the task stays until it is undeclared.
    server.stop();
    let server = Server::start(&data);
    let (_, body) = server.get("/v1/models/stars/task");
    assert_eq!(body["task"], "regression", "{body}");
    assert_eq!(body["declared_in"], "api");
    let (_, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(body["task"], "regression", "{}", body["task_reason"]);
    let (s, _) = put(&server, "/v1/models/stars/task", &json!({"task": null}));
    assert_eq!(s, 200);
    let (_, body) = server.get("/v1/models/stars/metrics?window=1d");
    assert_eq!(body["task"], "multiclass", "{}", body["task_reason"]);
}

#[test]
fn a_query_over_many_classes_names_fifty_and_sums_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    let classes = 400u64;
    for i in 0..4000u64 {
        // Class c{k} has more rows for small k, so the fifty named are c0..c49.
        let k = (i * i) % (classes * classes) / classes;
        let predicted = if i % 4 == 0 { (k + 1) % classes } else { k };
        let id = format!("m{i}");
        preds.push(json!({
            "request_id": id, "timestamp": format!("2026-03-{:02}T{:02}:00:00Z", 2 + i % 3, i % 24),
            "features": {"x": i}, "prediction": format!("c{predicted}")
        }));
        labels.push(json!({"request_id": id, "label": format!("c{k}")}));
    }
    server.post_ok("/v1/models/products/predictions", preds);
    server.post_ok("/v1/models/products/labels", labels);

    let (s, body, size) = get_sized(&server, "/v1/models/products/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "multiclass");
    for w in body["windows"].as_array().unwrap() {
        let per_class = w["per_class"].as_object().unwrap();
        assert_eq!(per_class.len(), 50, "{}", w["classes"]);
        let seen = w["classes"].as_u64().unwrap();
        assert!(seen > 50, "{seen}");
        assert_eq!(w["classes_omitted"].as_u64().unwrap(), seen - 50);
        let cm = &w["confusion_matrix"];
        let labels = cm["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 51);
        assert_eq!(labels[50], "(other classes)");
        // Every labelled row is still in the matrix.
        let total: u64 = cm["counts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(total, w["n"].as_u64().unwrap());
        // Accuracy is over every class, not only the named ones.
        assert_eq!(w["accuracy"]["n"], w["n"]);
    }
    // Three windows of 51 x 51 matrices and 50 classes: well under a megabyte.
    assert!(size < 1_000_000, "reply of {size} bytes");
}
