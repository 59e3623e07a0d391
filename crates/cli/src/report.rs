//! `modelwatch report`: a model's dashboard views as one standalone HTML file (opens offline),
//! their numbers as JSON, and the main charts as PNG, from the data directory or a running
//! server.

use crate::store_arg::{self, Credentials, Location, Mode};
use anyhow::{bail, Context};
use modelwatch_core::ModelName;
use modelwatch_dashboard::{report, ModelData, Parts, ViewParams};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Model to report on
    #[arg(long)]
    model: String,
    /// Output file: .html (standalone report) or .json (its numbers); may be repeated
    #[arg(long)]
    out: Vec<PathBuf>,
    /// Also write the main charts as PNG files into this directory
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    windows: crate::args::Windows,
    /// How far back from the last event: 24h, 7d, 30d, 90d or all (ignored with --from)
    #[arg(long, default_value = "30d")]
    range: String,
    /// Segment table by the values of this feature (or tag:<name>); default: the first
    /// categorical feature
    #[arg(long)]
    segment: Option<String>,
    #[command(flatten)]
    target: crate::args::Target,
}

enum Out {
    Html(PathBuf),
    Json(PathBuf),
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let model = ModelName::new(&args.model)?;
    if args.out.is_empty() && args.png.is_none() {
        bail!("nothing to write: pass --out report.html, --out report.json or --png DIR");
    }
    let outs = args
        .out
        .iter()
        .map(|p| match p.extension().and_then(|e| e.to_str()) {
            Some("html" | "htm") => Ok(Out::Html(p.clone())),
            Some("json") => Ok(Out::Json(p.clone())),
            _ => bail!("--out {}: name a .html or a .json file", p.display()),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pairs = params(&args);
    // Checked here, with the dashboard's own rules, before any work.
    let view = ViewParams::parse(&pairs).map_err(|e| anyhow::anyhow!("{e}"))?;
    // From a server, report.json is the server's text as it came: parsing and printing the
    // numbers again could move a float by one unit in the last place.
    let (data, raw) = match &args.target.server {
        Some(url) => {
            let raw = from_server(url, &model, &pairs, args.target.api_key.as_deref())?;
            let data = serde_json::from_str(&raw).context("reading the server's report data")?;
            (data, Some(raw + "\n"))
        }
        None => (from_data(&model, &view, args.target.location()?)?, None),
    };
    for out in outs {
        let (path, text) = match out {
            Out::Html(p) => {
                let t = report::html(&data);
                (p, t)
            }
            Out::Json(p) => {
                let t = raw.clone().unwrap_or_else(|| report::json(&data));
                (p, t)
            }
        };
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &args.png {
        let written = report::png(&data, dir).map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("wrote {} charts into {}", written.len(), dir.display());
    }
    Ok(())
}

fn params(args: &ReportArgs) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("window".to_string(), args.windows.window.clone()),
        ("range".to_string(), args.range.clone()),
    ];
    for (k, v) in [
        ("from", &args.windows.from),
        ("to", &args.windows.to),
        ("version", &args.windows.version),
        ("segment", &args.segment),
    ] {
        if let Some(v) = v {
            pairs.push((k.to_string(), v.clone()));
        }
    }
    pairs
}

fn from_data(
    model: &ModelName,
    view: &ViewParams,
    location: Location,
) -> anyhow::Result<ModelData> {
    if let Location::Data(dir) = &location {
        if !dir.is_dir() {
            bail!(
                "data directory {} does not exist: pass --data DIR, --store URL, or --server URL",
                dir.display()
            );
        }
    }
    let opened = store_arg::open(&location, Credentials::from_env(), Mode::Service, None)?;
    modelwatch_dashboard::gather(opened.store(), model, view, Parts::ALL)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn from_server(
    url: &str,
    model: &ModelName,
    pairs: &[(String, String)],
    key: Option<&str>,
) -> anyhow::Result<String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()?;
    let mut req = client
        .get(format!(
            "{}/models/{}/report.json",
            url.trim_end_matches('/'),
            model
        ))
        .query(pairs);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().with_context(|| format!("asking {url}"))?;
    let status = resp.status();
    let text = resp.text()?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    Ok(text)
}
