//! The CLI's settings: flags, then environment variables, then `<config dir>/config.toml` and
//! `<config dir>/credentials` (mode 0600), written by `sesame serve` on its first start.

use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileConfig {
    pub endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub output: Option<String>,
    pub insecure: Option<bool>,
}

#[derive(Serialize, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
}

/// `$SESAME_CONFIG_DIR`, else `~/.sesame`.
pub fn config_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".sesame")
}

pub fn load_file_config(dir: &Path) -> Result<FileConfig> {
    let path = dir.join("config.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not valid TOML settings", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn load_credentials(dir: &Path) -> Result<Option<(String, SecretString)>> {
    let path = dir.join("credentials");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let c: Credentials =
                toml::from_str(&text).with_context(|| format!("{} must hold access_key_id and access_key_secret", path.display()))?;
            Ok(Some((c.access_key_id, SecretString::from(c.access_key_secret))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

pub fn save_after_first_start(dir: &Path, endpoint: &str, ca_file: Option<&Path>, id: &str, secret: &str) -> Result<()> {
    let file = FileConfig { endpoint: Some(endpoint.to_string()), ca_file: ca_file.map(Path::to_path_buf), output: None, insecure: None };
    write_private(&dir.join("config.toml"), &toml::to_string(&file)?)?;
    let creds = Credentials { access_key_id: id.to_string(), access_key_secret: secret.to_string() };
    write_private(&dir.join("credentials"), &toml::to_string(&creds)?)
}

pub fn require<T>(v: Option<T>, what: &str, env: &str) -> Result<T> {
    match v {
        Some(v) => Ok(v),
        None => bail!("no {what} configured: pass it as a flag, set {env}, or run `sesame serve` once to write ~/.sesame/"),
    }
}
