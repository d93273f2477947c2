//! Prometheus metrics: the process's recorder (tl-audit's leak metrics go
//! through it), the text the service serves on `GET /metrics`, and a reader
//! of that text for the load generator's scrape.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process's Prometheus recorder, installed on first use (install it
/// before the auditor, so that no metric is lost to the no-op recorder).
/// `None` if another recorder was installed first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The Prometheus text exposition of every metric now.
pub fn render() -> String {
    prometheus()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// One sample of a scrape: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric's name.
    pub name: String,
    /// Its labels, as written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// A parsed scrape in Prometheus text format.
#[derive(Clone, Debug, Default)]
pub struct Scrape(pub Vec<Sample>);

impl Scrape {
    /// Parses Prometheus text: `# ` lines are skipped; every other non-empty
    /// line must be `name value` or `name{l="v",..} value`.
    ///
    /// # Errors
    /// The first line that is not a sample, with its number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut samples = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(sample(line).ok_or_else(|| format!("line {}: {line:?}", n + 1))?);
        }
        Ok(Self(samples))
    }

    /// The sum of every sample of `name` (0 if there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// Whether the scrape has a sample of `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }
}

fn sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    (!name.is_empty() && name.chars().all(valid)).then(|| Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `l="v",l2="v2"` (values escaped as Prometheus does: `\\`, `\"`, `\n`).
fn labels(mut rest: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim_start_matches(',').to_owned(), value));
        rest = &after[end + 1..];
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let text = "# TYPE tl_audit_held_bytes gauge\n\
                    tl_audit_held_bytes{key=\"OrderService.conn\"} 832\n\
                    tl_audit_held_bytes{key=\"a \\\"quoted\\\" name\",other=\"x\"} 24\n\
                    tl_audit_threads 4\n\
                    tl_audit_scan_duration_seconds{quantile=\"1\"} +Inf\n";
        let scrape = Scrape::parse(text).unwrap();
        assert_eq!(scrape.0.len(), 4);
        assert_eq!(scrape.sum("tl_audit_held_bytes"), 856.0);
        assert_eq!(
            scrape.0[1].labels,
            vec![
                ("key".to_owned(), "a \"quoted\" name".to_owned()),
                ("other".to_owned(), "x".to_owned())
            ]
        );
        assert!(scrape.has("tl_audit_threads") && !scrape.has("nothing"));
    }

    #[test]
    fn rejects_lines_that_are_not_samples() {
        assert!(Scrape::parse("tl_audit_threads").is_err());
        assert!(Scrape::parse("tl_audit_threads four").is_err());
        assert!(Scrape::parse("bad{key=\"v} 1").is_err());
    }
}
