//! The security section: passwords and ACL users (secrets by reference), TLS
//! and its certificate sources, dangerous commands and network exposure.

use crate::units::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a secret comes from. Inline `value` is for development only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// A file holding the secret (mode 0600), e.g. `/run/secrets/redis-app`.
    File(String),
    /// An environment variable holding the secret at deploy time.
    Env(String),
    /// A Kubernetes secret (rendered as `secretKeyRef`).
    Secret(SecretKeyRef),
    /// Generated once at first deploy and kept (never re-randomised).
    Generate(bool),
    /// The secret in clear text: refused in production.
    Value(String),
}

impl SecretSource {
    /// Whether the secret is written in clear text in the template.
    pub fn is_inline(&self) -> bool {
        matches!(self, SecretSource::Value(_))
    }
}

/// A key inside a Kubernetes secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key inside the secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// What a user is for; decides the default permissions it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// An application: the permissions in `commands`, `keys` and `channels`.
    #[default]
    App,
    /// Administration: everything except what `disabled_categories` removes.
    Admin,
    /// Replicas authenticating to their master (`masteruser`).
    Replication,
    /// Sentinel talking to the data nodes.
    Sentinel,
    /// The Prometheus exporter (read-only, `INFO`, `CONFIG GET`, `SLOWLOG`...).
    Exporter,
    /// Liveness/readiness probes: `PING` only.
    Probe,
    /// `backup.sh` and `restore.sh`: exactly the commands they send (`PING`,
    /// `INFO`, `TIME`, `LASTSAVE`, `BGSAVE`, `CONFIG GET`, `REPLCONF` and `SYNC`
    /// for `redis-cli --rdb`, `DBSIZE`, `SHUTDOWN`), no keys, no channels.
    /// Like the other system roles it ignores `disabled_categories` and
    /// `disabled_commands`, which would take its commands away.
    Backup,
}

/// One ACL user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AclUser {
    /// The user name.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub name: String,
    /// What the user is for.
    #[serde(default)]
    pub role: UserRole,
    /// Where the user's password comes from.
    #[serde(default)]
    pub password: Option<SecretSource>,
    /// Whether the user can log in (`on`/`off`).
    #[serde(default = "crate::model::yes")]
    pub enabled: bool,
    /// Command rules (`+@read`, `-@dangerous`, `+ping`).
    #[serde(default)]
    pub commands: Vec<String>,
    /// Key patterns (`tenant:a:*`); empty means none.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Pub/sub channel patterns; empty means none.
    #[serde(default)]
    pub channels: Vec<String>,
}

impl Default for AclUser {
    fn default() -> Self {
        AclUser {
            name: String::new(),
            role: UserRole::App,
            password: None,
            enabled: true,
            commands: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }
}

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Clients must present a certificate signed by the CA.
    Required,
    /// Clients may present one.
    Optional,
    /// Clients are not asked for one.
    #[default]
    None,
}

/// Where TLS certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertSource {
    /// Files on disk (`cert_file`, `key_file`, `ca_file`).
    #[default]
    Files,
    /// A Kubernetes TLS secret (`secret_name`).
    Secret,
    /// A cert-manager `Certificate` issued by `issuer`.
    CertManager,
    /// A self-signed CA generated at first deploy (not for production).
    SelfSigned,
}

/// TLS for clients, replication, the cluster bus and Sentinel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// Whether TLS is on.
    pub enabled: bool,
    /// Render `port 0`: no plain-text port at all.
    pub disable_plain_port: bool,
    /// Where certificates come from.
    pub cert_source: CertSource,
    /// Server certificate file (PEM), with `cert_source: files`.
    pub cert_file: String,
    /// Private key file (PEM), with `cert_source: files`.
    pub key_file: String,
    /// CA certificate file (PEM), with `cert_source: files`.
    pub ca_file: String,
    /// Kubernetes TLS secret, with `cert_source: secret`.
    pub secret_name: String,
    /// cert-manager issuer, with `cert_source: cert_manager`.
    pub issuer: String,
    /// `tls-replication`.
    pub replication: bool,
    /// `tls-cluster`.
    pub cluster: bool,
    /// Sentinel speaks TLS.
    pub sentinel: bool,
    /// `tls-auth-clients`.
    pub client_auth: ClientAuth,
    /// `tls-protocols`.
    pub protocols: Vec<TlsProtocol>,
    /// `tls-ciphersuites` (TLS 1.3); empty keeps OpenSSL's defaults.
    pub ciphersuites: String,
    /// `tls-prefer-server-ciphers`.
    pub prefer_server_ciphers: bool,
    /// `tls-session-caching`.
    pub session_caching: bool,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TlsProtocol {
    /// TLS 1.2.
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: false,
            disable_plain_port: false,
            cert_source: CertSource::Files,
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
            secret_name: String::new(),
            issuer: String::new(),
            replication: true,
            cluster: true,
            sentinel: true,
            client_auth: ClientAuth::None,
            protocols: vec![TlsProtocol::Tls12, TlsProtocol::Tls13],
            ciphersuites: String::new(),
            prefer_server_ciphers: true,
            session_caching: true,
        }
    }
}

/// Authentication, ACL users, TLS and exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Require authentication (ACL users or the `default` user's password).
    pub auth_enabled: bool,
    /// Password of the `default` user (`requirepass`), when not using ACL users.
    pub password: Option<SecretSource>,
    /// Keep the `default` user enabled (ACL mode; off in production).
    pub default_user_enabled: bool,
    /// ACL users written to `users.acl`.
    #[schemars(length(max = 1000))]
    pub users: Vec<AclUser>,
    /// Create the replication, sentinel, exporter and probe users automatically.
    pub system_users: bool,
    /// ACL categories removed from every non-admin user (`dangerous`, `admin`...).
    pub disabled_categories: Vec<String>,
    /// Single commands removed from every non-admin user (`flushall`, `keys`...).
    pub disabled_commands: Vec<String>,
    /// `protected-mode`. Containers (Compose) render it off when the
    /// `default` user has no password: Redis would refuse every other
    /// container; their own network and published ports bound them instead.
    pub protected_mode: bool,
    /// `acllog-max-len`.
    #[schemars(range(max = 100000))]
    pub acllog_max_len: u32,
    /// `acl-pubsub-default`: `resetchannels` (deny) or `allchannels`.
    pub acl_pubsub_default: PubsubDefault,
    /// TLS.
    pub tls: Tls,
    /// Render Kubernetes NetworkPolicies (DNS egress kept open).
    pub network_policy: bool,
    /// Networks allowed by the NetworkPolicy (CIDRs); empty allows same-namespace pods.
    pub allowed_networks: Vec<String>,
    /// Rotate generated passwords after this long (0: never).
    pub password_rotation: Duration,
    /// Accept a production deployment without auth or TLS (explicit waiver).
    pub allow_insecure_production: bool,
    /// Why the waiver is acceptable (required with `allow_insecure_production`).
    pub insecure_waiver_reason: String,
}

/// `acl-pubsub-default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PubsubDefault {
    /// New users get no channels.
    #[default]
    Resetchannels,
    /// New users get all channels.
    Allchannels,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            auth_enabled: false,
            password: None,
            default_user_enabled: true,
            users: Vec::new(),
            system_users: false,
            disabled_categories: vec!["dangerous".into()],
            disabled_commands: Vec::new(),
            protected_mode: true,
            acllog_max_len: 128,
            acl_pubsub_default: PubsubDefault::Resetchannels,
            tls: Tls::default(),
            network_policy: false,
            allowed_networks: Vec::new(),
            password_rotation: Duration(0),
            allow_insecure_production: false,
            insecure_waiver_reason: String::new(),
        }
    }
}
