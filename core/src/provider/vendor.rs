//! Which vendors Lineup has adapters for, how to build one from its configuration, and the
//! README's capability table rendered from their flags.

use std::sync::Arc;

use super::airalo::{AiraloConfig, AiraloProvider};
use super::gigs::{GigsConfig, GigsProvider};
use super::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use super::{Capabilities, ConnectivityProvider, ProviderError, ProvisioningMode};

/// A vendor with an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorKind {
    OneGlobal,
    Gigs,
    Airalo,
}

impl VendorKind {
    pub const ALL: [Self; 3] = [Self::OneGlobal, Self::Gigs, Self::Airalo];

    /// The stable name stored with every line ([`ConnectivityProvider::name`]).
    pub fn name(self) -> &'static str {
        match self {
            Self::OneGlobal => "1global",
            Self::Gigs => "gigs",
            Self::Airalo => "airalo",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::OneGlobal => "1GLOBAL",
            Self::Gigs => "Gigs",
            Self::Airalo => "Airalo",
        }
    }

    /// By stored name; `oneglobal` is accepted for 1GLOBAL as on the command line.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "oneglobal" => Some(Self::OneGlobal),
            other => Self::ALL.into_iter().find(|kind| kind.name() == other),
        }
    }

    /// What the vendor's adapter can do, without building one.
    pub fn capabilities(self) -> &'static Capabilities {
        match self {
            Self::OneGlobal => &OneGlobalProvider::CAPABILITIES,
            Self::Gigs => &GigsProvider::CAPABILITIES,
            Self::Airalo => &AiraloProvider::CAPABILITIES,
        }
    }
}

/// One vendor account's configuration.
#[derive(Debug, Clone)]
pub enum VendorConfig {
    OneGlobal(OneGlobalConfig),
    Gigs(GigsConfig),
    Airalo(AiraloConfig),
}

impl VendorConfig {
    pub fn kind(&self) -> VendorKind {
        match self {
            Self::OneGlobal(_) => VendorKind::OneGlobal,
            Self::Gigs(_) => VendorKind::Gigs,
            Self::Airalo(_) => VendorKind::Airalo,
        }
    }
}

/// The adapter for `config`'s vendor.
pub fn build(config: VendorConfig) -> Result<Arc<dyn ConnectivityProvider>, ProviderError> {
    Ok(match config {
        VendorConfig::OneGlobal(config) => Arc::new(OneGlobalProvider::new(config)?),
        VendorConfig::Gigs(config) => Arc::new(GigsProvider::new(config)?),
        VendorConfig::Airalo(config) => Arc::new(AiraloProvider::new(config)?),
    })
}

/// The command that prints [`capability_table`], for the README's drift check.
pub const CAPABILITY_TABLE_COMMAND: &str = "cargo run -q -- providers";

/// The lines around the generated table in the README.
pub const README_TABLE_BEGIN: &str = "<!-- providers:begin -->";
pub const README_TABLE_END: &str = "<!-- providers:end -->";

/// A markdown table of what each adapter can do, from its [`Capabilities`].
pub fn capability_table() -> String {
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let mut table = String::from(
        "| Provider | Order | Suspend | Resume | Terminate | Usage pull | Webhooks | Porting | Top-up |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for kind in VendorKind::ALL {
        let c = kind.capabilities();
        let order = match c.provisioning {
            ProvisioningMode::Sync => "sync",
            ProvisioningMode::AsyncPoll => "async, polled",
            ProvisioningMode::AsyncCallback => "async, events (or polled)",
        };
        let usage = if c.usage_by_country {
            "yes, by country"
        } else {
            "yes, totals only"
        };
        let porting = match (c.port_in, c.port_out) {
            (true, true) => "in and out",
            (true, false) => "in",
            (false, true) => "out",
            (false, false) => "no",
        };
        table.push_str(&format!(
            "| {} | {order} | {} | {} | {} | {usage} | {} | {porting} | {} |\n",
            kind.display_name(),
            yes_no(c.suspend),
            yes_no(c.resume),
            yes_no(c.terminate),
            yes_no(c.webhooks),
            yes_no(c.top_up),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_name_and_builds_its_adapter() {
        for kind in VendorKind::ALL {
            assert_eq!(VendorKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(VendorKind::parse("oneglobal"), Some(VendorKind::OneGlobal));
        assert_eq!(VendorKind::parse("esim-go"), None);
        let configs = [
            VendorConfig::OneGlobal(OneGlobalConfig::new(
                "http://127.0.0.1:1",
                "c",
                "s",
                "acc_1",
            )),
            VendorConfig::Gigs(GigsConfig::new("http://127.0.0.1:1/gigs", "p", "key")),
            VendorConfig::Airalo(AiraloConfig::new("http://127.0.0.1:1/airalo", "c", "s")),
        ];
        for config in configs {
            let kind = config.kind();
            let provider = build(config).expect("a valid configuration builds");
            assert_eq!(provider.name(), kind.name());
            assert_eq!(provider.capabilities(), kind.capabilities());
        }
        let bad = VendorConfig::Gigs(GigsConfig::new("ftp://x", "p", "key"));
        assert!(matches!(
            build(bad),
            Err(ProviderError::InvalidRequest { message }) if message.starts_with("Gigs adapter")
        ));
    }

    #[test]
    fn the_readme_shows_the_rendered_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("the README is readable");
        let start = readme
            .find(README_TABLE_BEGIN)
            .expect("the README has the begin marker")
            + README_TABLE_BEGIN.len();
        let end = readme
            .find(README_TABLE_END)
            .expect("the README has the end marker");
        assert_eq!(
            readme[start..end].trim(),
            capability_table().trim(),
            "the README's provider table differs from the adapters' capability flags: \
             regenerate it with `{CAPABILITY_TABLE_COMMAND}` and paste it between the markers"
        );
    }

    #[test]
    fn the_table_has_a_row_per_vendor_read_from_its_flags() {
        let table = capability_table();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), VendorKind::ALL.len());
        assert!(rows[1].starts_with("| Gigs | async, events (or polled) | no | no | yes |"));
        assert!(rows[1].contains("| in and out |"));
        assert!(rows[2].starts_with("| Airalo | sync | no | no | no | yes, totals only |"));
    }
}
