//! `tally`: the one binary. Subcommands start the server, fill a demo coalition, apply
//! migrations, run expiry, and benchmark the POS path.

mod bench;
mod bench_load;
mod bench_rules;
mod demo;
mod demo_api;
mod demo_rules;
mod server;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: a sale allocates and frees many small values
/// (parsed JSON, the breakdown, the receipt) across threads, and glibc's `malloc`,
/// `free` and `malloc_consolidate` were a fifth of the server's profile under rules.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Seconds a client has to send a request's head; also how long an idle kept-alive
    /// connection stays open.
    #[arg(long, env = "TALLY_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body; past it `408 body_timeout`.
    #[arg(long, env = "TALLY_BODY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// Seconds a request may take in all; past it `503 timeout`.
    #[arg(long, env = "TALLY_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// Seconds an answer may wait for a client that does not read it.
    #[arg(long, env = "TALLY_WRITE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout_secs: u64,
    /// Connections open at once; more wait to be accepted.
    #[arg(long, env = "TALLY_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Where members' one-time sign-in codes go: `off` (members cannot sign in to the
    /// portal) or `log` (written to the log: development and the demo only).
    #[arg(long, env = "TALLY_MEMBER_CODES", value_enum, default_value_t = MemberCodes::Off)]
    pub member_codes: MemberCodes,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemberCodes {
    Off,
    Log,
}

impl ServerArgs {
    pub fn limits(&self) -> tally_http::Limits {
        use std::time::Duration;
        tally_http::Limits {
            header_read_timeout: Duration::from_secs(self.header_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            max_connections: usize::try_from(self.max_connections).unwrap_or(1_000_000),
        }
    }
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
        /// Days of purchase history to generate: by default a little over two years, so
        /// points expire (24 months), tier reviews take members down a level, and
        /// memberships renew and lapse within it.
        #[arg(long, default_value_t = 800)]
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
    /// Add a staff account for the web faces (the first operator admin of a new
    /// database, say); the password is read from standard input.
    StaffAdd {
        #[arg(long, env = "TALLY_DATABASE_URL", default_value = "sqlite://tally.db")]
        database_url: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// operator_admin, operator_analyst, partner_manager or partner_cashier.
        #[arg(long)]
        role: String,
        /// The partner of a partner_manager or partner_cashier (`ptn_…`).
        #[arg(long)]
        partner_id: Option<String>,
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
                let server = ServerArgs {
                    member_codes: MemberCodes::Log,
                    ..server
                };
                if no_serve { Ok(()) } else { server::serve(server).await }
            }
            Command::Migrate { database_url } => {
                tally_store::Store::connect(&database_url).await?;
                println!("migrations applied to {}", server::redact(&database_url));
                Ok(())
            }
            Command::StaffAdd {
                database_url,
                email,
                name,
                role,
                partner_id,
            } => staff_add(&database_url, email, name, role, partner_id).await,
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

/// `tally staff-add`: one staff account, its password read from standard input (one
/// line), checked and hashed as the console does.
async fn staff_add(
    database_url: &str,
    email: String,
    name: String,
    role: String,
    partner_id: Option<String>,
) -> anyhow::Result<()> {
    use tally_domain::ids::Id;
    let store = tally_store::Store::connect(database_url).await?;
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let password_hash = tally_http::web::login::hash_password(password).map_err(anyhow::Error::msg)?;
    let partner_id = match partner_id {
        None => None,
        Some(p) => {
            Some(tally_domain::ids::PartnerId::parse(&p).ok_or_else(|| anyhow::anyhow!("{p} is not a partner id"))?)
        }
    };
    let user = store
        .create_user(tally_store::web::NewUser {
            id: tally_store::keys::new_id("usr"),
            email: email.trim().to_lowercase(),
            name,
            role,
            partner_id,
            password_hash,
            now: jiff::Timestamp::now(),
        })
        .await?;
    println!("staff account {} ({}) added: sign in at /login", user.email, user.role);
    Ok(())
}
