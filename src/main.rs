//! `lineup`: the command line that composes core, bot, portal and the simulator.

mod config;
mod demo;
mod metrics;
mod probes;
mod reports;
mod server;
mod telemetry;
mod worker;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use config::Config;

#[derive(Parser)]
#[command(
    name = "lineup",
    version,
    about = "Issue, control and account for employees' eSIM lines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (portal, chat endpoints, background worker) on LINEUP_LISTEN.
    Serve,
    /// Zero-setup demo: embedded SQLite, the built-in provider simulator, a seeded tenant.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the server on LINEUP_LISTEN answers /healthz (the container's HEALTHCHECK).
    Healthcheck,
    /// Print the "Add to Slack" link for a tenant (valid 15 minutes).
    SlackInstallLink {
        /// The tenant's slug, e.g. `demo`.
        #[arg(long)]
        tenant: String,
    },
    /// Post a test alert to a tenant's finance channel in Slack.
    SlackTestAlert {
        #[arg(long)]
        tenant: String,
    },
    /// Discord: register the /esim command, or connect a server (guild) to a tenant.
    Discord {
        #[command(subcommand)]
        action: DiscordCommand,
    },
    /// Microsoft Teams: connect an Azure AD tenant to a Lineup tenant.
    Teams {
        #[command(subcommand)]
        action: TeamsCommand,
    },
    /// Replay the last N days of recorded usage under a proposed policy (JSON file, see
    /// README) and compare spend, overage, suspended days and alerts with the current policy.
    Whatif {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 30)]
        days: i64,
        #[arg(long)]
        policy: std::path::PathBuf,
    },
    /// Lines to cancel and lines on the wrong plan size, with the monthly saving of each.
    Optimise {
        #[arg(long)]
        tenant: String,
    },
    /// Run the provider simulator on its own: 1GLOBAL at the root, Gigs under /gigs,
    /// Airalo under /airalo, one control plane under /_sim.
    Simulator {
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Address to bind; loopback unless you mean it.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Serve only this vendor's API: oneglobal, gigs or airalo (default: all three).
        #[arg(long, value_parser = parse_personality)]
        provider: Option<lineup_simulator::Personality>,
    },
    /// Print the README's provider capability table, generated from each adapter's flags.
    Providers,
}

#[derive(Subcommand)]
enum DiscordCommand {
    /// Create or update the /esim command (globally, or in one guild for instant updates).
    RegisterCommands {
        #[arg(long)]
        guild: Option<String>,
    },
    /// Connect a Discord server to a tenant: its members' requests belong to that tenant.
    LinkGuild {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        guild: String,
    },
}

#[derive(Subcommand)]
enum TeamsCommand {
    /// Connect an Azure AD tenant (directory id) to a Lineup tenant.
    LinkTenant {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        aad_tenant: String,
    },
}

/// mimalloc gives freed memory back to the system within seconds; glibc's allocator kept a
/// burst's peak (hundreds of MB after 60,000 clicks) resident for good.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(e.into()),
    };
    let telemetry = match telemetry::Telemetry::init(config.log_format, config.otlp.as_ref()) {
        Ok(telemetry) => telemetry,
        Err(e) => return fail(e),
    };
    let outcome = match cli.command {
        Command::Serve => serve(config, false).await,
        // The demo may try single sign-on with a provider on this machine over http.
        Command::Demo => {
            let config = Config {
                sso_network: lineup_core::identity::sso::SsoNetworkPolicy::LOCAL_TESTING,
                ..config
            };
            serve(config, true).await
        }
        Command::Migrate => migrate(&config).await,
        Command::Healthcheck => probes::healthcheck(config.listen).await,
        Command::SlackInstallLink { tenant } => slack_install_link(&config, &tenant).await,
        Command::SlackTestAlert { tenant } => slack_test_alert(&config, &tenant).await,
        Command::Discord { action } => discord(&config, action).await,
        Command::Teams {
            action: TeamsCommand::LinkTenant { tenant, aad_tenant },
        } => {
            link_workspace(
                &config,
                &tenant,
                lineup_core::messaging::chat::Platform::Teams,
                &aad_tenant,
            )
            .await
        }
        Command::Whatif {
            tenant,
            days,
            policy,
        } => reports::whatif(&config, &tenant, days, &policy).await,
        Command::Optimise { tenant } => reports::optimise(&config, &tenant).await,
        Command::Simulator {
            port,
            bind,
            provider,
        } => run_simulator(SocketAddr::new(bind, port), provider).await,
        Command::Providers => {
            print!("{}", lineup_core::provider::vendor::capability_table());
            Ok(())
        }
    };
    telemetry.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// One clear line, naming the setting at fault where there is one.
fn fail(error: anyhow::Error) -> std::process::ExitCode {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    eprintln!("lineup: {}", chain.join(": "));
    std::process::ExitCode::FAILURE
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    // Installed first, so start-up's provider calls and the demo's seeding are counted too.
    let metrics = match config.metrics_listen {
        Some(addr) => Some((addr, metrics::install_recorder()?)),
        None => None,
    };
    let runtime = server::start(&config).await?;
    let resumed = runtime.lineup.resume_in_flight().await?;
    if resumed > 0 {
        tracing::info!(
            operations = resumed,
            "checked provider operations left in flight by the last run"
        );
    }
    if demo || config.provider.is_none() {
        let simulator = runtime.simulator.as_ref().map(|sim| sim.base_url());
        demo::ensure_seeded(&runtime.lineup, simulator.as_deref()).await?;
    }
    let simulator_url = runtime.simulator.as_ref().map(|sim| sim.base_url());
    let trial = runtime.simulator.as_ref().map(|sim| sim.trial_account());
    let slack_on = runtime.slack.is_some();
    let portal = runtime.portal.config.clone();
    server::serve(runtime, config.listen, metrics, config.shutdown_grace, |addr| {
        println!("Lineup is running on http://{addr}");
        if let Some(url) = &simulator_url {
            println!("  provider: built-in simulator at {url} (control plane: {url}/_sim/stats)");
            println!(
                "            also Gigs at {url}/gigs (project {}, key {}) and Airalo at {url}/airalo (client {} / {})",
                lineup_simulator::GIGS_PROJECT,
                lineup_simulator::GIGS_API_KEY,
                lineup_simulator::AIRALO_CLIENT_ID,
                lineup_simulator::AIRALO_CLIENT_SECRET
            );
        }
        if slack_on {
            println!("  slack:    endpoints under http://{addr}/slack/ (commands, interactions, events)");
        } else if demo {
            println!("  slack:    not connected (set SLACK_SIGNING_SECRET etc.; see README, Connect Slack)");
        }
        if demo {
            println!("  portal:   {}/", portal.tenant_url(demo::SLUG));
            println!(
                "  login:    {} / {}",
                demo::LOGIN_EMAIL,
                demo::LOGIN_PASSWORD
            );
            if let Some(trial) = &trial {
                println!(
                    "  sign-up:  {}/signup; connect the new organisation's provider with \
                     client id {} / secret {} / account id {}",
                    portal.base_url.as_str().trim_end_matches('/'),
                    trial.client_id,
                    trial.client_secret,
                    trial.account_id
                );
            }
            println!("  health:   http://{addr}/healthz");
            println!("  data:     {}", config.data_dir.display());
            println!("Press Ctrl-C to stop; the next start reuses the data.");
        }
    })
    .await
}

/// The running parts plus Slack and the tenant named on the command line.
async fn slack_and_tenant(
    config: &Config,
    slug: &str,
) -> anyhow::Result<(
    server::Runtime,
    server::SlackParts,
    lineup_core::organisation::tenant::Tenant,
)> {
    let runtime = server::start_for_command(config).await?;
    let Some(slack) = runtime.slack.clone() else {
        anyhow::bail!("SLACK_SIGNING_SECRET: Slack is not configured (see README, Connect Slack)");
    };
    let slug = lineup_core::organisation::tenant::Slug::parse(slug)
        .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let tenant = runtime
        .lineup
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--tenant: no tenant {slug}"))?;
    Ok((runtime, slack, tenant))
}

async fn slack_install_link(config: &Config, slug: &str) -> anyhow::Result<()> {
    let (_runtime, slack, tenant) = slack_and_tenant(config, slug).await?;
    let state = slack
        .install_state
        .issue(tenant.id, time::OffsetDateTime::now_utc());
    println!("{}/slack/install?state={state}", server::public_url(config));
    Ok(())
}

async fn slack_test_alert(config: &Config, slug: &str) -> anyhow::Result<()> {
    let (runtime, _slack, tenant) = slack_and_tenant(config, slug).await?;
    let workspace = runtime
        .lineup
        .workspace_of_tenant(tenant.id, lineup_core::messaging::chat::Platform::Slack)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("--tenant: {} has not installed the Slack app", tenant.slug)
        })?;
    let alert = lineup_core::spend::alert::test_alert(&tenant);
    let posted = runtime
        .flows
        .post_finance_alert(
            &workspace,
            lineup_core::messaging::chat::Platform::Slack,
            &alert,
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "posted a test alert to the finance channel ({} at {})",
        posted.channel, posted.id
    );
    Ok(())
}

async fn discord(config: &Config, action: DiscordCommand) -> anyhow::Result<()> {
    match action {
        DiscordCommand::RegisterCommands { guild } => {
            let settings = config.discord.as_ref().ok_or_else(|| {
                anyhow::anyhow!("DISCORD_APPLICATION_ID: Discord is not configured (see README, Connect Discord)")
            })?;
            let client = server::discord_client(settings)?;
            let ids = lineup_bot::discord::register_commands(&client, guild.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("registering /esim with Discord failed: {e}"))?;
            println!("registered /esim ({})", ids.join(", "));
            Ok(())
        }
        DiscordCommand::LinkGuild { tenant, guild } => {
            link_workspace(
                config,
                &tenant,
                lineup_core::messaging::chat::Platform::Discord,
                &guild,
            )
            .await
        }
    }
}

/// Discord guilds and Azure AD tenants are connected by an admin, not by an OAuth flow:
/// the bot's credentials are the application's own, so nothing secret is stored per workspace.
async fn link_workspace(
    config: &Config,
    slug: &str,
    platform: lineup_core::messaging::chat::Platform,
    workspace_id: &str,
) -> anyhow::Result<()> {
    let runtime = server::start_for_command(config).await?;
    let slug = lineup_core::organisation::tenant::Slug::parse(slug)
        .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let tenant = runtime
        .lineup
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--tenant: no tenant {slug}"))?;
    let actor = lineup_core::audit::Actor::System;
    runtime
        .lineup
        .install_workspace(tenant.id, &actor, platform, workspace_id, None, "")
        .await?;
    println!(
        "{} {workspace_id} now belongs to {}",
        platform.as_str(),
        tenant.slug
    );
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = lineup_core::store::Store::connect(&config.database_url()).await?;
    store.migrate().await?;
    println!("migrations applied");
    Ok(())
}

fn parse_personality(name: &str) -> Result<lineup_simulator::Personality, String> {
    lineup_simulator::Personality::parse(name)
        .ok_or_else(|| format!("unknown provider {name:?}: use oneglobal, gigs or airalo"))
}

async fn run_simulator(
    addr: SocketAddr,
    provider: Option<lineup_simulator::Personality>,
) -> anyhow::Result<()> {
    use lineup_simulator::Personality;
    let personalities = provider.map_or_else(|| Personality::ALL.to_vec(), |p| vec![p]);
    println!("provider simulator on http://{addr} (control plane under /_sim)");
    for personality in &personalities {
        let url = format!("http://{addr}{}", personality.prefix());
        match personality {
            Personality::OneGlobal => println!("  oneglobal: {url}"),
            Personality::Gigs => println!(
                "  gigs: {url} (project {}, API key {})",
                lineup_simulator::GIGS_PROJECT,
                lineup_simulator::GIGS_API_KEY
            ),
            Personality::Airalo => println!(
                "  airalo: {url} (client {} / {})",
                lineup_simulator::AIRALO_CLIENT_ID,
                lineup_simulator::AIRALO_CLIENT_SECRET
            ),
        }
    }
    lineup_simulator::run(
        addr,
        lineup_simulator::SimConfig::default(),
        Default::default(),
        &personalities,
    )
    .await?;
    Ok(())
}
