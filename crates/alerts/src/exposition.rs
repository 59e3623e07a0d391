//! A writer of the Prometheus text exposition format (version 0.0.4): one `# HELP` and
//! `# TYPE` per family, samples grouped under it, label values escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Default)]
pub struct Exposition {
    /// Family name -> (type, help, sample lines), written in name order.
    families: BTreeMap<String, (&'static str, String, Vec<String>)>,
}

fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Declares a family (`gauge`, `counter`, `summary`); later calls keep the first help.
    pub fn family(&mut self, name: &str, kind: &'static str, help: &str) {
        self.families
            .entry(name.to_owned())
            .or_insert_with(|| (kind, help.to_owned(), Vec::new()));
    }

    /// Adds a sample to a family declared before (`name` may carry a suffix such as `_sum`).
    pub fn sample(&mut self, family: &str, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some((_, _, lines)) = self.families.get_mut(family) else {
            return;
        };
        let mut line = name.to_owned();
        if !labels.is_empty() {
            line.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{k}=\"{}\"", escape(v));
            }
            line.push('}');
        }
        let _ = write!(line, " {}", number(value));
        lines.push(line);
    }

    /// A gauge family with one sample: the common case.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, name, labels, value);
    }

    pub fn finish(self) -> String {
        let mut out = String::new();
        for (name, (kind, help, lines)) in self.families {
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "# HELP {name} {}",
                help.replace('\\', "\\\\").replace('\n', " ")
            );
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_samples_and_escapes_labels() {
        let mut e = Exposition::new();
        e.gauge("b_value", "B.", &[("model", "a\"b\\c\nd")], 1.5);
        e.gauge("a_value", "A.", &[], f64::NAN);
        e.gauge("b_value", "ignored", &[("model", "x")], 2.0);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP a_value A.\n# TYPE a_value gauge\na_value NaN\n\
             # HELP b_value B.\n# TYPE b_value gauge\nb_value{model=\"a\\\"b\\\\c\\nd\"} 1.5\n\
             b_value{model=\"x\"} 2\n"
        );
    }
}
