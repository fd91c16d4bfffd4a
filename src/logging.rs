//! Logging: `--log.level`, `--log.format=logfmt|json`, to stderr. `RUST_LOG` overrides the level
//! with a full filter when set.
//!
//! The logfmt formatter is our own, small one: the maintained crate (`tracing-logfmt` 0.3) writes
//! the message as `message=`, while node_exporter and every Prometheus component write `msg=`,
//! which log pipelines (Loki, promtail) key on; it has no option to rename it. Levels are written
//! upper-case in both formats (`level=WARN`, `"level":"WARN"`), as Prometheus' own slog-based
//! logging does and as tracing-subscriber's JSON writes them.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Errors if one is already installed.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    // Our own crate at `level`; dependencies (the AWS SDK, hyper) one step quieter unless asked.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("warn,iam_mfa_exporter={level}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

/// `ts=… level=… target=… msg="…" key=value …`, one line an event.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        write!(
            writer,
            "ts={ts} level={} target={}",
            meta.level().as_str(),
            meta.target()
        )?;
        let mut visitor = LogfmtFields {
            line: String::new(),
        };
        event.record(&mut visitor);
        writer.write_str(&visitor.line)?;
        writer.write_char('\n')
    }
}

struct LogfmtFields {
    line: String,
}

impl LogfmtFields {
    fn push(&mut self, field: &Field, value: &str) {
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        self.line.push(' ');
        self.line.push_str(key);
        self.line.push('=');
        push_value(&mut self.line, value);
    }
}

impl Visit for LogfmtFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

/// Quotes a value when it holds a space, `=`, `"`, a control character or nothing.
fn push_value(line: &mut String, value: &str) {
    let quote = value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !quote {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_value;

    #[test]
    fn logfmt_quoting() {
        let cases = [
            ("plain", "plain"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
        ];
        for (input, want) in cases {
            let mut line = String::new();
            push_value(&mut line, input);
            assert_eq!(line, want, "{input:?}");
        }
    }
}
