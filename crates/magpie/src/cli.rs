//! Command-line syntax.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Magpie: self-hosted instant messaging.
#[derive(Debug, Parser)]
#[command(name = "magpie", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server node (embedded storage by default).
    Serve(ServeArgs),
    /// Print a user token signed with an app secret.
    Token(TokenArgs),
    /// Send one message and print its ack as JSON.
    Send(SendArgs),
    /// Sync, then print every received message as one JSON line.
    Tail(TailArgs),
    /// Interactive terminal chat.
    Chat(ChatArgs),
    /// Groups: create, add, remove, join, leave, members, dismiss (JSON output).
    Group(GroupArgs),
    /// Live rooms: create, join, send, tail, moderate, settings (JSON output).
    Room(RoomArgs),
    /// Print the user's conversations as a JSON array (pinned first, then newest first).
    Conversations(ConversationsArgs),
    /// Mark a conversation read (up to its latest message by default); prints JSON.
    Read(ReadArgs),
    /// Load generator: drive a server on this machine, print one JSON line of figures.
    Bench(BenchArgs),
    /// Call any REST endpoint and print the answer (pretty JSON). Non-2xx: the error body on
    /// stdout, `HTTP <status> <CODE>: <message>` on stderr, non-zero exit.
    Api(ApiArgs),
    /// Manage apps through the admin API (JSON output).
    App(AppArgs),
    /// Users through the REST API: bulk import (JSON output).
    User(UserArgs),
    /// Check the static configuration `serve` would load.
    Config(ConfigArgs),
    /// One worker process of a multi-process bench run (started by `bench` itself; speaks
    /// JSON lines on stdin and stdout).
    #[command(name = "bench-worker", hide = true)]
    BenchWorker,
}

/// `magpie serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see magpie.example.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// TCP listener address (port 0 picks a free port).
    #[arg(long)]
    pub listen_tcp: Option<SocketAddr>,
    /// WebSocket listener address.
    #[arg(long)]
    pub listen_ws: Option<SocketAddr>,
    /// HTTP listener address (/healthz, /readyz).
    #[arg(long)]
    pub listen_http: Option<SocketAddr>,
    /// Seed the demo app with users alice, bob and carol.
    #[arg(long)]
    pub demo: bool,
    /// Keep everything in memory (lost on exit).
    #[arg(long)]
    pub memory: bool,
}

/// `magpie token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// User id.
    #[arg(long)]
    pub user: String,
    /// Device id.
    #[arg(long, default_value = "cli")]
    pub device: String,
    /// App id.
    #[arg(long, env = "MAGPIE_APP", default_value = "demo")]
    pub app: String,
    /// App secret (defaults to the demo app's public dev secret for app `demo`).
    #[arg(long, env = "MAGPIE_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// Validity in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: u64,
}

/// Flags shared by the client commands.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Server URL: tcp://, tls://, ws:// or wss://.
    #[arg(long, env = "MAGPIE_SERVER", default_value = "tcp://127.0.0.1:7700")]
    pub server: String,
    /// A user token (instead of --as).
    #[arg(
        long,
        env = "MAGPIE_TOKEN",
        hide_env_values = true,
        conflicts_with = "as_user"
    )]
    pub token: Option<String>,
    /// Act as this user, minting a token from the app secret.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// App id for --as.
    #[arg(long, env = "MAGPIE_APP", default_value = "demo")]
    pub app: String,
    /// App secret for --as (defaults to the demo app's public dev secret for app `demo`).
    #[arg(long, env = "MAGPIE_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// Device id (default: a fresh `cli-…` id per run).
    #[arg(long)]
    pub device: Option<String>,
    /// Extra trusted CA certificate (PEM), for tls:// and wss:// with a private CA.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

/// `magpie send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Recipient user id (a 1:1 message).
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    pub to: Option<String>,
    /// Group id (a group message).
    #[arg(long)]
    pub group: Option<String>,
    /// Users the (group) message mentions, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub mention: Vec<String>,
    /// The (group) message mentions everyone.
    #[arg(long)]
    pub mention_all: bool,
    /// The seq of the message this one replies to.
    #[arg(long)]
    pub reply_to: Option<u64>,
    /// Client message id (default: random). Reusing one returns the original ack.
    #[arg(long)]
    pub client_msg_id: Option<String>,
    /// Give up after this many seconds (default: keep retrying until acked).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// The text to send.
    pub text: String,
}

/// `magpie tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Exit after this many seconds without a new message (default: run until killed).
    #[arg(long)]
    pub until_idle: Option<f64>,
}

/// `magpie chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Start talking to this user (default: the most recent conversation's peer).
    #[arg(long)]
    pub to: Option<String>,
}

/// `magpie bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The scenario.
    #[command(subcommand)]
    pub scenario: BenchScenario,
}

/// The bench scenarios.
#[derive(Debug, Subcommand)]
pub enum BenchScenario {
    /// N authenticated idle connections: connect rate, server memory per connection.
    Connect(BenchConnectArgs),
    /// Sender → receiver pairs: throughput, ack and delivery latency, lost and duplicates.
    P2p(BenchP2pArgs),
    /// One live room: G members, S of them sending at a fixed rate; deliveries, latency,
    /// HIGH messages lost, budget drops, batching.
    Room(BenchRoomArgs),
    /// Fan-out in one group: G online members, S of them sending M messages; deliveries
    /// per second, delivery and ack latency, lost and duplicated deliveries.
    Group(BenchGroupArgs),
}

/// Flags every bench scenario takes.
#[derive(Debug, Args, Clone)]
pub struct BenchCommonArgs {
    /// Server URL on loopback, tcp:// or ws:// (default tcp://127.0.0.1:7700, or
    /// ws://127.0.0.1:7701 with --transport ws). Other hosts are refused.
    #[arg(long)]
    pub server: Option<String>,
    /// Transport: tcp or ws (default: the URL's scheme).
    #[arg(long, value_parser = ["tcp", "ws"])]
    pub transport: Option<String>,
    /// App id of the bench users.
    #[arg(long, env = "MAGPIE_APP", default_value = "demo")]
    pub app: String,
    /// App secret (defaults to the demo app's public dev secret for app `demo`).
    #[arg(long, env = "MAGPIE_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// Most connections one process holds; larger runs start worker processes.
    #[arg(long, default_value_t = 8_000)]
    pub per_worker: usize,
    /// The whole run stops by itself after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Spread connections over source addresses 127.X.Y.1 ..= 127.X.Y.K, X.Y random per
    /// run (0: the kernel's choice).
    #[arg(long, default_value_t = 16)]
    pub source_ips: u8,
    /// Connections being opened at once over the whole run. Keep it below the server's
    /// listen backlog (128 today): beyond it the kernel drops SYNs (1 s retransmissions).
    #[arg(long, default_value_t = 96)]
    pub concurrency: usize,
    /// Seconds allowed for one connect and handshake.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
}

/// `magpie bench connect`.
#[derive(Debug, Args)]
pub struct BenchConnectArgs {
    /// Shared bench flags.
    #[command(flatten)]
    pub common: BenchCommonArgs,
    /// Connections to open.
    #[arg(long)]
    pub connections: u64,
    /// Seconds to hold them once all are open (they ping, so long holds stay open).
    #[arg(long, default_value_t = 2.0)]
    pub hold: f64,
    /// The server's process id: report its RSS before and with the connections.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// `magpie bench p2p`.
#[derive(Debug, Args)]
pub struct BenchP2pArgs {
    /// Shared bench flags.
    #[command(flatten)]
    pub common: BenchCommonArgs,
    /// Sender → receiver pairs (fresh users per run).
    #[arg(long)]
    pub pairs: u64,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 100)]
    pub messages: u64,
    /// Total send rate in messages per second, on a fixed schedule (default: as fast as
    /// the window allows).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Most unacknowledged sends per sender.
    #[arg(long, default_value_t = 16)]
    pub window: u32,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds receivers wait for the last pushes once their sender is done.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
}

/// `magpie bench room`.
#[derive(Debug, Args)]
pub struct BenchRoomArgs {
    /// Shared bench flags.
    #[command(flatten)]
    pub common: BenchCommonArgs,
    /// Members of the room (one connection and fresh user each).
    #[arg(long)]
    pub members: u64,
    /// How many of the members send (spread evenly over them).
    #[arg(long)]
    pub senders: u64,
    /// Total send rate in messages per second, on a fixed schedule.
    #[arg(long)]
    pub rate: f64,
    /// Every K-th message is HIGH (0: none).
    #[arg(long, default_value_t = 0)]
    pub high_every: u64,
    /// Share of the other messages sent LOW (the rest NORMAL).
    #[arg(long, default_value_t = 0.5)]
    pub low_share: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Seconds members keep receiving after the send period (late HIGH retransmissions).
    #[arg(long, default_value_t = 3.0)]
    pub grace_s: f64,
    /// The room's downstream budget per connection, msgs/s (default: the server's).
    #[arg(long)]
    pub budget: Option<u32>,
    /// The room's send limit, msgs/s.
    #[arg(long, default_value_t = 100_000)]
    pub room_send_rate: u32,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// The server's metrics URL (http://127.0.0.1:PORT/metrics): report its room counters.
    #[arg(long)]
    pub metrics_url: Option<String>,
}

/// `magpie bench group`.
#[derive(Debug, Args)]
pub struct BenchGroupArgs {
    /// Shared bench flags.
    #[command(flatten)]
    pub common: BenchCommonArgs,
    /// Online members of the group (one connection and fresh user each).
    #[arg(long)]
    pub members: u64,
    /// Messages of the whole run (shared out among the senders).
    #[arg(long, default_value_t = 200)]
    pub messages: u64,
    /// How many of the members send (spread evenly over them).
    #[arg(long, default_value_t = 1)]
    pub senders: u64,
    /// Total send rate in messages per second, on a fixed schedule (default: as fast as
    /// the window allows).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Most unacknowledged sends per sender.
    #[arg(long, default_value_t = 64)]
    pub window: u32,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds a member waits for more once nothing new arrives (then what is missing is
    /// lost).
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Most users one create or add request names (the server's
    /// `limits.max_users_per_group_op`, 1,000 by default).
    #[arg(long, default_value_t = 1_000)]
    pub add_batch: usize,
    /// Create a super group even when the members fit an ordinary one (above 3,000 members
    /// it always is one).
    #[arg(long)]
    pub super_group: bool,
    /// The server's metrics URL (http://127.0.0.1:PORT/metrics): report its push counters.
    #[arg(long)]
    pub metrics_url: Option<String>,
}

/// `magpie group`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The operation.
    #[command(subcommand)]
    pub op: GroupOp,
}

/// A group operation.
#[derive(Debug, Subcommand)]
pub enum GroupOp {
    /// Create a group with you as owner; prints the group (with its `id`).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Initial members besides you, comma-separated.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        /// The id to use (default: the server picks one).
        #[arg(long)]
        id: Option<String>,
        /// Who may join: open, approval or invite.
        #[arg(long, default_value = "open")]
        policy: String,
        /// A super group (the large member limit).
        #[arg(long)]
        super_group: bool,
    },
    /// Add members.
    Add {
        /// The group.
        #[arg(long)]
        group: String,
        /// Users to add, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
    /// Remove (kick) members.
    Remove {
        /// The group.
        #[arg(long)]
        group: String,
        /// Users to remove, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
    /// Join an open group (or ask to join one that needs approval).
    Join {
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// Leave a group.
    Leave {
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// List current members (one page).
    Members {
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// Show the group's profile.
    Info {
        /// The group.
        #[arg(long)]
        group: String,
    },
    /// Dismiss the group (owner only).
    Dismiss {
        /// The group.
        #[arg(long)]
        group: String,
    },
}

/// `magpie conversations`.
#[derive(Debug, Args)]
pub struct ConversationsArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `magpie read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The conversation (`p2p:a:b` or `g:<group>`).
    #[arg(long)]
    pub conversation: String,
    /// Read up to this seq (default: the latest).
    #[arg(long)]
    pub seq: Option<u64>,
}

/// `magpie room`.
#[derive(Debug, Args)]
pub struct RoomArgs {
    /// The operation.
    #[command(subcommand)]
    pub op: RoomOp,
}

/// A live-room operation. Each takes the connection and identity flags (`--as`, ...).
#[derive(Debug, Subcommand)]
pub enum RoomOp {
    /// Create a live room with you as owner; prints the room (with its `room` id).
    Create(RoomCreateArgs),
    /// Join a room; prints the room.
    Join(RoomTargetArgs),
    /// Join a room, send one message, print its ack as JSON.
    Send(RoomSendArgs),
    /// Join a room and print each message as one JSON line.
    Tail(RoomTailArgs),
    /// Show a room.
    Info(RoomTargetArgs),
    /// Close a room (its owner): everyone in it is removed.
    Close(RoomTargetArgs),
    /// List the users in a room now (one page).
    Members(RoomTargetArgs),
    /// Remove a user's connections from a room (admins); they may join again.
    Kick(RoomUserArgs),
    /// Remove a user from a room and refuse their later joins (admins).
    Ban(RoomUserArgs),
    /// Lift a ban (admins).
    Unban(RoomUserArgs),
    /// Mute a user in a room (admins); --ms 0 lifts the mute.
    Mute(RoomMuteArgs),
    /// Change a room's settings (admins); prints the room.
    Set(RoomSetArgs),
}

/// `magpie room create`.
#[derive(Debug, Args)]
pub struct RoomCreateArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The id to use (default: the server picks one).
    #[arg(long)]
    pub id: Option<String>,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Downstream budget per connection, messages per second (default: the app's).
    #[arg(long)]
    pub budget: Option<u32>,
    /// Slow mode: minimum ms between two messages of one sender.
    #[arg(long)]
    pub slow_mode_ms: Option<u32>,
    /// Let members (not only admins) send HIGH messages.
    #[arg(long)]
    pub members_may_send_high: bool,
}

/// A room operation with no other argument.
#[derive(Debug, Args)]
pub struct RoomTargetArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The room.
    pub room: String,
}

/// `magpie room send`.
#[derive(Debug, Args)]
pub struct RoomSendArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The room.
    #[arg(long)]
    pub room: String,
    /// Priority (default: the server picks: high for admins, normal for others). A high
    /// message is retried under one client message id until acknowledged.
    #[arg(long, value_parser = ["high", "normal", "low"])]
    pub priority: Option<String>,
    /// Client message id (default: random).
    #[arg(long)]
    pub client_msg_id: Option<String>,
    /// The text to send.
    pub text: String,
}

/// `magpie room tail`.
#[derive(Debug, Args)]
pub struct RoomTailArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The room.
    #[arg(long)]
    pub room: String,
    /// Also print the high messages after this seq still in the room's log (0: all of
    /// them).
    #[arg(long)]
    pub since: Option<u64>,
    /// Exit after this many messages.
    #[arg(long)]
    pub count: Option<usize>,
    /// Exit after this many ms without a new message (default: run until killed).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

/// A moderation of one user.
#[derive(Debug, Args)]
pub struct RoomUserArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The user acted on.
    #[arg(long)]
    pub user: String,
    /// The room.
    pub room: String,
}

/// `magpie room mute`.
#[derive(Debug, Args)]
pub struct RoomMuteArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The user to mute.
    #[arg(long)]
    pub user: String,
    /// For how long, in ms (0: lift the mute).
    #[arg(long)]
    pub ms: u64,
    /// The room.
    pub room: String,
}

/// `magpie room set`: only the given settings change.
#[derive(Debug, Args)]
pub struct RoomSetArgs {
    /// Connection and identity.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The room.
    pub room: String,
    /// Downstream budget per connection, messages per second (0: the app's default).
    #[arg(long)]
    pub budget: Option<u32>,
    /// Slow mode: minimum ms between two messages of one sender (0: off).
    #[arg(long)]
    pub slow_mode_ms: Option<u32>,
    /// Room-wide send limit, messages per second (0: the server's default).
    #[arg(long)]
    pub send_rate: Option<u32>,
    /// Only admins may speak.
    #[arg(long)]
    pub mute_all: Option<bool>,
    /// Members may send high messages.
    #[arg(long)]
    pub members_may_send_high: Option<bool>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
}

/// Where the REST API is (the server's HTTP listener).
#[derive(Debug, Args, Clone)]
pub struct HttpArgs {
    /// Base URL of the server's HTTP listener (http:// or https://).
    #[arg(long, env = "MAGPIE_HTTP", default_value = "http://127.0.0.1:7780")]
    pub url: String,
    /// Extra trusted CA certificate (PEM), for https:// with a private CA.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

/// App credentials for the app routes (`/v1/...`), sent as HTTP Basic authentication.
#[derive(Debug, Args, Clone)]
pub struct AppAuthArgs {
    /// App id.
    #[arg(long, env = "MAGPIE_APP", default_value = "demo")]
    pub app: String,
    /// App secret (defaults to the demo app's public dev secret for app `demo`).
    #[arg(long, env = "MAGPIE_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
}

/// The super-admin key for the admin routes (`/v1/admin/...`), sent as a bearer token.
#[derive(Debug, Args, Clone)]
pub struct AdminKeyArgs {
    /// Admin key for `/v1/admin/...` (the server's `admin.key`; default: the public key of
    /// `serve --demo`, for `api` only with `--app demo`).
    #[arg(long, env = "MAGPIE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

/// `magpie api METHOD PATH [JSON]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Paths under /v1/admin are sent with `Authorization: Bearer ADMIN_KEY`; \
all others with `Authorization: Basic base64(APP:SECRET)`, unless -H sets Authorization.

Examples:
  magpie api GET /v1/users/alice
  magpie api POST /v1/users '{\"id\": \"dave\", \"nickname\": \"Dave\"}'
  echo '{\"users\": [{\"id\": \"erin\"}]}' | magpie api POST /v1/users/import -
  magpie api GET /v1/admin/apps"
)]
pub struct ApiArgs {
    /// Server URL and TLS roots.
    #[command(flatten)]
    pub http: HttpArgs,
    /// App credentials (app routes).
    #[command(flatten)]
    pub app: AppAuthArgs,
    /// Admin key (admin routes; defaults to the demo key only with `--app demo`).
    #[command(flatten)]
    pub admin: AdminKeyArgs,
    /// `Idempotency-Key` header: a retry with the same key and body gets the first answer.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Extra request header `NAME: VALUE` (repeatable).
    #[arg(long, short = 'H', value_name = "NAME:VALUE")]
    pub header: Vec<String>,
    /// HTTP method: GET, POST, PUT, PATCH, DELETE, ...
    pub method: String,
    /// Path and query, starting with `/` (e.g. `/v1/users/alice`).
    pub path: String,
    /// Request body: JSON text, or `-` to read it from stdin.
    pub json: Option<String>,
}

/// `magpie app`.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Server URL and TLS roots.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Admin key.
    #[command(flatten)]
    pub admin: AdminKeyArgs,
    /// The operation.
    #[command(subcommand)]
    pub op: AppOp,
}

/// An app operation (admin API).
#[derive(Debug, Subcommand)]
pub enum AppOp {
    /// Create an app; prints it with its secret (shown only here and on rotation).
    Create {
        /// App id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Initial settings: JSON, or `@FILE` to read them from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        settings: Option<String>,
    },
    /// List the apps (secrets only as previews).
    List,
    /// Show one app (secrets only as previews).
    Show {
        /// App id.
        #[arg(long)]
        id: String,
    },
    /// Issue a new secret; the previous one stays valid for the grace period.
    RotateSecret {
        /// App id.
        #[arg(long)]
        id: String,
        /// Seconds the previous secret stays valid (default: the server's, one day).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// Print an app's settings and their version.
    Settings {
        /// App id.
        #[arg(long)]
        id: String,
    },
    /// Replace an app's settings; prints the new settings and version.
    Set {
        /// App id.
        #[arg(long)]
        id: String,
        /// The settings: JSON, or `@FILE` to read them from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        settings: String,
        /// Only if the settings are still at this version (else CONFLICT).
        #[arg(long)]
        version: Option<u64>,
    },
}

/// `magpie user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// Server URL and TLS roots.
    #[command(flatten)]
    pub http: HttpArgs,
    /// App credentials.
    #[command(flatten)]
    pub app: AppAuthArgs,
    /// The operation.
    #[command(subcommand)]
    pub op: UserOp,
}

/// A user operation (REST API).
#[derive(Debug, Subcommand)]
pub enum UserOp {
    /// Create (or update) users from a JSON-lines file, in batches of at most 1000.
    ///
    /// Each line: {"id": "...", "nickname"?: "...", "avatar_url"?: "...", "custom"?: ...};
    /// blank lines are skipped. The whole file is checked before anything is sent. Each
    /// batch carries an Idempotency-Key derived from the file's SHA-256 and the batch's
    /// index, so re-running an interrupted import is safe (batches the server already
    /// answered are replayed, not applied again). Prints one JSON line:
    /// {"created": n, "existing": n, "batches": k, "replayed": r}.
    Import {
        /// The JSON-lines file, or `-` for stdin.
        file: PathBuf,
    },
}

/// `magpie config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The operation.
    #[command(subcommand)]
    pub op: ConfigOp,
}

/// A configuration operation.
#[derive(Debug, Subcommand)]
pub enum ConfigOp {
    /// Load and validate the configuration as `serve` would; print it as JSON, secrets
    /// redacted.
    ///
    /// Precedence, lowest to highest: built-in defaults, the TOML file (--config), then
    /// `MAGPIE_*` environment variables with nested keys joined by `__` (e.g.
    /// `MAGPIE_LISTEN__TCP=0.0.0.0:7700`, `MAGPIE_LIMITS__MAX_PAGE=100`). `serve`'s own
    /// flags (--data-dir, --listen-*, --demo, --memory) apply after these and are not
    /// checked here. App secrets and `admin.key` are printed as "[redacted]".
    ///
    /// Exit status: 0 when valid; 2 when not (the error, naming the key and where its value
    /// came from, goes to stderr).
    Check {
        /// TOML configuration file (see magpie.example.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}
