//! The command-line client's arguments: `submit`, `jobs …` and `artifacts get`, talking to a
//! running server's API.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the API is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The API's base url.
    #[arg(
        long,
        env = "CONTROL_PLANE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_url: String,
    /// An API key (sent as `Authorization: Bearer …`); not needed for `dev` on loopback.
    #[arg(long, env = "CONTROL_PLANE_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print the API's JSON instead of lines for people.
    #[arg(long)]
    pub json: bool,
}

/// `control-plane submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The target url.
    pub url: String,
    /// What the job does (navigate_extract, screenshot, pdf, script, noop).
    #[arg(long = "type")]
    pub job_type: Option<String>,
    /// How it reaches the web (auto, http, vanilla, stealth).
    #[arg(long)]
    pub strategy: Option<String>,
    /// 1 (most urgent) to 5.
    #[arg(long)]
    pub priority: Option<u8>,
    /// The job type's options: JSON, or @file.json.
    #[arg(long)]
    pub payload: Option<String>,
    /// Wait for the job to finish, showing its progress; exit 0 if it succeeded, 1 if not.
    #[arg(long)]
    pub wait: bool,
    /// How to reach the API.
    #[command(flatten)]
    pub connection: Connection,
}

/// `control-plane jobs …`.
#[derive(Debug, Clone, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs for this host.
        #[arg(long)]
        domain: Option<String>,
        /// Only jobs of this type.
        #[arg(long = "type")]
        job_type: Option<String>,
        /// Jobs per page (1 to 500).
        #[arg(long)]
        limit: Option<u32>,
        /// The next_cursor of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// How to reach the API.
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one job.
    Get {
        /// The job's id.
        id: String,
        /// How to reach the API.
        #[command(flatten)]
        connection: Connection,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// The job's id.
        id: String,
        /// How to reach the API.
        #[command(flatten)]
        connection: Connection,
    },
    /// Run a failed or cancelled job again.
    Retry {
        /// The job's id.
        id: String,
        /// How to reach the API.
        #[command(flatten)]
        connection: Connection,
    },
    /// Show a job's timeline; with --follow, live until the job finishes.
    Events {
        /// The job's id.
        id: String,
        /// Keep printing events as they happen, until the job finishes.
        #[arg(long)]
        follow: bool,
        /// How to reach the API.
        #[command(flatten)]
        connection: Connection,
    },
}

/// `control-plane artifacts …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ArtifactsCommand {
    /// Download one artifact of a job.
    Get {
        /// The job's id.
        job: String,
        /// The artifact's name (`screenshot.png`, `page.pdf`, …).
        name: String,
        /// Write it here instead of to standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How to reach the API.
        #[command(flatten)]
        connection: Connection,
    },
}
