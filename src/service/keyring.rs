//! The master key (encrypts private signing keys, derives keyed-hash keys) and the
//! signing keys: rotation, retirement, the JWK Set. Loaded keys are cached per process.

use super::{Actor, Keyward, Need, audit_event};
use crate::error::{Error, Result, Step};
use crate::model;
use crate::secret::{HashKey, MasterKey, SecretError};
use crate::store::Cx;
use crate::store::keys::{self as ks, KeyringRow, SigningKeyRow};
use crate::token::{Alg, KeyMaterial, Signer, VerifyKey};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Where the master key lives: `KEYWARD_MASTER_KEY_FILE`, else
/// `$XDG_CONFIG_HOME/keyward/master.key`.
pub fn default_master_key_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWARD_MASTER_KEY_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    directories::BaseDirs::new()
        .map(|d| d.config_dir().join("keyward").join("master.key"))
        .unwrap_or_else(|| PathBuf::from("master.key"))
}

fn secret_err(e: SecretError) -> Error {
    Error::MasterKey(e.to_string())
}

/// The master key and every keyed-hash key version, unsealed.
pub struct Secrets {
    pub master: MasterKey,
    hash: BTreeMap<u32, HashKey>,
    current: u32,
}

impl Secrets {
    /// The key new secrets are hashed with.
    pub fn hash_key(&self) -> &HashKey {
        &self.hash[&self.current]
    }

    /// Every known hash key, newest first.
    pub fn all_hash_keys(&self) -> impl Iterator<Item = &HashKey> {
        self.hash.values().rev()
    }

    /// Verifies a secret against a stored keyed hash of any known version.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        crate::secret::keyed_hash_version(stored)
            .and_then(|v| self.hash.get(&v))
            .is_some_and(|k| k.verify_keyed_hash(secret, stored))
    }
}

/// The active signing key.
pub struct ActiveKey {
    pub kid: String,
    pub alg: Alg,
    /// The key parsed once, ready to sign (see [`Signer`]).
    pub signer: Signer,
}

/// Signing and verification keys as loaded from the database.
pub struct SigningRing {
    pub active: Option<ActiveKey>,
    pub verify: HashMap<String, Arc<VerifyKey>>,
    pub public: Vec<serde_json::Value>,
}

/// Per-process cache of unsealed keys.
pub struct Cache {
    pub master_path: PathBuf,
    secrets: RwLock<Option<Arc<Secrets>>>,
    ring: RwLock<Option<Arc<SigningRing>>>,
}

impl Cache {
    pub fn new(master_path: PathBuf) -> Cache {
        Cache {
            master_path,
            secrets: RwLock::new(None),
            ring: RwLock::new(None),
        }
    }
    fn clear(&self) {
        *self.secrets.write().expect("lock") = None;
        *self.ring.write().expect("lock") = None;
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("master_path", &self.master_path)
            .finish_non_exhaustive()
    }
}

/// Loads the master key file and checks it against the database.
fn unseal(path: &Path, rows: &[KeyringRow]) -> Result<Secrets> {
    let Some(latest) = rows.last() else {
        return Err(Error::Environment(
            "the database has no keyring yet; run `keyward init`".into(),
        ));
    };
    let master = MasterKey::load(path).map_err(|e| match e {
        // This database already has a keyring: `init` cannot make another key for it,
        // so the only way forward is the original file.
        crate::secret::SecretError::MasterKeyMissing { .. } => Error::MasterKey(format!(
            "master key file {} does not exist, and this database was initialised with a master key \
             (its signing keys and secret hashes are sealed with it). Restore that file, from a backup \
             or the host where `keyward init` ran, to this path, or point KEYWARD_MASTER_KEY_FILE at it; \
             a new key cannot open this database",
            path.display()
        )),
        // Says what to do itself.
        e @ crate::secret::SecretError::MasterKeyExposed { .. } => Error::MasterKey(e.to_string()),
        e => Error::MasterKey(format!(
            "{e}. The database's keys are sealed with its master key; point KEYWARD_MASTER_KEY_FILE at that file"
        )),
    })?;
    if !master.matches_check_value(&latest.check_value) {
        return Err(Error::MasterKey(format!(
            "the master key in {} is not the one this database was sealed with; point KEYWARD_MASTER_KEY_FILE at the right file",
            path.display()
        )));
    }
    let mut hash = BTreeMap::new();
    for r in rows {
        let v = r.version as u32;
        let raw = master
            .decrypt(&r.hash_key_sealed, format!("keyring v{v}").as_bytes())
            .map_err(secret_err)?;
        hash.insert(v, HashKey::from_raw(v, &raw));
    }
    Ok(Secrets {
        master,
        hash,
        current: latest.version as u32,
    })
}

fn seal_private(master: &MasterKey, kid: &str, m: &KeyMaterial) -> String {
    master.encrypt(m.private_der(), format!("signing key {kid}").as_bytes())
}

fn unseal_private(master: &MasterKey, row: &SigningKeyRow) -> Result<KeyMaterial> {
    let alg: Alg = row
        .alg
        .parse()
        .map_err(|e: crate::token::TokenError| Error::Database(e.to_string()))?;
    let der = master
        .decrypt(
            &row.private_enc,
            format!("signing key {}", row.kid).as_bytes(),
        )
        .map_err(secret_err)?;
    KeyMaterial::from_private_der(alg, &der).map_err(|e| Error::Database(e.to_string()))
}

fn new_signing_row(master: &MasterKey, alg: Alg, status: &str) -> (SigningKeyRow, KeyMaterial) {
    let m = KeyMaterial::generate(alg);
    let kid = m.new_kid();
    let row = SigningKeyRow {
        public_jwk: m.public_jwk(&kid).map(|v| v.to_string()),
        private_enc: seal_private(master, &kid, &m),
        kid,
        alg: alg.as_str().to_string(),
        status: status.to_string(),
        created_at: model::now(),
        version: 1,
    };
    (row, m)
}

/// Ensures a keyring and an active signing key exist (part of `init`). Creates the
/// master key file when the database has no keyring yet and no file exists.
pub(crate) async fn bootstrap(cx: &mut Cx<'_>, path: &Path, done: &mut Vec<String>) -> Result<()> {
    let mut rows = ks::keyring(cx).await?;
    if rows.is_empty() {
        let master = if path.exists() {
            let m = MasterKey::load(path).map_err(secret_err)?;
            done.push(format!("using the existing master key {}", path.display()));
            m
        } else {
            let m = MasterKey::create_file(path).map_err(secret_err)?;
            done.push(format!(
                "created the master key {} (mode 0600; back it up)",
                path.display()
            ));
            m
        };
        let raw = master.hash_key_raw(1);
        let row = KeyringRow {
            version: 1,
            check_value: master.check_value(),
            hash_key_sealed: master.encrypt(&raw, b"keyring v1"),
            created_at: model::now(),
        };
        ks::insert_keyring(cx, &row).await?;
        rows.push(row);
    }
    let secrets = unseal(path, &rows)?;
    if !ks::signing_keys(cx)
        .await?
        .iter()
        .any(|k| k.status == "active")
    {
        let (row, _) = new_signing_row(&secrets.master, Alg::ES256, "active");
        ks::insert_signing_key(cx, &row).await?;
        done.push(format!("created signing key {} (ES256)", row.kid));
    }
    Ok(())
}

/// A signing key as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SigningKeyView {
    pub id: String,
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub published: bool,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub live_tokens: i64,
}

impl Keyward {
    /// The unsealed master key and hash keys (loaded once per process).
    pub async fn secrets(&self) -> Result<Arc<Secrets>> {
        if let Some(s) = self.cache.secrets.read().expect("lock").clone() {
            return Ok(s);
        }
        // Boxed: the load is a large future, and callers on the token service's hot
        // path should not carry its state (see `TokenService::key_entry`).
        Box::pin(async {
            let rows = self.read(async |cx| ks::keyring(cx).await).await?;
            let s = Arc::new(unseal(&self.cache.master_path, &rows)?);
            *self.cache.secrets.write().expect("lock") = Some(s.clone());
            Ok(s)
        })
        .await
    }

    /// The signing keys (loaded once; reloaded by [`Keyward::reload_signing_keys`]).
    pub async fn signing_ring(&self) -> Result<Arc<SigningRing>> {
        if let Some(r) = self.cache.ring.read().expect("lock").clone() {
            return Ok(r);
        }
        Box::pin(self.reload_signing_keys()).await
    }

    /// Reloads the signing keys from the database (after a rotation elsewhere).
    pub async fn reload_signing_keys(&self) -> Result<Arc<SigningRing>> {
        let rows = self.read(async |cx| ks::signing_keys(cx).await).await?;
        let mut ring = SigningRing {
            active: None,
            verify: HashMap::new(),
            public: Vec::new(),
        };
        let mut secrets = None;
        for row in &rows {
            // Public keys verify without the master key; HS256 and signing need it.
            let vk = match (&row.public_jwk, row.alg.as_str()) {
                (Some(jwk), alg) if alg != "HS256" && row.status != "active" => {
                    let v: serde_json::Value =
                        serde_json::from_str(jwk).map_err(|e| Error::Database(e.to_string()))?;
                    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(v.clone())
                        .map_err(|e| Error::Database(e.to_string()))?;
                    ring.public.push(v);
                    VerifyKey {
                        alg: row.alg.parse().map_err(|e: crate::token::TokenError| {
                            Error::Database(e.to_string())
                        })?,
                        key: jsonwebtoken::DecodingKey::from_jwk(&jwk)
                            .map_err(|e| Error::Database(e.to_string()))?,
                    }
                }
                _ => {
                    if secrets.is_none() {
                        secrets = Some(self.secrets().await?);
                    }
                    let m = unseal_private(&secrets.as_ref().expect("loaded").master, row)?;
                    if let Some(j) = m.public_jwk(&row.kid) {
                        ring.public.push(j);
                    }
                    if row.status == "active" {
                        ring.active = Some(ActiveKey {
                            kid: row.kid.clone(),
                            alg: m.alg(),
                            signer: Signer::new(&m, &row.kid)
                                .map_err(|e| Error::Environment(e.to_string()))?,
                        });
                    }
                    VerifyKey::new(&m)
                }
            };
            ring.verify.insert(row.kid.clone(), Arc::new(vk));
        }
        let ring = Arc::new(ring);
        *self.cache.ring.write().expect("lock") = Some(ring.clone());
        Ok(ring)
    }

    /// The public keys as an RFC 7517 JWK Set (HS256 keys are never published).
    pub async fn jwks(&self) -> Result<serde_json::Value> {
        let rows = self.read(async |cx| ks::signing_keys(cx).await).await?;
        let keys: Vec<serde_json::Value> = rows
            .iter()
            .filter_map(|r| r.public_jwk.as_deref())
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        Ok(crate::token::jwks(&keys))
    }

    pub async fn signing_key_list(&self, _actor: &Actor) -> Result<Vec<SigningKeyView>> {
        self.read_tokens(async |cx| {
            let now = model::now();
            let mut out = Vec::new();
            for r in ks::signing_keys(cx).await? {
                let live_tokens = ks::live_tokens_of_kid(cx, &r.kid, now).await?;
                out.push(SigningKeyView {
                    id: r.kid.clone(),
                    published: r.public_jwk.is_some(),
                    kid: r.kid,
                    alg: r.alg,
                    status: r.status,
                    created_at: r.created_at,
                    live_tokens,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Makes a new active signing key; the previous one stays verify-only (and published).
    pub async fn signing_key_rotate(
        &self,
        actor: &Actor,
        alg: Alg,
        shared_secret: bool,
    ) -> Result<SigningKeyView> {
        actor.require(Need::Global)?;
        if alg == Alg::HS256 && !shared_secret {
            return Err(Error::invalid(
                "algorithm",
                "HS256",
                "HS256 only as a shared secret (its key is never published); otherwise ES256, EdDSA or RS256",
            ));
        }
        if alg != Alg::HS256 && shared_secret {
            return Err(Error::invalid(
                "shared secret",
                alg.as_str(),
                "a shared secret only with the HS256 algorithm",
            ));
        }
        let secrets = self.secrets().await?;
        let a = actor.clone();
        let view = self
            .write(async move |cx| {
                let (row, _) = new_signing_row(&secrets.master, alg, "active");
                let before = ks::signing_keys(cx)
                    .await?
                    .into_iter()
                    .find(|k| k.status == "active")
                    .map(|k| k.kid);
                ks::demote_active(cx).await?;
                ks::insert_signing_key(cx, &row).await?;
                audit_event(
                    cx,
                    &a,
                    "signing_key.rotate",
                    &row.kid,
                    None,
                    json!({"alg": row.alg, "previous": before}),
                )
                .await?;
                Ok(SigningKeyView {
                    id: row.kid.clone(),
                    published: row.public_jwk.is_some(),
                    kid: row.kid,
                    alg: row.alg,
                    status: row.status,
                    created_at: row.created_at,
                    live_tokens: 0,
                })
            })
            .await?;
        self.cache.ring.write().expect("lock").take();
        Ok(view)
    }

    /// Removes a verify-only key. Refused while unexpired tokens signed by it exist,
    /// unless `revoke_tokens`. Returns how many tokens were revoked.
    pub async fn signing_key_retire(
        &self,
        actor: &Actor,
        kid: &str,
        revoke_tokens: bool,
    ) -> Result<u64> {
        actor.require(Need::Global)?;
        let (a, kid) = (actor.clone(), kid.trim().to_string());
        let n = self
            .write(async move |cx| {
                let keys = ks::signing_keys(cx).await?;
                let Some(k) = keys.iter().find(|k| k.kid == kid) else {
                    let known: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
                    return Err(Error::not_found_hint("signing key", &kid, format!("keys are: {}", known.join(", "))));
                };
                if k.status == "active" {
                    return Err(Error::blocked(
                        format!("{} is the active signing key", k.kid),
                        Step::RotateSigningKey,
                    ));
                }
                let now = model::now();
                let live = ks::live_tokens_of_kid(cx, &k.kid, now).await?;
                let mut revoked = 0;
                if live > 0 {
                    if !revoke_tokens {
                        return Err(Error::blocked(
                            format!(
                                "{live} unexpired token(s) are signed by {}; retiring it would break them",
                                k.kid
                            ),
                            Step::RevokeSignedTokens { kid: k.kid.clone() },
                        ));
                    }
                    revoked = ks::revoke_tokens_of_kid(cx, &k.kid, now, &a.label()).await?;
                }
                ks::delete_signing_key(cx, &k.kid).await?;
                audit_event(cx, &a, "signing_key.retire", &k.kid, None, json!({"revoked_tokens": revoked})).await?;
                Ok(revoked)
            })
            .await?;
        self.cache.ring.write().expect("lock").take();
        Ok(n)
    }

    /// Re-encrypts every private key and sealed hash key under a new master key and
    /// replaces the key file (the old one is kept as `<file>.old`, mode 0600).
    pub async fn master_key_rotate(&self, actor: &Actor) -> Result<PathBuf> {
        actor.require(Need::Global)?;
        let old = self.secrets().await?;
        let path = self.cache.master_path.clone();
        let staged = path.with_extension("key.new");
        if staged.exists() {
            std::fs::remove_file(&staged).map_err(|e| {
                Error::Environment(format!("cannot remove {}: {e}", staged.display()))
            })?;
        }
        let new = MasterKey::create_file(&staged).map_err(secret_err)?;
        let a = actor.clone();
        let new2 = new.clone();
        let result = self
            .write(async move |cx| {
                let rows = ks::keyring(cx).await?;
                let next = rows.last().map(|r| r.version).unwrap_or(0) + 1;
                for r in &rows {
                    let v = r.version as u32;
                    let aad = format!("keyring v{v}");
                    let raw = old
                        .master
                        .decrypt(&r.hash_key_sealed, aad.as_bytes())
                        .map_err(secret_err)?;
                    ks::reseal_keyring(
                        cx,
                        r.version,
                        &new2.check_value(),
                        &new2.encrypt(&raw, aad.as_bytes()),
                    )
                    .await?;
                }
                let raw = new2.hash_key_raw(next as u32);
                ks::insert_keyring(
                    cx,
                    &KeyringRow {
                        version: next,
                        check_value: new2.check_value(),
                        hash_key_sealed: new2.encrypt(&raw, format!("keyring v{next}").as_bytes()),
                        created_at: model::now(),
                    },
                )
                .await?;
                let keys = ks::signing_keys(cx).await?;
                for k in &keys {
                    let m = unseal_private(&old.master, k)?;
                    ks::set_private_enc(cx, &k.kid, &seal_private(&new2, &k.kid, &m)).await?;
                }
                audit_event(
                    cx,
                    &a,
                    "master_key.rotate",
                    "master key",
                    None,
                    json!({"signing_keys": keys.len(), "hash_key_version": next}),
                )
                .await?;
                Ok(())
            })
            .await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
        let backup = path.with_extension("key.old");
        let _ = std::fs::rename(&path, &backup);
        std::fs::rename(&staged, &path).map_err(|e| {
            Error::MasterKey(format!(
                "the database now uses the new master key in {}, but it could not be moved to {}: {e}; move it by hand",
                staged.display(),
                path.display()
            ))
        })?;
        drop(new);
        self.cache.clear();
        Ok(path)
    }
}
