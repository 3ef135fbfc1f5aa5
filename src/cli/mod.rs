//! The command-line front-end: parses arguments, calls the core, prints results.

pub mod args;
mod creds;
pub mod output;

use args::*;
use keyward::model::{self, UserStatus};
use keyward::service::demo::DemoOptions;
use keyward::service::provision::ApplyMode;
use keyward::store::audit::AuditQuery;
use keyward::store::directory::{UserQuery, UserSort};
use keyward::store::{Target, Val};
use keyward::{Actor, Error, Keyward, OsIdentity};
use output::{date, datetime, fields, json, table};
use secrecy::SecretString;
use serde_json::json as j;
use std::io::{BufRead, IsTerminal};

/// A failure of a CLI command, with its exit code.
pub enum Failure {
    Core(Error),
    Usage(String),
    /// Already reported on stdout (e.g. `token verify` of an invalid token).
    Silent(i32),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

type R<T = ()> = std::result::Result<T, Failure>;

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Core(e) => e.exit_code(),
            Failure::Usage(_) => 2,
            Failure::Silent(c) => *c,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Core(e) => e.code(),
            Failure::Usage(_) => "usage",
            Failure::Silent(_) => "invalid_token",
        }
    }
    pub fn message(&self) -> String {
        match self {
            Failure::Core(e) => e.to_string(),
            Failure::Usage(m) => m.clone(),
            Failure::Silent(_) => String::new(),
        }
    }
}

/// Prints a failure on stderr (JSON with `--json`) and returns the exit code.
pub fn report(f: &Failure, as_json: bool) -> i32 {
    if let Failure::Silent(c) = f {
        return *c;
    }
    if as_json {
        eprintln!("{}", j!({"error": f.code(), "message": f.message()}));
    } else {
        eprintln!("error: {}", f.message());
    }
    f.exit_code()
}

/// Resolves which database to use: the URL given, or the embedded default.
/// `one_command`: the process runs one command (one PostgreSQL connection is enough;
/// see [`Target::single_connection`]).
pub fn target(url: Option<&str>, one_command: bool) -> R<Target> {
    match url {
        Some(u) => {
            let given_in_argv =
                std::env::args().any(|a| a == "--database-url" || a.starts_with("--database-url="));
            if given_in_argv && keyward::store::redact_url(u) != u {
                warn(
                    "the database password is visible in the process list and shell history; \
                     prefer KEYWARD_DATABASE_URL or a PGPASSFILE",
                );
            }
            Ok(Target {
                url: u.to_string(),
                implicit: false,
                single_connection: one_command,
            })
        }
        None => {
            let dirs = directories::BaseDirs::new().ok_or_else(|| {
                Error::Environment(
                    "cannot find the home directory for the default database; pass --database-url"
                        .into(),
                )
            })?;
            let path = dirs.data_dir().join("keyward").join("keyward.db");
            Ok(Target {
                url: Target::sqlite_path(&path),
                implicit: true,
                single_connection: one_command,
            })
        }
    }
}

/// Opens the database and resolves the acting operator (`one_command` as for [`target`]).
pub async fn open(url: Option<&str>, one_command: bool) -> R<(Keyward, Actor)> {
    let os = OsIdentity::current()?;
    let t = target(url, one_command)?;
    let first_use = t.implicit && t.sqlite_file().is_some_and(|p| !p.exists());
    let kw = Keyward::open(t, &os).await?;
    if first_use {
        eprintln!(
            "keyward: first use: created {} and the master key {} (back it up); {} is its first admin",
            kw.describe(),
            keyward::service::keyring::default_master_key_path().display(),
            os.account
        );
    }
    let actor = kw.actor(&os).await?;
    Ok((kw, actor))
}

pub async fn run(cli: Cli) -> R {
    let Some(cmd) = cli.command else {
        unreachable!("the console handles the no-subcommand case")
    };
    let js = cli.json;
    let url = cli.database_url.as_deref();
    match cmd {
        Command::Init { domain, issuer } => init(url, js, domain, issuer).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "keyward",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Serve {
            listen,
            domain,
            trust_proxy,
        } => {
            // The service acts as itself (`keyward-serve`), not as an operator.
            let kw = Keyward::open(target(url, false)?, &OsIdentity::current()?).await?;
            let domain = domain
                .map(|d| model::DomainName::parse(&d).map(|d| d.to_string()))
                .transpose()?;
            let opts = crate::server::ServeOptions {
                listen,
                domain,
                trust_proxy,
            };
            Ok(crate::server::run(kw, opts).await?)
        }
        cmd => {
            let (kw, actor) = open(url, true).await?;
            let out = dispatch(&kw, &actor, js, cmd).await;
            kw.db().close().await;
            out
        }
    }
}

async fn init(url: Option<&str>, js: bool, domain: Option<String>, issuer: Option<String>) -> R {
    let os = OsIdentity::current()?;
    let t = target(url, true)?;
    let (kw, _fresh) = Keyward::open_for_init(t).await?;
    let rep = kw
        .init(&os, &keyward::service::InitOptions { domain, issuer })
        .await?;
    if js {
        json(&j!({"database": kw.describe(), "changed": rep.changed(), "done": rep.done}));
    } else if rep.changed() {
        println!("Initialised {}:", kw.describe());
        for d in &rep.done {
            println!("  - {d}");
        }
    } else {
        println!("Nothing to do: {} is already initialised.", kw.describe());
    }
    if let Some(p) = kw.target().sqlite_file() {
        warn_world_readable(&p);
    }
    kw.db().close().await;
    Ok(())
}

fn warn_world_readable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(p)
        && m.permissions().mode() & 0o077 != 0
    {
        warn(&format!(
            "{} is readable by other accounts (mode {:o}); run `chmod 600 {}`",
            p.display(),
            m.permissions().mode() & 0o777,
            p.display()
        ));
    }
}

fn parse_since(s: &str) -> R<i64> {
    let t = model::Ttl::parse("--since", s)?;
    Ok(model::now() - t.secs())
}

async fn dispatch(kw: &Keyward, a: &Actor, js: bool, cmd: Command) -> R {
    match cmd {
        Command::Init { .. } | Command::Completions { .. } | Command::Serve { .. } => {
            unreachable!()
        }
        Command::Config(c) => match c {
            ConfigCmd::List => {
                let rows = kw.config_list(a).await?;
                if js {
                    json(&rows.iter().map(|r| j!({"id": r.key, "key": r.key, "value": r.value, "updated_at": model::rfc3339(r.updated_at)})).collect::<Vec<_>>());
                } else {
                    table(
                        &["KEY", "VALUE", "MEANING"],
                        rows.iter()
                            .map(|r| {
                                vec![
                                    r.key.clone(),
                                    r.value.clone(),
                                    keyward::service::settings::describe(&r.key).to_string(),
                                ]
                            })
                            .collect(),
                    );
                }
                Ok(())
            }
            ConfigCmd::Get { key } => {
                let r = kw.config_get(a, &key).await?;
                if js {
                    json(&j!({"key": r.key, "value": r.value}));
                } else {
                    println!("{}", r.value);
                }
                Ok(())
            }
            ConfigCmd::Set { key, value } => {
                let (before, after) = kw.config_set(a, &key, &value).await?;
                if js {
                    json(&j!({"key": key, "before": before, "value": after}));
                } else if before == after {
                    println!("{key} is already {after}");
                } else {
                    println!("{key}: {before} → {after}");
                }
                Ok(())
            }
        },
        Command::Domain(c) => match c {
            DomainCmd::Add { name } => {
                let d = kw.domain_add(a, &name).await?;
                if js {
                    json(&d);
                } else {
                    println!("Added domain {}", d.name);
                }
                Ok(())
            }
            DomainCmd::List => {
                let ds = kw.domain_list(a).await?;
                if js {
                    json(&ds);
                } else if ds.is_empty() {
                    println!(
                        "No domains yet; add one with `keyward domain add free.example.com` (or load demo data with `keyward demo`)."
                    );
                } else {
                    table(
                        &["DOMAIN", "CREATED"],
                        ds.iter()
                            .map(|d| vec![d.name.clone(), date(d.created_at)])
                            .collect(),
                    );
                }
                Ok(())
            }
            DomainCmd::Rm { name } => {
                kw.domain_rm(a, &name).await?;
                if js {
                    json(&j!({"removed": name}));
                } else {
                    println!("Removed domain {name}");
                }
                Ok(())
            }
        },
        Command::User(c) => user(kw, a, js, c).await,
        Command::Role(c) => role(kw, a, js, c).await,
        Command::Scope(c) => scope(kw, a, js, c).await,
        Command::Station(c) => station(kw, a, js, c).await,
        Command::Operator(c) => match c {
            OperatorCmd::Add {
                os_account,
                role,
                domains,
            } => {
                let o = kw.operator_add(a, &os_account, &role, &domains).await?;
                // Likely a typo, unless the database is shared with other hosts.
                if matches!(nix::unistd::User::from_name(&o.account), Ok(None)) {
                    warn(&format!(
                        "there is no OS account {:?} on this host; the operator can only act where that account runs keyward",
                        o.account
                    ));
                }
                if js {
                    json(&o);
                } else {
                    let scope = if o.domains.is_empty() {
                        "all domains".to_string()
                    } else {
                        o.domains.join(", ")
                    };
                    println!("Added operator {} ({}, {scope})", o.account, o.role);
                }
                Ok(())
            }
            OperatorCmd::List => {
                let ops = kw.operator_list(a).await?;
                if js {
                    json(&ops);
                } else {
                    table(
                        &["ACCOUNT", "ROLE", "DOMAINS", "ADDED"],
                        ops.iter()
                            .map(|o| {
                                let d = if o.domains.is_empty() {
                                    "all".to_string()
                                } else {
                                    o.domains.join(",")
                                };
                                vec![o.account.clone(), o.role.clone(), d, date(o.created_at)]
                            })
                            .collect(),
                    );
                }
                Ok(())
            }
            OperatorCmd::Rm { os_account } => {
                kw.operator_rm(a, &os_account).await?;
                if js {
                    json(&j!({"removed": os_account}));
                } else {
                    println!("Removed operator {os_account}");
                }
                Ok(())
            }
        },
        Command::Audit(args) => {
            if args.verify.is_some() {
                let r = kw.audit_verify(a).await?;
                if js {
                    json(&r);
                } else if r.ok {
                    println!("Audit chain intact: {} event(s) verified.", r.events);
                } else {
                    println!(
                        "Audit chain BROKEN at event {} (position {}): {}",
                        r.first_bad_seq.unwrap_or_default(),
                        r.first_bad_position.unwrap_or_default(),
                        r.problem.clone().unwrap_or_default()
                    );
                }
                if !r.ok {
                    return Err(Failure::Core(Error::Refused(
                        "the audit chain does not verify".into(),
                    )));
                }
                return Ok(());
            }
            let mut q = AuditQuery {
                since: args.since.as_deref().map(parse_since).transpose()?,
                actor: args.actor,
                target: args.target,
                ..Default::default()
            };
            let mut printed = 0u64;
            let fetch = async |want: i64| -> R<Vec<keyward::service::audit::AuditView>> {
                q.limit = want;
                let page = kw.audit_list(a, q.clone()).await?;
                if let Some(last) = page.last() {
                    q.before_seq = Some(last.seq);
                }
                printed += page.len() as u64;
                Ok(page)
            };
            output::paged(
                js,
                args.limit,
                &["SEQ", "AT", "ACTOR", "ORIGIN", "ACTION", "TARGET"],
                "No events match.",
                fetch,
                |e| {
                    vec![
                        e.seq.to_string(),
                        e.at.replace('T', " ").trim_end_matches('Z').to_string(),
                        e.actor.clone(),
                        e.origin.clone(),
                        e.action.clone(),
                        e.target.clone(),
                    ]
                },
            )
            .await?;
            // Cut at --limit: say so (on stderr, so the output stays one document).
            if args.limit > 0 && printed == args.limit {
                q.limit = 1;
                if !kw.audit_list(a, q).await?.is_empty() {
                    eprintln!("(the newest {printed} events; --limit N shows more, --limit 0 all)");
                }
            }
            Ok(())
        }
        Command::Affiliate(c) => {
            let (u, rotated) = match c {
                AffiliateCmd::Show { user } => (kw.affiliate_show(a, &user).await?, false),
                AffiliateCmd::Rotate { user } => (kw.affiliate_rotate(a, &user).await?, true),
            };
            if js {
                json(&j!({"id": u.id, "email": u.email, "affiliate_id": u.affiliate_id}));
            } else {
                println!("{}{}", u.affiliate_id, if rotated { "  (new)" } else { "" });
            }
            Ok(())
        }
        Command::Key(c) => creds::key(kw, a, js, c).await,
        Command::App(c) => creds::app(kw, a, js, c).await,
        Command::Consent(c) => creds::consent(kw, a, js, c).await,
        Command::Token(c) => creds::token(kw, a, js, c).await,
        Command::SigningKey(c) => creds::signing_key(kw, a, js, c).await,
        Command::MasterKey(MasterKeyCmd::Rotate) => {
            let p = kw.master_key_rotate(a).await?;
            if js {
                json(&j!({"master_key_file": p.display().to_string()}));
            } else {
                println!(
                    "Re-encrypted the signing keys under a new master key in {} (previous key kept as {}.old).",
                    p.display(),
                    p.display()
                );
            }
            Ok(())
        }
        Command::Apply {
            file,
            dry_run,
            secrets_out,
        } => apply(kw, a, js, &file, dry_run, secrets_out.as_deref()).await,
        Command::Export { domain } => {
            // With --json, the same document as one JSON object (for scripts; apply
            // reads the TOML form).
            if js {
                json(&kw.export_state(a, domain.as_deref()).await?);
            } else {
                print!("{}", kw.export(a, domain.as_deref()).await?);
            }
            Ok(())
        }
        Command::Jwks => {
            json(&kw.jwks().await?);
            Ok(())
        }
        Command::Demo { users, tokens } => {
            let tty = std::io::stderr().is_terminal() && !js;
            let bar = tty.then(|| {
                let b = indicatif::ProgressBar::new(users);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} users {elapsed}")
                        .expect("valid template"),
                );
                b
            });
            let rep = kw
                .demo(
                    a,
                    DemoOptions {
                        users,
                        tokens: tokens.unwrap_or(users * 2),
                    },
                    |done, _| {
                        if let Some(b) = &bar {
                            b.set_position(done);
                        }
                    },
                )
                .await?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if js {
                json(&rep);
            } else {
                println!(
                    "Demo data loaded: {} users, {} stations, {} API keys, {} developer apps, {} token records in {} (the keys' and apps' secrets are not shown: create your own to call the token service)",
                    rep.users,
                    rep.stations,
                    rep.keys,
                    rep.apps,
                    rep.tokens,
                    rep.domains.join(", ")
                );
            }
            Ok(())
        }
    }
}

fn read_password_stdin() -> R<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("cannot read the password from stdin: {e}")))?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        return Err(Failure::Usage(
            "--password-stdin: standard input was empty".into(),
        ));
    }
    Ok(SecretString::from(p))
}

fn user_row(u: &keyward::store::directory::UserRow) -> Vec<String> {
    vec![
        u.email.clone(),
        u.name.clone(),
        u.domain.clone(),
        u.role.clone(),
        u.status.clone(),
        u.api_access.clone(),
        date(u.created_at),
    ]
}

const USER_HEADERS: &[&str] = &[
    "EMAIL", "NAME", "DOMAIN", "ROLE", "STATUS", "API", "CREATED",
];

async fn user(kw: &Keyward, a: &Actor, js: bool, c: UserCmd) -> R {
    match c {
        UserCmd::Add {
            email,
            domain,
            name,
            role,
            station,
            ids,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let u = kw
                .user_add(
                    a,
                    keyward::service::directory::NewUser {
                        email,
                        domain,
                        name,
                        role,
                        password,
                        station,
                        station_ids: keyward::service::directory::StationIds {
                            eu_vat_id: ids.eu_vat_id,
                            rn: ids.rn,
                            country: ids.country,
                        },
                    },
                )
                .await?;
            if js {
                json(&u);
            } else {
                println!(
                    "Created user {} in {} with role {} and station {:?}; API access pending (no token issued).",
                    u.user.email,
                    u.user.domain,
                    u.user.role,
                    u.stations.first().map(|s| s.name.as_str()).unwrap_or("")
                );
            }
            Ok(())
        }
        UserCmd::Import {
            file,
            domain,
            role,
            dry_run,
        } => {
            let bytes = std::fs::read(&file).map_err(|e| {
                Failure::Core(Error::invalid(
                    "file",
                    file.display().to_string(),
                    format!("a readable CSV file ({e})"),
                ))
            })?;
            let tty = std::io::stderr().is_terminal() && !js;
            let bar = tty.then(|| {
                let b = indicatif::ProgressBar::new_spinner();
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {pos} rows {elapsed}")
                        .expect("valid template"),
                );
                b
            });
            let r = kw
                .user_import(a, &domain, role.as_deref(), &bytes, dry_run, |n| {
                    if let Some(b) = &bar {
                        b.set_position(n);
                    }
                })
                .await?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if js {
                json(&r);
            } else {
                let verb = if dry_run { "would create" } else { "created" };
                println!(
                    "{} rows: {verb} {} user(s), {} refused.",
                    r.rows,
                    r.created,
                    r.errors.len()
                );
                if !r.errors.is_empty() {
                    table(
                        &["LINE", "EMAIL", "REASON"],
                        r.errors
                            .iter()
                            .map(|e| vec![e.line.to_string(), e.email.clone(), e.reason.clone()])
                            .collect(),
                    );
                }
            }
            if !r.errors.is_empty() {
                return Err(Failure::Silent(1));
            }
            Ok(())
        }
        UserCmd::List(l) => {
            let mut q = kw
                .user_query(
                    a,
                    l.domain.as_deref(),
                    l.role.as_deref(),
                    l.status.as_deref(),
                )
                .await?;
            q.pending = l.pending;
            q.search = l.search;
            q.desc = l.desc;
            q.sort = match l.sort.as_str() {
                "email" => UserSort::Email,
                "created" => UserSort::Created,
                other => {
                    return Err(Failure::Core(Error::invalid(
                        "--sort",
                        other,
                        "email or created",
                    )));
                }
            };
            page_users(kw, a, js, q, l.limit).await
        }
        UserCmd::Show { user, domain } => {
            let d = kw.user_show(a, &user, domain.as_deref()).await?;
            if js {
                json(&d);
            } else {
                let u = &d.user;
                fields(&[
                    ("email", u.email.clone()),
                    ("name", u.name.clone()),
                    ("id", u.id.clone()),
                    ("domain", u.domain.clone()),
                    (
                        "role",
                        format!("{} ({})", u.role, d.effective_scopes.join(" ")),
                    ),
                    ("status", u.status.clone()),
                    ("api access", u.api_access.clone()),
                    (
                        "password",
                        if u.has_password {
                            "set".into()
                        } else {
                            "none".into()
                        },
                    ),
                    ("affiliate", u.affiliate_id.clone()),
                    ("keys", d.keys.to_string()),
                    ("apps", d.apps.to_string()),
                    ("active tokens", d.active_tokens.to_string()),
                    ("created", datetime(u.created_at)),
                ]);
                println!();
                table(
                    &["STATION", "ID", "EU VAT ID", "REG. NO", "COUNTRY"],
                    d.stations
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.id.clone(),
                                s.eu_vat_id.clone().unwrap_or_default(),
                                s.registration_number.clone().unwrap_or_default(),
                                s.country_code.clone().unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(())
        }
        UserCmd::Disable { user } => set_status(kw, a, js, &user, UserStatus::Disabled).await,
        UserCmd::Enable { user } => set_status(kw, a, js, &user, UserStatus::Active).await,
        UserCmd::Rm { user, domain } => {
            let revoked = kw.user_rm(a, &user, domain.as_deref()).await?;
            if js {
                json(&j!({"removed": user, "revoked_tokens": revoked}));
            } else {
                println!(
                    "Removed user {user} with their stations and credentials; revoked {revoked} token(s)."
                );
            }
            Ok(())
        }
        UserCmd::Edit { user, name } => {
            let before = kw.user_show(a, &user, None).await?;
            let u = kw
                .user_rename(a, &before.user.id, before.user.version, &name)
                .await?;
            if js {
                json(&j!({"id": u.id, "email": u.email, "name": u.name}));
            } else {
                println!(
                    "{} is now named {:?}.",
                    u.email,
                    keyward::text::inert(&u.name)
                );
            }
            Ok(())
        }
        UserCmd::SetRole { user, role } => {
            let (u, n) = kw.user_set_role(a, &user, &role).await?;
            if js {
                json(
                    &j!({"id": u.id, "email": u.email, "role": u.role, "revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys}),
                );
            } else {
                println!("{} now has role {}; {}.", u.email, u.role, n.summary());
            }
            Ok(())
        }
    }
}

async fn set_status(kw: &Keyward, a: &Actor, js: bool, user: &str, s: UserStatus) -> R {
    let (u, revoked) = kw.user_set_status(a, user, s).await?;
    if js {
        json(
            &j!({"id": u.id, "email": u.email, "status": u.status, "changed": revoked.is_some(), "revoked_tokens": revoked.unwrap_or(0)}),
        );
    } else {
        match (revoked, s) {
            (None, _) => println!("{} is {} already; nothing changed.", u.email, u.status),
            (Some(n), UserStatus::Disabled) => {
                println!("Disabled {}; revoked {n} active token(s).", u.email)
            }
            (Some(_), _) => println!("Enabled {}.", u.email),
        }
    }
    Ok(())
}

/// Streams users page by page (keyset paging), so any number of rows prints in
/// constant memory.
async fn page_users(kw: &Keyward, a: &Actor, js: bool, mut q: UserQuery, limit: u64) -> R {
    let fetch = async |want: i64| -> R<Vec<keyward::store::directory::UserRow>> {
        q.limit = want;
        let page = kw.user_list(a, q.clone()).await?;
        if let Some(last) = page.last() {
            let key = match q.sort {
                UserSort::Email => Val::from(last.email.to_lowercase()),
                UserSort::Created => Val::from(last.created_at),
            };
            q.after = Some((key, last.id.clone()));
        }
        Ok(page)
    };
    output::paged(js, limit, USER_HEADERS, "No users match.", fetch, user_row).await
}

async fn role(kw: &Keyward, a: &Actor, js: bool, c: RoleCmd) -> R {
    use keyward::service::scopes::RoleView;
    let show = |r: &RoleView| {
        fields(&[
            (
                "role",
                format!("{}{}", r.name, if r.default { " (default)" } else { "" }),
            ),
            (
                "scopes",
                if r.all_scopes {
                    "every scope".into()
                } else {
                    r.scopes.join(" ")
                },
            ),
            ("effective", r.effective_scopes.join(" ")),
            ("users", r.users.to_string()),
            ("description", r.description.clone()),
        ])
    };
    match c {
        RoleCmd::Add {
            name,
            scopes,
            description,
        } => {
            let r = kw
                .role_add(a, &name, &scopes, description.as_deref())
                .await?;
            if js {
                json(&r)
            } else {
                println!("Created role {}", r.name);
                show(&r)
            }
        }
        RoleCmd::List => {
            let rs = kw.role_list(a).await?;
            if js {
                json(&rs);
            } else {
                table(
                    &["ROLE", "DEFAULT", "USERS", "EFFECTIVE SCOPES"],
                    rs.iter()
                        .map(|r| {
                            vec![
                                r.name.clone(),
                                if r.default { "yes".into() } else { "".into() },
                                r.users.to_string(),
                                r.effective_scopes.join(" "),
                            ]
                        })
                        .collect(),
                );
            }
        }
        RoleCmd::Show { role } => {
            let r = kw.role_show(a, &role).await?;
            if js { json(&r) } else { show(&r) }
        }
        RoleCmd::Rm { role, reassign_to } => {
            let (moved, n) = kw.role_rm(a, &role, reassign_to.as_deref()).await?;
            if js {
                json(
                    &j!({"removed": role, "reassigned_users": moved, "revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys}),
                );
            } else {
                println!(
                    "Removed role {role}; moved {moved} user(s); {}.",
                    n.summary()
                );
            }
        }
        RoleCmd::Grant { role, scopes } => {
            let r = kw.role_grant(a, &role, &scopes).await?;
            if js { json(&r) } else { show(&r) }
        }
        RoleCmd::Revoke { role, scopes } => {
            let (r, removed, n) = kw.role_revoke(a, &role, &scopes).await?;
            if js {
                let mut v = serde_json::to_value(&r).expect("serialisable");
                v["removed"] = j!(removed);
                v["revoked_tokens"] = j!(n.revoked_tokens);
                v["trimmed_keys"] = j!(n.trimmed_keys);
                json(&v);
            } else {
                show(&r);
                if !removed.is_empty() {
                    println!(
                        "Narrowed role {} (removed {}): {}.",
                        r.name,
                        removed.join(" "),
                        n.summary()
                    );
                    return Ok(());
                }
                let implied: Vec<&str> = scopes
                    .iter()
                    .map(|s| s.trim())
                    .filter(|s| r.effective_scopes.iter().any(|e| e == s))
                    .collect();
                if implied.is_empty() {
                    println!(
                        "Role {} did not grant {}; nothing changed.",
                        r.name,
                        scopes.join(" ")
                    );
                } else {
                    println!(
                        "Role {} does not grant {} itself: its scopes ({}) imply it; revoke \
                         those instead. Nothing changed.",
                        r.name,
                        implied.join(" "),
                        r.scopes.join(" ")
                    );
                }
            }
        }
        RoleCmd::Default { role } => {
            let r = kw.role_default(a, &role).await?;
            if js {
                json(&r)
            } else {
                println!("{} is now the default role for new users.", r.name)
            }
        }
    }
    Ok(())
}

async fn scope(kw: &Keyward, a: &Actor, js: bool, c: ScopeCmd) -> R {
    match c {
        ScopeCmd::Add {
            name,
            description,
            implies,
        } => {
            let s = kw
                .scope_add(a, &name, description.as_deref(), &implies)
                .await?;
            if js {
                json(&s)
            } else {
                println!("Created scope {}{}", s.name, implies_text(&s.implies))
            }
        }
        ScopeCmd::Edit {
            name,
            description,
            implies,
        } => {
            let implies: Option<Vec<String>> =
                implies.map(|v| v.into_iter().filter(|s| !s.trim().is_empty()).collect());
            let s = kw
                .scope_edit(a, &name, description.as_deref(), implies.as_deref())
                .await?;
            if js {
                json(&s)
            } else {
                println!(
                    "Scope {}{}: {}",
                    s.name,
                    implies_text(&s.implies),
                    s.description
                )
            }
        }
        ScopeCmd::List => {
            let ss = kw.scope_list(a).await?;
            if js {
                json(&ss);
            } else {
                table(
                    &["SCOPE", "IMPLIES", "BUILT-IN", "DESCRIPTION"],
                    ss.iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.implies.join(" "),
                                if s.builtin { "yes".into() } else { "".into() },
                                s.description.clone(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        ScopeCmd::Rm { name } => {
            kw.scope_rm(a, &name).await?;
            if js {
                json(&j!({"removed": name}))
            } else {
                println!("Removed scope {name}")
            }
        }
    }
    Ok(())
}

fn implies_text(v: &[String]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!(" (implies {})", v.join(", "))
    }
}

async fn station(kw: &Keyward, a: &Actor, js: bool, c: StationCmd) -> R {
    match c {
        StationCmd::Add {
            name,
            user,
            domain,
            ids:
                StationIdArgs {
                    eu_vat_id,
                    rn,
                    country,
                },
        } => {
            let s = kw
                .station_add(
                    a,
                    &name,
                    &user,
                    domain.as_deref(),
                    eu_vat_id.as_deref(),
                    rn.as_deref(),
                    country.as_deref(),
                )
                .await?;
            if js {
                json(&s)
            } else {
                println!("Added station {} ({}) for {}", s.name, s.id, s.user_email)
            }
        }
        StationCmd::List {
            domain,
            user,
            limit,
        } => {
            let mut q = kw
                .station_query(a, domain.as_deref(), user.as_deref())
                .await?;
            let fetch = async |want: i64| -> R<Vec<keyward::store::directory::StationRow>> {
                q.limit = want;
                let page = kw.station_list(a, q.clone()).await?;
                if let Some(l) = page.last() {
                    q.after = Some((l.created_at, l.id.clone()));
                }
                Ok(page)
            };
            let headers = [
                "STATION",
                "ID",
                "USER",
                "DOMAIN",
                "EU VAT ID",
                "REG. NO",
                "COUNTRY",
            ];
            output::paged(js, limit, &headers, "No stations match.", fetch, |s| {
                vec![
                    s.name.clone(),
                    s.id.clone(),
                    s.user_email.clone(),
                    s.domain.clone(),
                    s.eu_vat_id.clone().unwrap_or_default(),
                    s.registration_number.clone().unwrap_or_default(),
                    s.country_code.clone().unwrap_or_default(),
                ]
            })
            .await?;
        }
        StationCmd::Edit {
            id,
            eu_vat_id,
            rn,
            country,
        } => {
            let s = kw
                .station_edit(
                    a,
                    &id,
                    eu_vat_id.as_deref(),
                    rn.as_deref(),
                    country.as_deref(),
                )
                .await?;
            if js {
                json(&s);
            } else {
                let registration = match (&s.country_code, &s.registration_number) {
                    (Some(c), Some(r)) => format!("{c} {r}"),
                    _ => "none".into(),
                };
                println!(
                    "Station {} of {}: EU VAT id {}, registration {registration}.",
                    keyward::text::inert(&s.name),
                    s.user_email,
                    s.eu_vat_id.as_deref().unwrap_or("none"),
                )
            }
        }
        StationCmd::Rm { id } => {
            let s = kw.station_rm(a, &id).await?;
            if js {
                json(&j!({"removed": s.id}))
            } else {
                println!("Removed station {} of {}", s.name, s.user_email)
            }
        }
    }
    Ok(())
}

async fn apply(
    kw: &Keyward,
    a: &Actor,
    js: bool,
    file: &std::path::Path,
    dry_run: bool,
    secrets_out: Option<&std::path::Path>,
) -> R {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::Core(Error::invalid(
            "file",
            file.display().to_string(),
            format!("a readable TOML file ({e})"),
        ))
    })?;
    // Claim the secrets file first: never overwrite, and fail before changing anything.
    // If it exists (a re-run), the run goes ahead only if it creates no secrets.
    let claim_failed = |p: &std::path::Path, e: String| {
        Failure::Core(Error::invalid(
            "--secrets-out",
            p.display().to_string(),
            format!("a new file that does not exist yet ({e})"),
        ))
    };
    let mut mode = if dry_run {
        ApplyMode::DryRun
    } else {
        ApplyMode::Commit
    };
    let mut out = match secrets_out.filter(|_| !dry_run) {
        Some(p) => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                mode = ApplyMode::UnlessSecrets;
                None
            }
            Err(e) => return Err(claim_failed(p, e.to_string())),
        },
        None => None,
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spinner = (std::io::stderr().is_terminal() && !js).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(format!("applying {name}"));
        b.enable_steady_tick(std::time::Duration::from_millis(100));
        b
    });
    let result = kw.apply(a, &name, &text, mode).await;
    if let Some(b) = spinner {
        b.finish_and_clear();
    }
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            if let (Some(p), Some(_)) = (secrets_out, &out) {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.into());
        }
    };
    if let Some(p) = secrets_out.filter(|_| r.withheld > 0) {
        return Err(claim_failed(
            p,
            format!(
                "it exists, and this run would create {} credential(s) whose secrets are \
                 shown only once; nothing was changed",
                r.withheld
            ),
        ));
    }
    if let (Some(f), Some(p)) = (out.as_mut(), secrets_out) {
        let body = serde_json::to_string_pretty(&r.secrets).expect("serialisable");
        f.write_all(body.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .map_err(|e| {
                Failure::Core(Error::Environment(format!(
                    "cannot write {}: {e}",
                    p.display()
                )))
            })?;
    }
    for w in &r.warnings {
        warn(&keyward::text::inert(w));
    }
    if js {
        let mut v = serde_json::to_value(&r).expect("serialisable");
        if secrets_out.is_none() {
            v["secrets"] = serde_json::to_value(&r.secrets).expect("serialisable");
        }
        json(&v);
        return Ok(());
    }
    if r.changes.is_empty() {
        println!("{name}: no changes.");
        return Ok(());
    }
    println!(
        "{name}: {} change(s){}",
        r.changes.len(),
        if dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        }
    );
    for c in &r.changes {
        let detail = if c.detail.is_empty() {
            String::new()
        } else {
            format!("  {}", keyward::text::inert(&c.detail))
        };
        println!(
            "{} {:<8} {}{detail}",
            c.op,
            c.kind,
            keyward::text::inert(&c.name)
        );
    }
    if !r.secrets.is_empty() {
        match secrets_out {
            Some(p) => println!(
                "Secrets of {} created credential(s) written to {} (mode 0600).",
                r.secrets.len(),
                p.display()
            ),
            None => {
                println!("\nSecrets, shown only now — store them before you continue:");
                table(
                    &["KIND", "NAME", "OWNER", "CLIENT_ID", "CLIENT_SECRET"],
                    r.secrets
                        .iter()
                        .map(|s| {
                            vec![
                                s.kind.to_string(),
                                s.name.clone(),
                                s.owner.clone(),
                                s.client_id.clone(),
                                s.client_secret.clone(),
                            ]
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(())
}

/// Parses the command line. Usage errors exit 2; with `--json` they are reported as
/// A warning on stderr: `warning: …`, or with `--json` a JSON document
/// `{"warning": "…"}` (one per line), so that stderr stays machine-readable there.
fn warn(msg: &str) {
    if std::env::args().any(|a| a == "--json") {
        eprintln!("{}", j!({"warning": msg}));
    } else {
        eprintln!("warning: {msg}");
    }
}

/// `{"error": "usage", "message": ...}` on stderr like every other error.
pub fn parse_args() -> Cli {
    use clap::Parser;
    match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let wants_json = std::env::args().any(|a| a == "--json");
            let is_usage = !matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if wants_json && is_usage {
                let msg = e.to_string();
                let text: Vec<&str> = msg
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                let message = text.join(" ").trim_start_matches("error: ").to_string();
                eprintln!("{}", j!({"error": "usage", "message": message}));
                std::process::exit(2);
            }
            e.exit()
        }
    }
}
