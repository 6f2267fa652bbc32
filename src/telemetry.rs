//! Logs to stdout, and spans to an OpenTelemetry collector when OTEL_EXPORTER_OTLP_ENDPOINT
//! is set (OTLP over HTTP with protobuf, the port-4318 receiver every collector offers).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, OtlpSettings};

/// Flushes the spans still batched when the process ends; keep it alive until then.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn init(format: LogFormat, otlp: Option<&OtlpSettings>) -> anyhow::Result<Self> {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into());
        let logs = match format {
            LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
            LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
        };
        let traces = otlp.map(tracer_provider).transpose()?;
        // RUST_LOG filters the logs only: quieting them must not blind the traces.
        let spans = traces.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("lineup"))
                .with_filter(LevelFilter::INFO)
        });
        tracing_subscriber::registry()
            .with(logs.with_filter(filter))
            .with(spans)
            .try_init()?;
        Ok(Self { traces })
    }

    /// Sends what is batched; called once the server has stopped.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            eprintln!("lineup: flushing spans to the OTLP collector failed: {e}");
        }
    }
}

fn tracer_provider(settings: &OtlpSettings) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(&settings.traces_url)
        .build()
        .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}
