//! The token store: one JSON file in the user's config directory holding
//! the endpoints chosen at login and the session (token pair, user,
//! account). The directory is 0700 and the file 0600; writes go through a
//! temporary file renamed into place, so a reader never sees half a file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Overrides the config directory.
pub const CONFIG_DIR_ENV: &str = "PARTNERCTL_CONFIG_DIR";
const FILE_NAME: &str = "session.json";
const LOCK_NAME: &str = "session.lock";

/// The gRPC endpoint of each service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Identity.
    pub identity: String,
    /// Profile.
    pub profile: String,
    /// Verification.
    pub verification: String,
    /// Notification.
    pub notification: String,
    /// Merge.
    pub merge: String,
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `users/{user}`.
    pub user: String,
    /// Sign-in email.
    pub email: String,
    /// First name.
    #[serde(default)]
    pub given_name: String,
    /// Last name.
    #[serde(default)]
    pub family_name: String,
    /// Active account, `accounts/{account}`.
    pub account: String,
    /// Its display name.
    pub account_display_name: String,
    /// The access token (a JWT).
    pub access_token: String,
    /// When the access token stops being accepted.
    pub access_token_expires: DateTime<Utc>,
    /// The single-use refresh token.
    pub refresh_token: String,
    /// The user must change a temporary password first.
    #[serde(default)]
    pub password_change_required: bool,
}

/// What the file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stored {
    /// Endpoints saved with the last login; empty before any.
    #[serde(default)]
    pub endpoints: Option<Endpoints>,
    /// The session; none when logged out.
    #[serde(default)]
    pub session: Option<Session>,
}

/// Where the file lives.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// `$PARTNERCTL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/partnerctl`, else
    /// `~/.config/partnerctl`.
    pub fn locate() -> anyhow::Result<Self> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = if let Some(dir) = non_empty(CONFIG_DIR_ENV) {
            PathBuf::from(dir)
        } else if let Some(xdg) = non_empty("XDG_CONFIG_HOME") {
            PathBuf::from(xdg).join("partnerctl")
        } else {
            let home = non_empty("HOME")
                .context("cannot find a config directory: set PARTNERCTL_CONFIG_DIR or HOME")?;
            PathBuf::from(home).join(".config").join("partnerctl")
        };
        Ok(Self { dir })
    }

    /// The session file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Reads the file; an absent file is an empty store.
    pub fn load(&self) -> anyhow::Result<Stored> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a partnerctl session file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the file (0600) in a 0700 directory.
    pub fn save(&self, stored: &Stored) -> anyhow::Result<()> {
        self.ensure_dir()?;
        let path = self.path();
        let temporary = self
            .dir
            .join(format!(".{FILE_NAME}.{}", std::process::id()));
        let json = serde_json::to_vec_pretty(stored).context("cannot encode the session")?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        // The mode above only applies to a new file.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    /// Takes the store's exclusive lock (released when the file is
    /// dropped), so two partnerctl processes never spend the same refresh
    /// token.
    pub fn lock(&self) -> anyhow::Result<File> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK_NAME);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(file)
    }

    fn ensure_dir(&self) -> anyhow::Result<()> {
        create_private_dir(&self.dir)
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))
}
