//! Command-line definitions (clap derive). The shapes follow SPEC.md §3.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keyward",
    version,
    about = "Administer bearer-token access to an HTTP API: users, roles, scopes, keys and tokens.",
    long_about = "Keyward administers bearer-token access to an HTTP API. Without a subcommand it opens the \
                  full-screen console. The embedded SQLite database in the platform data directory is used \
                  unless --database-url or KEYWARD_DATABASE_URL names another (sqlite://PATH or postgres://...)."
)]
pub struct Cli {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (prefer the environment variable for passwords).
    #[arg(
        long,
        global = true,
        env = "KEYWARD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Print exactly one JSON document on stdout (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up whatever is missing: schema, built-in scopes and roles, settings, first admin.
    Init {
        /// Add this domain (a host name such as free.example.com).
        #[arg(long)]
        domain: Option<String>,
        /// Set the issuer (`iss` of minted tokens), an http(s) URL.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Read and change settings.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Tenants, named by the host the API is published on.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// People and integration accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Named sets of scopes; one is the default for new users.
    #[command(subcommand)]
    Role(RoleCmd),
    /// Permission names, with implied scopes.
    #[command(subcommand)]
    Scope(ScopeCmd),
    /// Endpoint identities (participants) owned by users.
    #[command(subcommand)]
    Station(StationCmd),
    /// OS accounts allowed to administer Keyward.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// The audit log, newest first; `audit verify` checks its hash chain.
    Audit(AuditArgs),
    /// Semi-public affiliate ids for read-only lookups.
    #[command(subcommand)]
    Affiliate(AffiliateCmd),
    /// API keys: client credentials of one user.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Developer apps: OAuth clients with consent.
    #[command(subcommand)]
    App(AppCmd),
    /// Users' grants of scopes to developer apps.
    #[command(subcommand)]
    Consent(ConsentCmd),
    /// Access tokens: mint, list, revoke, inspect, verify, purge.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Keys that sign access tokens.
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCmd),
    /// The public signing keys as a JWK Set (RFC 7517).
    Jwks,
    /// The master key that encrypts private signing keys.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCmd),
    /// Make the database match a provisioning file (one transaction; idempotent).
    Apply {
        /// The provisioning file (TOML), e.g. assets/provision.example.toml.
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the secrets of created keys and apps to this new file (mode 0600) instead of stdout.
        #[arg(long)]
        secrets_out: Option<std::path::PathBuf>,
    },
    /// Print the current state in apply's format (never secrets); with --json, the same
    /// document as one JSON object.
    Export {
        /// Export only this domain (its users, stations, keys and apps).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Fill the database with realistic demo data.
    Demo {
        /// Number of users to create.
        #[arg(long, default_value_t = 200)]
        users: u64,
        /// Number of token records to create (default: two per user).
        #[arg(long)]
        tokens: Option<u64>,
    },
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell to print completions for.
        shell: clap_complete::Shell,
    },
    /// Run the token service (OAuth 2.0 token endpoint, sign-in, demo API).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Domain of requests whose Host header names no known domain.
        #[arg(long)]
        domain: Option<String>,
        /// Trust X-Forwarded-Host and X-Forwarded-For (only behind a reverse proxy).
        #[arg(long)]
        trust_proxy: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Every setting with its value.
    List,
    /// One setting.
    Get {
        /// The setting's name (`config list` shows them).
        key: String,
    },
    /// Change a setting.
    Set {
        /// The setting's name (`config list` shows them).
        key: String,
        /// Its new value.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Add a domain.
    Add {
        /// A host name, such as free.example.com.
        name: String,
    },
    /// List domains.
    List,
    /// Remove an empty domain.
    Rm {
        /// The domain's host name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user with its initial station and the default role (no token is issued).
    Add {
        /// The user's email address (their sign-in name, unique in the domain).
        email: String,
        /// The domain the user belongs to.
        #[arg(long)]
        domain: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Role (default: the default role).
        #[arg(long)]
        role: Option<String>,
        /// Name of the initial station (default: the display name or email).
        #[arg(long)]
        station: Option<String>,
        /// Identifiers of the initial station.
        #[command(flatten)]
        ids: StationIdArgs,
        /// Read a password from standard input (first line; never echoed).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Bulk sign-ups from CSV (email,name[,role][,station]); invalid rows are reported.
    Import {
        /// The CSV file: one row per user, email,name[,role][,station].
        file: std::path::PathBuf,
        /// The domain the users join.
        #[arg(long)]
        domain: String,
        /// Role for rows that name none (default: the default role).
        #[arg(long)]
        role: Option<String>,
        /// Check every row and report, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List users.
    List(UserListArgs),
    /// Show one user (by email or id).
    Show {
        /// The user's email or id.
        user: String,
        /// The user's domain, when the email is registered in several.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Disable a user and revoke their tokens.
    Disable {
        /// The user's email or id.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's email or id.
        user: String,
    },
    /// Delete a user with their stations and credentials.
    Rm {
        /// The user's email or id.
        user: String,
        /// The user's domain, when the email is registered in several.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Move a user to another role (credentials beyond it are revoked or trimmed).
    SetRole {
        /// The user's email or id.
        user: String,
        /// The role to move them to.
        role: String,
    },
    /// Change a user's display name (the email is the account and stays).
    Edit {
        /// The user's email or id.
        user: String,
        /// The new display name ("" clears it).
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    /// Only users of this domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Only users holding this role.
    #[arg(long)]
    pub role: Option<String>,
    /// active or disabled.
    #[arg(long)]
    pub status: Option<String>,
    /// Email prefix, or any part of email or name (3+ characters).
    #[arg(long)]
    pub search: Option<String>,
    /// Only active users whose API access has not been enabled yet (the support inbox).
    #[arg(long)]
    pub pending: bool,
    /// Sort by email or created.
    #[arg(long, default_value = "email")]
    pub sort: String,
    /// Newest/last first.
    #[arg(long)]
    pub desc: bool,
    /// Maximum rows to print (0 = all, paged from the database).
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
}

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Create a role.
    Add {
        /// The role's name, such as Partner.
        name: String,
        /// Comma-separated scopes.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// What the role is for, in a few words.
        #[arg(long)]
        description: Option<String>,
    },
    /// List roles with their effective scopes.
    List,
    /// Show one role.
    Show {
        /// The role's name.
        role: String,
    },
    /// Remove a role; users holding it need --reassign-to.
    Rm {
        /// The role's name.
        role: String,
        /// Move the role's users to this role (needed when anyone holds it).
        #[arg(long)]
        reassign_to: Option<String>,
    },
    /// Grant scopes to a role.
    Grant {
        /// The role's name.
        role: String,
        /// Scopes to grant (several arguments, or comma-separated).
        #[arg(required = true, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// Revoke scopes from a role (tokens and keys beyond it are revoked or trimmed).
    Revoke {
        /// The role's name.
        role: String,
        /// Scopes to revoke (several arguments, or comma-separated).
        #[arg(required = true, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// Make a role the default for new users.
    Default {
        /// The role's name.
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    /// Create a scope.
    Add {
        /// The scope's name: a lower-case letter, then letters, digits, '_', '.', ':' or '-'.
        name: String,
        /// What the scope allows, in plain words (shown on the consent page).
        #[arg(long)]
        description: Option<String>,
        /// Comma-separated scopes this one implies.
        #[arg(long, value_delimiter = ',')]
        implies: Vec<String>,
    },
    /// Change a scope's description or implied scopes (cycles are rejected).
    Edit {
        /// The scope's name.
        name: String,
        /// What the scope allows, in plain words (shown on the consent page).
        #[arg(long)]
        description: Option<String>,
        /// Comma-separated scopes this one implies (replaces the current list; "" for none).
        #[arg(long, value_delimiter = ',')]
        implies: Option<Vec<String>>,
    },
    /// List scopes.
    List,
    /// Remove a custom scope that no role grants.
    Rm {
        /// The scope's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StationCmd {
    /// Add a station to a user.
    Add {
        /// The station's name.
        name: String,
        /// The owner's email or id.
        #[arg(long)]
        user: String,
        /// The owner's domain, when the email is registered in several.
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        ids: StationIdArgs,
    },
    /// List stations.
    List {
        /// Only stations of this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only stations of this user (email or id).
        #[arg(long)]
        user: Option<String>,
        /// Maximum rows to print (0 = all, paged from the database).
        #[arg(long, default_value_t = 0)]
        limit: u64,
    },
    /// Remove a station by id.
    Rm {
        /// The station's id (`station list` shows them).
        id: String,
    },
    /// Change a station's identifiers (what the consent page recognises it by); only
    /// the flags given change, and "" clears one.
    Edit {
        /// The station's id (`station list` shows them).
        id: String,
        /// EU VAT id ("" clears it).
        #[arg(long)]
        eu_vat_id: Option<String>,
        /// Registration number, with its country ("" clears both, with --country "").
        #[arg(long)]
        rn: Option<String>,
        /// ISO 3166-1 alpha-2 country code of the registration number.
        #[arg(long)]
        country: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Allow an OS account to administer Keyward.
    Add {
        /// The OS account's user name.
        os_account: String,
        /// viewer, support or admin.
        #[arg(long)]
        role: String,
        /// Limit to these domains (comma-separated).
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
    },
    /// List operators.
    List,
    /// Remove an operator.
    Rm {
        /// The OS account's user name.
        os_account: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub verify: Option<AuditSub>,
    /// Only events newer than this (e.g. 24h, 7d).
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only events by this actor (prefix of account@host).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events whose target contains this text.
    #[arg(long)]
    pub target: Option<String>,
    /// Maximum events to print, newest first (0 = all, paged from the database); when
    /// more match, stderr says so.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
}

#[derive(Debug, Subcommand)]
pub enum AuditSub {
    /// Walk the hash chain and report the first broken link.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum AffiliateCmd {
    /// Show a user's affiliate id.
    Show {
        /// The user's email or id.
        user: String,
    },
    /// Replace a user's affiliate id.
    Rotate {
        /// The user's email or id.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create an API key; the secret is shown once.
    Create {
        /// The key's owner (email or id).
        #[arg(long)]
        user: String,
        /// The owner's domain, when the email is registered in several.
        #[arg(long)]
        domain: Option<String>,
        /// A label for the key, such as erp-sync.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated scopes (default: the role's effective scopes).
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// Expiry, such as 90d.
        #[arg(long, allow_hyphen_values = true)]
        expires_in: Option<String>,
        /// Redirect URIs for the owner's own authorization-code flow.
        #[arg(long = "redirect-uri")]
        redirect_uri: Vec<String>,
        /// Do not issue refresh tokens with client-credentials grants.
        #[arg(long)]
        no_refresh: bool,
        /// Exempt the key from the token service's rate limits (admins only).
        #[arg(long)]
        rate_exempt: bool,
    },
    /// List API keys.
    List {
        /// Only keys of this user (email or id).
        #[arg(long)]
        user: Option<String>,
        /// Only keys unused for this long (e.g. 90d).
        #[arg(long)]
        unused_for: Option<String>,
        /// Only keys expiring within this long (e.g. 14d).
        #[arg(long)]
        expiring_within: Option<String>,
    },
    /// Delete a key; revokes every token minted through it.
    Rm {
        /// The key's client_id (`key list` shows them).
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCmd {
    /// Register a developer app; the secret is shown once.
    Create {
        /// The app's name, shown to users on the consent page.
        name: String,
        /// The developer who owns the app (email or id).
        #[arg(long)]
        owner: String,
        /// A redirect URI the app may use (repeat for several): https, or http on loopback.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uri: Vec<String>,
        /// Comma-separated scopes the app may ask for (default: read).
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
    },
    /// List apps.
    List,
    /// Remove an app with its consents; revokes its tokens.
    Rm {
        /// The app's client_id (`app list` shows them).
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCmd {
    /// Record a user's consent to an app.
    Grant {
        /// The user's email or id.
        user: String,
        /// The app's client_id.
        app: String,
        /// Comma-separated scopes the user grants the app.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// List consents.
    List {
        /// Only this user's consents (email or id).
        #[arg(long)]
        user: Option<String>,
    },
    /// Withdraw a consent; revokes the app's tokens for the user.
    Revoke {
        /// The user's email or id.
        user: String,
        /// The app's client_id.
        app: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Mint an access token for a user (within the role, and the key with --key).
    Mint {
        /// The token's user (email or id).
        #[arg(long)]
        user: String,
        /// The user's domain, when the email is registered in several.
        #[arg(long)]
        domain: Option<String>,
        /// Comma-separated scopes (default: all that the role, and the key with --key, allow).
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// Lifetime, such as 24h (default: the default_ttl setting).
        #[arg(long, allow_hyphen_values = true)]
        ttl: Option<String>,
        /// Mint through this API key (client_id).
        #[arg(long)]
        key: Option<String>,
    },
    /// List token records, newest first.
    List {
        /// Only this user's tokens (email or id).
        #[arg(long)]
        user: Option<String>,
        /// Only unrevoked, unexpired tokens.
        #[arg(long)]
        active: bool,
        /// Only tokens expiring within this long (e.g. 7d).
        #[arg(long)]
        expiring_within: Option<String>,
        /// Maximum rows to print (0 = all, paged from the database).
        #[arg(long, default_value_t = 0)]
        limit: u64,
    },
    /// Revoke tokens by jti, of a user, or minted through a key.
    Revoke {
        /// Token ids (`token list` shows them).
        jti: Vec<String>,
        /// Revoke every active token of this user (email or id).
        #[arg(long, conflicts_with_all = ["jti", "key"])]
        user: Option<String>,
        /// Revoke every active token minted through this API key (client_id).
        #[arg(long, conflicts_with_all = ["jti", "user"])]
        key: Option<String>,
        /// Why, kept in the audit log and shown by `token inspect`.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Decode and explain a token: header, claims, signature, revoked?, expired? (`-` reads stdin)
    Inspect {
        /// The token (a JWT), or `-` to read it from standard input.
        token: String,
    },
    /// Exit 0 if the token is valid (and holds the scopes), 1 otherwise (`-` reads stdin).
    Verify {
        /// The token (a JWT), or `-` to read it from standard input.
        token: String,
        /// Fail unless the token holds this scope (repeat for several).
        #[arg(long = "require-scope")]
        require_scope: Vec<String>,
    },
    /// Drop records of tokens that expired longer ago than this (e.g. 30d).
    Purge {
        /// How long ago the tokens expired, such as 30d.
        #[arg(long, allow_hyphen_values = true)]
        expired_before: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCmd {
    /// List signing keys.
    List,
    /// Make a new active signing key; the previous one stays verify-only.
    Rotate {
        /// ES256 (default), EdDSA, RS256, or HS256 (with --shared-secret).
        #[arg(long, default_value = "ES256", ignore_case = true,
              value_parser = clap::builder::PossibleValuesParser::new(["ES256", "EdDSA", "RS256", "HS256"]))]
        alg: String,
        /// Allow HS256: a shared secret, never published in the JWK Set.
        #[arg(long)]
        shared_secret: bool,
    },
    /// Remove a verify-only key.
    Retire {
        /// The key id (a base64url thumbprint: it may begin with '-').
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Revoke unexpired tokens signed by it instead of refusing.
        #[arg(long)]
        revoke_tokens: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCmd {
    /// Re-encrypt every private key under a new master key.
    Rotate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "keyward",
            "signing-key",
            "retire",
            "-z22GIn875wxv6yTysaMiOubxwdaDlITZ7g1_VCSg-I",
            "--revoke-tokens",
        ])
        .expect("a kid starting with '-' is a value");
        match cli.command {
            Some(Command::SigningKey(SigningKeyCmd::Retire { kid, revoke_tokens })) => {
                assert!(kid.starts_with("-z22"));
                assert!(revoke_tokens);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every argument of every command says what it is in `--help`.
    #[test]
    fn every_argument_is_explained() {
        use clap::CommandFactory;
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in c.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "keyward", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}

/// A station's identifiers (`station add`, and `user add` for the initial station).
#[derive(Debug, Args)]
pub struct StationIdArgs {
    /// EU VAT id.
    #[arg(long)]
    pub eu_vat_id: Option<String>,
    /// Registration number (with --country).
    #[arg(long, requires = "country")]
    pub rn: Option<String>,
    /// ISO 3166-1 alpha-2 country code of the registration number (with --rn).
    #[arg(long, requires = "rn")]
    pub country: Option<String>,
}
