//! `tally`: the one binary. Subcommands start the server, fill a demo coalition, apply
//! migrations, run expiry, and benchmark the POS path.

mod bench;
mod bench_rules;
mod demo;
mod demo_api;
mod demo_rules;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tally", version, about = "Tally: an open-source coalition loyalty engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server keeps its data and listens; flags override the environment.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "TALLY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// `sqlite://path` or `postgres://…`.
    #[arg(long, env = "TALLY_DATABASE_URL", default_value = "sqlite://tally.db")]
    pub database_url: String,
    /// Seconds between scheduled expiry runs.
    #[arg(long, env = "TALLY_EXPIRY_INTERVAL_SECS", default_value_t = 300)]
    pub expiry_interval_secs: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Start the API server on an empty (or existing) database.
    Serve(ServerArgs),
    /// Start the API server with a demo coalition (San Diego, Berlin, Prague).
    Demo {
        #[command(flatten)]
        server: ServerArgs,
        /// Members to create in the demo.
        #[arg(long, default_value_t = 3000)]
        members: u32,
        /// Days of purchase history to generate.
        #[arg(long, default_value_t = 180)]
        days: u32,
        /// Fill the database and exit instead of serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long, env = "TALLY_DATABASE_URL", default_value = "sqlite://tally.db")]
        database_url: String,
    },
    /// Mature pending points and expire old lots now, then exit.
    Expire {
        #[arg(long, env = "TALLY_DATABASE_URL", default_value = "sqlite://tally.db")]
        database_url: String,
    },
    /// Benchmark the POS path over HTTP on a fresh database.
    Bench(bench::BenchArgs),
    /// Time earning-rule evaluation alone (no HTTP, no database).
    BenchRules(bench_rules::BenchRulesArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => server::serve(args).await,
            Command::Demo {
                server,
                members,
                days,
                no_serve,
            } => {
                let store = tally_store::Store::connect(&server.database_url).await?;
                demo::fill(&store, members, days).await?;
                if no_serve { Ok(()) } else { server::serve(server).await }
            }
            Command::Migrate { database_url } => {
                tally_store::Store::connect(&database_url).await?;
                println!("migrations applied to {}", server::redact(&database_url));
                Ok(())
            }
            Command::Expire { database_url } => {
                let store = tally_store::Store::connect(&database_url).await?;
                let state = server::state(store, tally_http::system_clock()).await?;
                let report = tally_http::routes::operations::settle_all(&state).await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(())
            }
            Command::Bench(args) => bench::run(args).await,
            Command::BenchRules(args) => bench_rules::run(args),
        }
    })
}
