//! The Prometheus text exposition format 0.0.4, written by hand: a family
//! header (`# HELP`, `# TYPE`) then its samples. The format is a few
//! lines of rules (label values escaped, histograms as cumulative `_bucket`
//! series plus `_sum` and `_count`), less than a crate's registry would
//! ask us to mirror our existing counters into.

use std::fmt::Write;

/// What `GET /metrics` answers with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Default)]
pub struct Exposition {
    out: String,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family; its samples follow. A counter's family is named
    /// with its `_total` suffix, as 0.0.4 parsers expect (its samples are).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Self {
        let name = match kind {
            Kind::Counter if !name.ends_with("_total") => format!("{name}_total"),
            _ => name.to_owned(),
        };
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample. `name` is the family name, with `_total`, `_bucket`,
    /// `_sum` or `_count` appended where the type calls for it.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
        self
    }

    /// A one-sample family.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) -> &mut Self {
        let sample = match kind {
            Kind::Counter => format!("{name}_total"),
            _ => name.to_owned(),
        };
        self.family(name, help, kind).sample(&sample, &[], value)
    }

    /// A histogram's samples from per-bucket (not cumulative) counts:
    /// `counts[i]` for `bounds[i]`, the extra last one for `+Inf`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> &mut Self {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| fmt_f64(*b));
            let mut l: Vec<(&str, &str)> = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative as f64)
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// §"Text format details": backslash, double quote and newline are escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: f64) {
    out.push_str(&fmt_f64(v));
}

fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's shortest round-trip form (`1`, `0.25`, `1e-7`) is valid
        // Go `ParseFloat` input, which is what Prometheus reads with.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_histograms_cumulative() {
        let mut e = Exposition::new();
        e.family("x", "a \\ help", Kind::Counter)
            .sample("x_total", &[("p", "a\"b\\c\nd")], 3.0);
        e.family("h", "h", Kind::Histogram).histogram(
            "h",
            &[("k", "v")],
            &[0.5, 1.0],
            &[1, 2, 3],
            4.5,
        );
        let text = e.finish();
        assert!(text.contains("# HELP x_total a \\\\ help\n# TYPE x_total counter\n"));
        assert!(text.contains("x_total{p=\"a\\\"b\\\\c\\nd\"} 3\n"));
        assert!(text.contains("h_bucket{k=\"v\",le=\"0.5\"} 1\n"));
        assert!(text.contains("h_bucket{k=\"v\",le=\"1\"} 3\n"));
        assert!(text.contains("h_bucket{k=\"v\",le=\"+Inf\"} 6\n"));
        assert!(text.contains("h_sum{k=\"v\"} 4.5\nh_count{k=\"v\"} 6\n"));
    }
}
